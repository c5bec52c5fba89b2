"""Answers a person can trust: calibrate the answer sets, measure the modes and the prior, write the records.

    python -m training answers                  # calibrate, score, update exported_models/manifest.json,
                                                # write assets/answers/ (results.json, config.json, log.txt, README)
    python -m training answers --page-only      # the README again from results.json

1. The drawing benchmark (``training/drawbench.py``) is split by source image with a keyed hash, as the kept
   drawings are (``source_part``: hmac_sha256(DRAWBENCH_KEY, the image's bytes), codes 0-4 calibration, 5-9
   test); a source's three renderings stay in one part.
2. Each letter-reading model's LAC thresholds (``recognizer.conformal``) per mode and level come from the
   calibration part, or from the kept drawings' calibration part (their keyed hash's validation code) for a mode
   where that holds at least ``KEPT_MIN_CALIBRATION`` drawings. They go into the manifest's ``answers`` record
   (``recognizer.manifest.AnswerRules``) with the training prior and tau 0 (the default is not moved); the kept
   drawings' frequencies become the target prior at tau 1 only where that raises top-1 on the kept test part.
3. Figures, each through the app's own ``recognizer.answers.set_figures``: top-1, coverage and mean set size per
   model and mode on the benchmark's test part, the pool's test part and the kept drawings' test part; APS beside
   LAC; the prior trade-off (tau in ``TAUS``) on the benchmark's digits and letters and on MNIST's test digits that
   no model trained on; the three slots' probabilities averaged in the merged classes.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import time
from pathlib import Path

import numpy as np

from recognizer.answers import MODES, adjust, in_mode, restrict, set_figures
from recognizer.conformal import (
    DEFAULT_LEVEL,
    LEVELS,
    METHOD,
    aps_coverage_and_size,
    aps_scores,
    calibrate,
    fold,
    quantile,
)
from recognizer.files import write_atomic, write_json
from recognizer.idx import upright
from recognizer.inference import Recognizer
from recognizer.labels import MERGED_CHARS, merge_key
from recognizer.manifest import AnswerRules, Manifest, ModelEntry, manifest_path
from training import answers_page
from training.data import default_root, load_pool, pool_split, read_idx
from training.drawbench import BenchConfig, BenchSet, benched, build_set
from training.kept import KeptSet, read_kept
from training.paths import REPO_ROOT, models_dir
from training.utils import environment

DRAWBENCH_KEY = b"drawbench-split-42"
CALIBRATION_CODES = 5  # hash codes 0-4 calibrate, 5-9 test
TAUS = (0.0, 0.25, 0.5, 0.75, 1.0)
KEPT_MIN_CALIBRATION = 400  # kept calibration drawings a mode needs before they replace the benchmark's
KEPT_MIN_PRIOR = 470  # kept training-part drawings (10 per merged class) before their frequencies are offered
DEFAULT_OUT = REPO_ROOT / "assets" / "answers"


def source_part(image: np.ndarray, key: bytes = DRAWBENCH_KEY) -> str:
    """'calibration' or 'test' for one source image, by a keyed hash of its bytes (stable, order-free)."""
    digest = hmac.new(key, np.ascontiguousarray(image, np.uint8).tobytes(), hashlib.sha256).digest()
    return "calibration" if int.from_bytes(digest[:8], "little") % 10 < CALIBRATION_CODES else "test"


def bench_parts(bench: BenchSet) -> np.ndarray:
    return np.array([source_part(img) for img in bench.images])


def bench_rows(bench: BenchSet, parts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The renderings the preprocessing accepted, flattened: inputs (N, 28, 28), merged truth, part."""
    ok = bench.ok.ravel()
    v = bench.inputs.shape[0]
    return (bench.inputs.reshape(-1, 28, 28)[ok], np.tile(bench.truth, v)[ok], np.tile(parts, v)[ok])


def folded_truth(labels: tuple[str, ...], y: np.ndarray) -> np.ndarray:
    return np.array([MERGED_CHARS.index(merge_key(labels[i])) for i in y], np.int64)


def mode_probs(entry: ModelEntry, probs: np.ndarray, truth: np.ndarray, mode: str,
               tau: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Folded, restricted probabilities of the inputs whose truth belongs to the mode, and that truth."""
    keep = np.array([in_mode(MERGED_CHARS[t], mode) for t in truth], bool)
    p = restrict(adjust(probs[keep], entry.answers, tau), entry.labels, mode)
    return fold(p, entry.labels), truth[keep]


# ---------------------------------------------------------------------------------------------
# Calibration


def calibrate_entry(entry: ModelEntry, cal: tuple[np.ndarray, np.ndarray],
                    kept_cal: tuple[np.ndarray, np.ndarray] | None) -> dict:
    """Per mode: thresholds at every level, and what they came from (kept drawings where there are enough)."""
    sets = {}
    for mode in MODES:
        source, (probs, truth) = "drawing benchmark, calibration part", mode_probs(entry, *cal, mode)
        if kept_cal is not None:
            kept_p, kept_t = mode_probs(entry, *kept_cal, mode)
            if len(kept_t) >= KEPT_MIN_CALIBRATION:
                source, probs, truth = "kept drawings, calibration part", kept_p, kept_t
        sets[mode] = {"thresholds": {f"{lv:g}": round(calibrate(probs, truth, lv), 6) for lv in LEVELS},
                      "n": int(len(truth)), "on": source}  # fmt: skip
    return sets


def training_prior(entry: ModelEntry, pool) -> list[float]:
    """The training part's class frequencies, in the model's label order."""
    _, y = pool_split(pool, entry.split).parts["train"]
    counts = np.bincount(y, minlength=len(entry.labels)).astype(np.float64)
    return [round(float(c), 8) for c in counts / counts.sum()]


def kept_prior(entry: ModelEntry, kept: KeptSet) -> list[float] | None:
    """The kept training part's frequencies per label (add-one smoothed; an open case split between the two)."""
    train = kept.part("train")
    if len(train) < KEPT_MIN_PRIOR:
        return None
    counts = np.ones(len(entry.labels))
    for c in train.characters:
        group = [i for i, lab in enumerate(entry.labels) if (lab == c if len(c) == 1 else merge_key(lab) == c[0])]
        group = group or [i for i, lab in enumerate(entry.labels) if merge_key(lab) == merge_key(c[0])]
        counts[group] += 1.0 / max(len(group), 1)
    return [round(float(c), 8) for c in counts / counts.sum()]


def choose_prior(entry: ModelEntry, kept: KeptSet, probs_of) -> dict:
    """Offer the kept frequencies as the prior; take them (tau 1) only where they raise top-1 on the kept test part."""
    offered = kept_prior(entry, kept)
    test = kept.part("test")
    note = {"offered": offered is not None, "kept_train": len(kept.part("train")), "kept_test": len(test)}
    if offered is None or not len(test):
        return note | {"chosen": False}
    entry.answers.kept_prior = offered
    probs, truth = probs_of(test.inputs), test.truth()
    before = float((fold(probs, entry.labels).argmax(1) == truth).mean())
    trial = AnswerRules(tau=1.0, prior="kept", training_prior=entry.answers.training_prior, kept_prior=offered)
    after = float((fold(adjust(probs, trial), entry.labels).argmax(1) == truth).mean())
    if after > before:
        entry.answers.tau, entry.answers.prior = 1.0, "kept"
    return note | {"chosen": after > before, "top1_training_prior": before, "top1_kept_prior": after}


# ---------------------------------------------------------------------------------------------
# Figures


def per_level(entry: ModelEntry, probs: np.ndarray, truth: np.ndarray) -> dict:
    return {f"{lv:g}": set_figures(entry, probs, truth, lv) for lv in LEVELS}


def aps_figures(entry: ModelEntry, cal: tuple, test: tuple, level: float) -> dict:
    """APS calibrated and tested the same way, for the comparison the choice of LAC rests on."""
    out = {}
    for mode in MODES:
        cp, ct = mode_probs(entry, *cal, mode)
        tp, tt = mode_probs(entry, *test, mode)
        cov, size = aps_coverage_and_size(tp, tt, quantile(aps_scores(cp, ct), level))
        out[mode] = {"coverage": cov, "set_size": size}
    return out


def tau_rows(entry: ModelEntry, bench_test: tuple, mnist: tuple) -> list[dict]:
    """Top-1 (anything mode, folded) at each tau from the training prior towards a uniform one: benchmark digits,
    letters, MNIST."""
    rules = AnswerRules(prior="uniform", training_prior=entry.answers.training_prior)
    rows = []
    for tau in TAUS:
        row = {"tau": tau}
        for name, (probs, truth) in (("drawbench", bench_test), ("mnist", mnist)):
            hits = fold(adjust(probs, rules, tau), entry.labels).argmax(1) == truth
            digit = truth < 10
            if name == "drawbench":
                row["drawbench_digits"] = float(hits[digit].mean())
                row["drawbench_letters"], row["drawbench_all"] = float(hits[~digit].mean()), float(hits.mean())
            else:
                row["mnist_digits"] = float(hits.mean())
        rows.append(row)
    return rows


def mnist_test(pool) -> tuple[np.ndarray, np.ndarray, dict]:
    """EMNIST's MNIST test digits no model trained on (not in the pool, or in its test part), in EMNIST form."""
    root = default_root()
    stored = read_idx(root / "emnist-mnist-test-images-idx3-ubyte.gz")
    labels = read_idx(root / "emnist-mnist-test-labels-idx1-ubyte.gz").astype(np.int64)
    upright_images = upright(stored)
    part_of = {img.tobytes(): int(p) for img, p in zip(pool.images, pool.part, strict=True)}
    parts = np.array([part_of.get(img.tobytes(), -1) for img in upright_images])
    unseen = (parts == -1) | (parts == 9)
    note = {"total": len(labels), "in_pool_train_or_val": int(((parts >= 0) & (parts <= 8)).sum()),
            "in_pool_test": int((parts == 9).sum()), "not_in_pool": int((parts == -1).sum()), "used": int(unseen.sum())}
    return upright_images[unseen].astype(np.float32) / 255.0, labels[unseen], note


def combined(slot_probs: dict[str, np.ndarray], entries: dict[str, ModelEntry], truth: np.ndarray,
             part: np.ndarray) -> dict:
    """Per mode: the slots' folded probabilities averaged, top-1 on the benchmark's test part beside each slot's,
    whether it beats each, and its LAC thresholds from the calibration part."""
    out = {}
    for mode in MODES:
        keep = np.array([in_mode(MERGED_CHARS[t], mode) for t in truth], bool)
        folded = {n: fold(restrict(p[keep], entries[n].labels, mode), entries[n].labels) for n, p in slot_probs.items()}
        mean, t, test = np.mean(list(folded.values()), 0), truth[keep], part[keep] == "test"
        hits = {n: float((f[test].argmax(1) == t[test]).mean()) for n, f in folded.items()}
        together = float((mean[test].argmax(1) == t[test]).mean())
        out[mode] = {"together": together, "slots": hits, "shown": all(together > h for h in hits.values()),
                     "thresholds": {f"{lv:g}": round(calibrate(mean[~test], t[~test], lv), 6) for lv in LEVELS}}
    return out


# ---------------------------------------------------------------------------------------------
# The command


def score_entry(entry: ModelEntry, recognizer: Recognizer, data: dict, level: float) -> tuple[dict, np.ndarray]:
    """Calibrate one model (its ``answers`` record, set in place) and measure it; its benchmark probabilities."""
    def probs_of(x: np.ndarray) -> np.ndarray:
        return recognizer.predict_batch(entry.name, x)[0] if len(x) else np.zeros((0, len(entry.labels)), np.float32)

    x, truth, part = data["bench"]
    probs = probs_of(x)
    cal, test = ((probs[part == p], truth[part == p]) for p in ("calibration", "test"))
    entry.answers = AnswerRules(method=METHOD, levels=list(LEVELS), tau=0.0, prior="uniform",
                                training_prior=training_prior(entry, data["pool"]),
                                record="assets/answers/results.json")  # fmt: skip
    kept: KeptSet = data["kept"]
    prior = choose_prior(entry, kept, probs_of)
    kept_val, kept_test = kept.part("val"), kept.part("test")
    entry.answers.sets = calibrate_entry(entry, cal, (probs_of(kept_val.inputs), kept_val.truth()))
    px, py = pool_split(data["pool"], entry.split).parts["test"]
    mx, my = data["mnist"]
    sets = entry.answers.sets
    figures = {"name": entry.name, "split": entry.split, "slot": entry.slot, "sha256": entry.sha256,
               "calibration": {m: {k: v for k, v in s.items() if k != "thresholds"} for m, s in sets.items()},
               "thresholds": {m: s["thresholds"] for m, s in sets.items()},
               "drawbench_test": per_level(entry, *test),
               "pool_test": set_figures(entry, probs_of(px.astype(np.float32) / 255.0), folded_truth(entry.labels, py),
                                        level),
               "kept_test": set_figures(entry, probs_of(kept_test.inputs), kept_test.truth(), level),
               "aps_drawbench_test": aps_figures(entry, cal, test, level),
               "tau": tau_rows(entry, test, (probs_of(mx), my)), "prior": prior}  # fmt: skip
    return figures, probs


def load_data(args: argparse.Namespace) -> dict:
    bench = build_set(BenchConfig(), progress=not args.quiet)
    parts = bench_parts(bench)
    pool = load_pool(default_root())
    mx, my, mnist_note = mnist_test(pool)
    store = Path(args.store) if args.store else None
    kept = read_kept(store) if (store or REPO_ROOT / "data" / "drawings.sqlite3").is_file() else read_empty()
    counts = {p: int((parts == p).sum()) for p in ("calibration", "test")}
    return {"bench": bench_rows(bench, parts), "bench_config": bench.config, "sources": counts, "pool": pool,
            "mnist": (mx, my), "mnist_note": mnist_note, "kept": kept,
            "kept_counts": {p: len(kept.part(p)) for p in ("train", "val", "test")}}  # fmt: skip


def read_empty() -> KeptSet:
    return KeptSet([], np.zeros((0, 28, 28), np.float32), [], np.zeros(0, dtype="<U5"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", type=Path, default=None, help="export folder (default: $MODELS_DIR or "
                        "exported_models); its manifest.json gets each model's answers record")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the page and its records go")
    parser.add_argument("--store", type=Path, default=None, help="kept drawings (default data/drawings.sqlite3)")
    parser.add_argument("--level", type=float, default=DEFAULT_LEVEL, help="the app's level, for the figures")
    parser.add_argument("--page-only", action="store_true", help="write README.md again from results.json")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.page_only:
        answers_page.write_page(out, json.loads((out / "results.json").read_text()))
        return 0
    started = time.perf_counter()
    folder = Path(args.models or models_dir())
    data = load_data(args)
    log = [f"answers {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}: drawbench sources {data['sources']}, "
           f"kept {data['kept_counts']}, MNIST {data['mnist_note']}"]
    manifest, recognizer = Manifest.read(folder), Recognizer(folder)
    by_name = {e.name: e for e in manifest.models}
    models, bench_probs = [], {}
    for served in benched(recognizer.models):
        figures, bench_probs[served.name] = score_entry(by_name[served.name], recognizer, data, args.level)
        models.append(figures)
        at = figures["drawbench_test"][f"{args.level:g}"]
        log.append(f"{served.name}: " + "; ".join(f"{m} top-1 {f['top1']:.4f} coverage {f['coverage']:.4f} size "
                                                  f"{f['set_size']:.3f}" for m, f in at.items()))
    _, truth, part = data["bench"]
    slots = {n: bench_probs[n] for n in recognizer.default_slots().values() if n in bench_probs}
    together = combined(slots, by_name, truth, part)
    for name in slots:
        by_name[name].answers.together = {"models": list(slots), "modes": {
            m: {"shown": f["shown"], "thresholds": f["thresholds"]} for m, f in together.items()}}
    manifest.write(manifest_path(folder))
    log.append("three slots together, top-1: " + "; ".join(
        f"{m} {f['together']:.4f} (slots {', '.join(f'{h:.4f}' for h in f['slots'].values())})"
        for m, f in together.items()))
    results = {"level": args.level, "levels": list(LEVELS), "method": METHOD, "taus": list(TAUS),
               "drawbench_sources": data["sources"], "kept_counts": data["kept_counts"],
               "kept_min_calibration": KEPT_MIN_CALIBRATION, "kept_min_prior": KEPT_MIN_PRIOR,
               "mnist": data["mnist_note"], "models": models, "together": together,
               "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", results)
    write_json(out / "config.json", {"drawbench": data["bench_config"].key(), "drawbench_key": DRAWBENCH_KEY.decode(),
                                     "models_dir": str(folder), "data_root": str(default_root()),
                                     "store": str(args.store or "data/drawings.sqlite3"), "level": args.level,
                                     "environment": environment()})  # fmt: skip
    write_atomic(out / "log.txt", ("\n".join(log) + "\n").encode())
    answers_page.write_page(out, results)
    print("\n".join(log))
    return 0
