"""The results page of ``python -m training answers``: ``assets/answers/README.md``, written from results.json."""

from __future__ import annotations

from pathlib import Path

from recognizer.answers import MODE_TITLES, MODES
from recognizer.files import write_atomic

WITHOUT = {"anything": "drawbench_all", "digits": "drawbench_digits", "letters": "drawbench_letters"}


def pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def size(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def slot_table(results: dict) -> list[str]:
    """Per model and mode on the benchmark's test part: top-1, LAC coverage and set size, APS beside."""
    level = f"{results['level']:g}"
    lines = ["| model | mode | drawings | top-1 | top-1 without the mode | coverage | mean set size | LAC coverage, "
             "empty sets allowed | APS coverage | APS mean set size |", "|---|---|---|---|---|---|---|---|---|---|"]
    for m in results["models"]:
        plain = next(row for row in m["tau"] if row["tau"] == 0)  # the same drawings, read as anything
        for mode in MODES:
            f, aps = m["drawbench_test"][level][mode], m["aps_drawbench_test"][mode]
            lines.append(f"| {m['name']} | {MODE_TITLES[mode]} | {f['n']:,} | {pct(f['top1'])} | "
                         f"{pct(plain[WITHOUT[mode]])} | {pct(f['coverage'])} | {size(f['set_size'])} | "
                         f"{pct(f.get('lac_coverage'))} | {pct(aps['coverage'])} | {size(aps['set_size'])} |")
    return lines


def levels_table(results: dict) -> list[str]:
    head = "| model | mode | " + " | ".join(f"{float(lv):.0%}" for lv in results["levels"]) + " |"
    lines = [head, "|---|---|" + "---|" * len(results["levels"])]
    for m in results["models"]:
        for mode in MODES:
            cells = [f"{pct(m['drawbench_test'][f'{lv:g}'][mode]['coverage'])} / "
                     f"{size(m['drawbench_test'][f'{lv:g}'][mode]['set_size'])}" for lv in results["levels"]]
            lines.append(f"| {m['name']} | {MODE_TITLES[mode]} | " + " | ".join(cells) + " |")
    return lines


def other_sets_table(results: dict, key: str) -> list[str]:
    lines = ["| model | mode | images | top-1 | coverage | mean set size |", "|---|---|---|---|---|---|"]
    for m in results["models"]:
        for mode in MODES:
            f = m[key][mode]
            lines.append(f"| {m['name']} | {MODE_TITLES[mode]} | {f['n']:,} | {pct(f['top1'])} | {pct(f['coverage'])} "
                         f"| {size(f['set_size'])} |")
    return lines


def tau_table(results: dict) -> list[str]:
    lines = ["| model | tau | drawing benchmark digits | drawing benchmark letters | drawing benchmark all | "
             "MNIST test digits |", "|---|---|---|---|---|---|"]
    for m in results["models"]:
        for row in m["tau"]:
            cells = [pct(row[k]) for k in ("drawbench_digits", "drawbench_letters", "drawbench_all", "mnist_digits")]
            lines.append(f"| {m['name']} | {row['tau']:g} | " + " | ".join(cells) + " |")
    return lines


def together_lines(results: dict) -> list[str]:
    names = list(next(iter(results["together"].values()))["slots"])
    lines = ["| mode | three slots averaged | " + " | ".join(names) + " | shown |",
             "|---|---|" + "---|" * (len(names) + 1)]
    for mode, f in results["together"].items():
        lines.append(f"| {MODE_TITLES[mode]} | {pct(f['together'], 2)} | "
                     + " | ".join(pct(h, 2) for h in f["slots"].values()) + f" | {'yes' if f['shown'] else 'no'} |")
    return lines


def calibration_lines(results: dict) -> list[str]:
    lines = []
    for m in results["models"]:
        parts = ", ".join(f"{MODE_TITLES[mode]} {c['n']:,} ({c['on']})" for mode, c in m["calibration"].items())
        key = f"{results['level']:g}"
        least = ", ".join(f"{MODE_TITLES[mode]} {m['thresholds'][mode][key]:.3f}" for mode in MODES)
        lines.append(f"- `{m['name']}`: {parts}; least probability of a member at {results['level']:.0%}: {least}")
    return lines


def intro_lines(results: dict) -> list[str]:
    """What the page is, the modes, the sets and what they were calibrated on."""
    level, kept, sources = results["level"], results["kept_counts"], results["drawbench_sources"]
    return [
        "Made by `python -m training answers` (`training/answers.py`); every figure is in `results.json`, the settings "
        "and machine in `config.json`, the run's lines in `log.txt`. The app reads the thresholds, tau and prior from "
        "each model's `answers` record in `exported_models/manifest.json`.",
        "",
        "**What are you drawing?** Anything, Digits or Letters restricts each model's answer, top 5 and set to that "
        "kind (letters keep each split's case rule), renormalising its probabilities. **Sets**: split conformal "
        f"prediction with the {results['method']} score (1 - probability of the true class; Angelopoulos and Bates, "
        "\"A Gentle Introduction to Conformal Prediction\"), in the 47 merged classes, at the level the app states "
        f"({level:.0%} by default, `python app.py --coverage`). LAC, not APS or RAPS: at the same guarantee it gives "
        "the smallest sets, so a clear drawing gets one character and only look-alikes get several (APS, calibrated "
        "and tested the same way below, without randomisation: sets of 6-17 characters, coverage far over the level). "
        "A set always holds the model's own answer (an empty LAC set shows it alone), so where a model's top-1 is "
        "above the level (digits) its coverage is its top-1 and its set is the answer alone; the column *LAC coverage, "
        "empty sets allowed* is the calibration's own figure, the one the guarantee is about.",
        "",
        "**Calibrated on drawings.** The drawing benchmark (`assets/drawbench/`) is split by source image with a "
        f"keyed hash (as the kept drawings are): {sources['calibration']:,} sources calibrate, {sources['test']:,} "
        "test (3 renderings each, in one part). The kept drawings' calibration part (their hash's validation code) "
        "replaces "
        f"the benchmark's for a mode once it holds {results['kept_min_calibration']} drawings of it; the store held "
        f"{kept['train']} / {kept['val']} / {kept['test']} kept drawings (train / calibration / test) at this run. "
        "**The guarantee holds for drawings like the calibration set**: sets calibrated on scans covered held-out "
        "drawings far below their level, and drawings from another hand or renderer may be covered less.",
    ]


def write_page(out: Path, results: dict) -> Path:
    level, mnist = results["level"], results["mnist"]
    shown = [MODE_TITLES[m] for m, f in results["together"].items() if f["shown"]]
    lines = [
        "# Answers a person can trust: modes, calibrated sets and the prior",
        "",
        *intro_lines(results),
        "",
        f"## Per slot model and mode: the drawing benchmark's test part at {level:.0%}",
        "",
        *slot_table(results),
        "",
        "## Coverage / mean set size at each level (drawing benchmark, test part)",
        "",
        *levels_table(results),
        "",
        f"## The pool's test part (scans) at {level:.0%}",
        "",
        *other_sets_table(results, "pool_test"),
        "",
        f"## Kept drawings, test part, at {level:.0%} (live in the app's Kept drawings tab, on every kept drawing)",
        "",
        *other_sets_table(results, "kept_test"),
        "",
        "## The prior: tau towards the training prior (top-1, anything mode, folded)",
        "",
        "`logits - tau * log prior` (Menon et al. 2021, logit adjustment) with the training part's class frequencies. "
        "tau = 0 is the model as trained, tau = 1 a uniform prior; balanced's prior is uniform, so tau changes nothing "
        "there. The app keeps tau = 0: the table shows what a uniform prior buys on letters and costs on digits. "
        f"MNIST: EMNIST's MNIST test digits that no model trained on ({mnist['used']:,} of {mnist['total']:,}; "
        f"{mnist['in_pool_train_or_val']:,} are pool training or validation images and are left out). The kept "
        f"drawings' frequencies are offered as the prior once their training part holds {results['kept_min_prior']} "
        "drawings, and chosen only where they raise top-1 on the kept test part.",
        "",
        *tau_table(results),
        "",
        "## Three slots together",
        "",
        "Each slot's probabilities folded to the 47 merged classes and averaged, top-1 on the drawing benchmark's "
        "test part. The app shows this answer (\"All three together\", with its own set, calibrated the same way) only "
        "in the modes where it beats each slot: " + (", ".join(shown) if shown else "none") + ".",
        "",
        *together_lines(results),
        "",
        "## Calibration",
        "",
        *calibration_lines(results),
        "",
    ]
    return write_atomic(out / "README.md", ("\n".join(lines) + "\n").encode())
