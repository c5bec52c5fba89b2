"""Figures and the comparison page for the reproduced tables (``TableResult``, assets/results/<table>.json); the
claims are judged in training/claims.py and worded by ``recognizer.verdicts``.

- ``plot_table``: training curves (as the report's figures 3-8), bars beside the report, and for
  Table 8 the 3x3 heat map and the nine confusion matrices.
- ``write_readme``: assets/results/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from recognizer.files import write_atomic  # noqa: E402
from recognizer.labels import MERGED_CHARS, display  # noqa: E402
from recognizer.verdicts import basis_text, interval_text, verdict_cell  # noqa: E402
from training.experiments.profiles import PROFILES, QUICK_BUDGET_NOTE  # noqa: E402
from training.records import ClaimResult, CrossCell, ResultRow, TableResult  # noqa: E402
from training.runfolder import RunFolder  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Figures


def _history(runs_dir: Path, run_id: str) -> list[dict]:
    path = RunFolder(runs_dir / run_id).history_json
    return json.loads(path.read_text()) if path.exists() else []


def _longest_per_chain(rows: list[ResultRow]) -> list[ResultRow]:
    """Rows that differ only in epochs share one history (warm starts): plot the longest once."""
    keep: dict[str, ResultRow] = {}
    for row in rows:
        chain = row.settings.chain_key()
        if chain not in keep or row.settings.epochs > keep[chain].settings.epochs:
            keep[chain] = row
    return list(keep.values())


def plot_curves(result: TableResult, runs_dir: Path, path: Path) -> Path | None:
    rows = _longest_per_chain(result.done)
    histories = {r.key: _history(runs_dir, r.run_id) for r in rows}
    if not any(histories.values()):
        return None
    has_val = any("val_loss" in h[0] for h in histories.values() if h)
    panels = [("train_loss", "training loss"), ("train_accuracy", "training accuracy")]
    if has_val:
        panels += [("val_loss", "validation loss"), ("val_accuracy", "validation accuracy")]
    legend_inches = min(4.5, 0.6 + 0.065 * max(len(r.label) for r in rows))
    width = 4.2 * len(panels) + legend_inches
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 3.8), squeeze=False)
    colors = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(rows), 2)))
    for row, color in zip(rows, colors, strict=False):
        history = histories[row.key]
        if not history:
            continue
        epochs = [h["epoch"] for h in history]
        for ax, (metric, _) in zip(axes[0], panels, strict=False):
            values = [h.get(metric) for h in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, marker="o", markersize=3, color=color, label=row.label)
    for ax, (_, title) in zip(axes[0], panels, strict=False):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(f"{result.title} [{result.profile}]", fontsize=10)
    # Fixed margins: tight_layout measures every text box and costs seconds per figure on a busy CPU.
    fig.subplots_adjust(left=0.5 / width, right=1 - (legend_inches + 0.1) / width, bottom=0.14, top=0.84, wspace=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bar_panels(rows: list[ResultRow], seeded: bool) -> list[tuple]:
    """(title, first seed, mean, std, report, log scale) per panel."""
    ours = lambda metric, scale=1.0: [None if getattr(r, metric) is None else scale * getattr(r, metric) for r in rows]
    theirs = lambda metric: [r.report.get(metric) for r in rows]
    if seeded:
        panels = [
            ("test accuracy % (100 images)", ours("test_accuracy", 100), ours("test_accuracy_mean", 100),
             ours("test_accuracy_std", 100), theirs("test_accuracy"), False),
            ("full MNIST test accuracy %", ours("mnist_test_accuracy", 100), ours("mnist_test_accuracy_mean", 100),
             ours("mnist_test_accuracy_std", 100), [None] * len(rows), False),
            ("training time s (first seed)", ours("train_seconds"), None, None, theirs("train_seconds"), True),
        ]  # fmt: skip
    else:
        panels = [
            ("test accuracy %", ours("test_accuracy", 100), None, None, theirs("test_accuracy"), False),
            ("test loss", ours("test_loss"), None, None, theirs("test_loss"), False),
            ("training time s", ours("train_seconds"), None, None, theirs("train_seconds"), True),
        ]
    return panels


def plot_bars(result: TableResult, path: Path) -> Path:
    rows = result.rows
    labels = [r.label for r in rows]
    seeded = any(r.seeds is not None for r in rows)
    panels = _bar_panels(rows, seeded)
    height = max(3.0, 0.32 * len(rows) + 1.2)
    fig, axes = plt.subplots(1, 3, figsize=(15, height), sharey=True)
    y = np.arange(len(rows))
    for ax, (title, single, mean, std, report, log) in zip(axes, panels, strict=True):
        first_seed = f"here, seed {(rows[0].seeds or [''])[0]}" if seeded else "here"
        bars = [(first_seed, single, None, "tab:blue")]
        if mean is not None:
            seeds_done = "" if rows[0].seeds_done is None else rows[0].seeds_done
            bars.append((f"here, mean ± std ({seeds_done} seeds)", mean, std, "tab:cyan"))
        bars.append(("report", report, None, "tab:orange"))
        width = 0.8 / len(bars)
        for i, (name, values, errors, color) in enumerate(bars):
            vals = [np.nan if v is None else v for v in values]
            errs = None if errors is None else [0 if e is None else e for e in errors]
            ax.barh(y + (i - (len(bars) - 1) / 2) * width, vals, height=width, xerr=errs, color=color, label=name,
                    capsize=2)
        ax.set_title(title, fontsize=10)
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        finite = [v for _, values, _, _ in bars for v in values if v is not None]
        if "accuracy" in title and finite:
            ax.set_xlim(max(0.0, min(finite) - 5), min(100.0, max(finite) + 2))
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].invert_yaxis()
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="upper right", ncols=3)
    fig.suptitle(f"{result.title} [{result.profile}]", fontsize=10, x=0.4)
    fig.subplots_adjust(left=0.2, right=0.98, bottom=0.55 / height, top=1 - 0.75 / height, wspace=0.08)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_cross_heatmap(result: TableResult, path: Path) -> Path | None:
    rows = [r for r in result.done if r.cross]
    if not rows:
        return None
    columns = result.cross_columns
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, title, scale in ((axes[0], "test_accuracy", "accuracy % here (report)", 100),
                                     (axes[1], "weighted_f1", "weighted F1 here (report)", 1)):  # fmt: skip
        grid = np.array([[getattr(r.cross[c], metric) * scale for c in columns] for r in rows])
        image = ax.imshow(grid, cmap="viridis")
        fig.colorbar(image, ax=ax, fraction=0.046)
        for i, row in enumerate(rows):
            for j, column in enumerate(columns):
                theirs = row.report.get("cross", {}).get(column, {}).get(metric)
                text = f"{grid[i, j]:.2f}" if scale == 100 else f"{grid[i, j]:.4f}"
                text += "" if theirs is None else f"\n({theirs})"
                ax.text(j, i, text, ha="center", va="center", fontsize=9,
                        color="white" if grid[i, j] < grid.mean() else "black")
        ax.set_xticks(range(len(columns)), [f"tested on\n{c}" for c in columns], fontsize=8)
        ax.set_yticks(range(len(rows)), [f"trained on {r.settings.split}" for r in rows], fontsize=8)
        ax.set_title(title, fontsize=10)
    fig.suptitle(f"{result.title} [{result.profile}]; exact case mapping", fontsize=9)
    fig.subplots_adjust(left=0.12, right=0.93, bottom=0.12, top=0.86, wspace=0.5)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _draw_confusion(ax, cell: CrossCell, title: str, tick_size: float | None) -> None:
    cm = np.array(cell.confusion_matrix, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        normed = np.nan_to_num(cm / cm.sum(1, keepdims=True))
    ax.imshow(normed, cmap="Blues", vmin=0, vmax=1)
    merged = tuple(cell.chars) == MERGED_CHARS
    names = [display(c, merged) for c in cell.chars]
    if tick_size is None:  # the grid: 62 labels per axis on nine small panels are unreadable and slow to draw
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.set_xticks(range(len(names)), names, fontsize=tick_size, rotation=90)
        ax.set_yticks(range(len(names)), names, fontsize=tick_size)
    ax.set_xlabel("predicted", fontsize=7)
    ax.set_ylabel("true", fontsize=7)
    ax.set_title(title, fontsize=8)


def plot_confusions(result: TableResult, folder: Path) -> list[Path]:
    """The nine confusion matrices (rows normalised), one grid and one file each."""
    rows = [r for r in result.done if r.cross]
    if not rows:
        return []
    columns = result.cross_columns
    name = result.table
    paths = []
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(4 * len(columns), 4 * len(rows)), squeeze=False)
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            cell = row.cross[column]
            title = f"trained {row.settings.split} / tested {column}: {100 * cell.test_accuracy:.2f}%"
            _draw_confusion(axes[i][j], cell, title, None)
            single, ax = plt.subplots(figsize=(9, 9))
            _draw_confusion(ax, cell, title, 5.5)
            single.subplots_adjust(left=0.08, right=0.98, bottom=0.08, top=0.95)
            paths.append(folder / f"{name}-confusion-{row.settings.split}-{column}.png")
            single.savefig(paths[-1], dpi=100)
            plt.close(single)
    fig.suptitle(f"{result.title} [{result.profile}]: confusion matrices, rows normalised", fontsize=12)
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.05, top=0.92, wspace=0.15, hspace=0.25)
    paths.insert(0, folder / f"{name}-confusion.png")
    fig.savefig(paths[0], dpi=90)
    plt.close(fig)
    return paths


def plot_table(result: TableResult, runs_dir: Path, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    name = result.table
    paths = [plot_curves(result, runs_dir, folder / f"{name}-curves.png")]
    paths.append(plot_bars(result, folder / f"{name}-bars.png"))
    if result.cross_columns:
        paths.append(plot_cross_heatmap(result, folder / f"{name}-heatmap.png"))
        paths += plot_confusions(result, folder)
    return [p for p in paths if p is not None]


# ---------------------------------------------------------------------------------------------
# The comparison page


def _num(value: float | None, digits: int = 2, scale: float = 1.0) -> str:
    return "" if value is None else f"{scale * value:.{digits}f}"


def _diff(ours: float | None, theirs: float | None, digits: int = 2) -> str:
    return "" if ours is None or theirs is None else f"{ours - theirs:+.{digits}f}"


def _mean_std(row: ResultRow, metric: str) -> str:
    mean, std = getattr(row, f"{metric}_mean"), getattr(row, f"{metric}_std")
    return "" if mean is None else f"{100 * mean:.1f} ± {100 * (std or 0):.1f}"


def _table_md(result: TableResult) -> list[str]:
    if any(r.seeds is not None for r in result.rows):
        return _seeded_md(result.rows)
    if result.cross_columns:
        return _cross_md(result.rows, result.cross_columns)
    winners = {c.winner for c in result.claims if c.kind == "best" and c.basis == "validation"}
    return _plain_md(result.rows, winners)


def _seeded_md(rows: list[ResultRow]) -> list[str]:
    """Study B: the first seed beside the mean and spread over seeds, on both test sets."""
    lines = ["| run | acc % (100 images), first seed | mean ± std | full MNIST acc %, first seed | mean ± std "
             "| report % | Δ (first seed − report) | train s |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        theirs = r.report.get("test_accuracy")
        acc = None if r.test_accuracy is None else 100 * r.test_accuracy
        note = f" ({r.note})" if r.note else ""
        lines.append(f"| {r.label}{note} | {_num(acc, 0)} | {_mean_std(r, 'test_accuracy')} | "
                     f"{_num(r.mnist_test_accuracy, 2, 100)} | {_mean_std(r, 'mnist_test_accuracy')} | "
                     f"{'' if theirs is None else theirs} | {_diff(acc, theirs, 0)} | "
                     f"{_num(r.train_seconds, 1)} |")
    return lines


def _cross_cell_md(ours: CrossCell | None, theirs: dict) -> str:
    if ours is None:
        return "not run"
    return (f"{100 * ours.test_accuracy:.2f}% / {ours.weighted_f1:.4f} / "
            f"{ours.inference_seconds:.2f} s<br>(report {theirs.get('test_accuracy')} / "
            f"{theirs.get('weighted_f1')} / {theirs.get('inference_seconds')} s; "
            f"Δ {_diff(100 * ours.test_accuracy, theirs.get('test_accuracy'))} pts)")


def _cross_md(rows: list[ResultRow], columns: list[str]) -> list[str]:
    """Table 8: each row's model on every split's test part, beside the report's cells."""
    lines = ["| trained \\ tested | " + " | ".join(columns) + " | train s (report) |",
             "|---" * (len(columns) + 2) + "|"]  # fmt: skip
    for r in rows:
        cells = [_cross_cell_md((r.cross or {}).get(c), r.report.get("cross", {}).get(c, {})) for c in columns]
        lines.append(f"| {r.label} | " + " | ".join(cells) +
                     f" | {_num(r.train_seconds, 1)} ({r.report.get('train_seconds', '')}) |")
    lines.append("")
    sizes = next(r.cross for r in rows if r.cross)
    devices = sorted({str(cell.device) for r in rows for cell in (r.cross or {}).values()})
    lines.append(f"Cells: accuracy / weighted F1 / inference time over the whole test part (on "
                 f"{', '.join(devices)}, batch of the run's size); test parts: "
                 + ", ".join(f"{c} {sizes[c].n_test:,} images" for c in columns))
    return lines


def _plain_md(rows: list[ResultRow], winners: set[str]) -> list[str]:
    lines = ["| run | test acc % | report % | Δ pts | test loss | report | Δ | val acc % | val loss | train s "
             "| report s |", "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        rep = r.report
        acc = None if r.test_accuracy is None else 100 * r.test_accuracy
        star = " ★" if r.key in winners else ""
        status = {"reference": " (reference)", "missing": " (not run yet)"}.get(r.status, "")
        lines.append(
            f"| {r.label}{star}{status} | {_num(acc)} | {rep.get('test_accuracy', '')} | "
            f"{_diff(acc, rep.get('test_accuracy'))} | {_num(r.test_loss, 4)} | {rep.get('test_loss', '')} | "
            f"{_diff(r.test_loss, rep.get('test_loss'), 4)} | {_num(r.val_accuracy, 2, 100)} | "
            f"{_num(r.val_loss, 4)} | {_num(r.train_seconds, 1)} | {rep.get('train_seconds', '')} |"
        )
    return lines


def _verdict(claim: ClaimResult) -> str:
    judged = claim.to_dict()
    interval = interval_text(judged)
    return (f"Report: {claim.text}. Here: **{claim.verdict}**{': ' + interval if interval else ''}. "
            f"{basis_text(judged)}: {claim.detail}.")  # fmt: skip


def _setting_line(results: dict[str, TableResult]) -> str:
    env = next(iter(results.values())).environment
    profiles = sorted({r.profile for r in results.values()})
    protocols = sorted({p for r in results.values() for p in (r.protocol or "").split(", ") if p})
    devices = sorted({d for r in results.values() for d in (r.device or "").split(", ") if d})
    return (f"Profile **{', '.join(profiles)}** · protocol **{', '.join(protocols) or 'n/a'}** · device "
            f"**{', '.join(devices) or 'n/a'}** · collected at git {env.get('git_commit')} with torch "
            f"{env.get('torch')}, python {env.get('python')}, {env.get('host_cpus')} CPUs (each row's `environment` "
            f"names what trained it)")  # fmt: skip


def _page_head(results: dict[str, TableResult], out_dir: Path) -> list[str]:
    """The page's top: where and under which budget the tables were made, how to read them, every verdict."""
    lines = ["# The reports' tables, reproduced", "",
             "Generated by `python -m training reproduce` (training/reproduce.py); do not edit by hand.", "",
             _setting_line(results), ""]  # fmt: skip
    for profile in sorted({r.profile for r in results.values()}):
        lines.append(f"- **{profile}**: {PROFILES[profile]['description']}.")
        if profile == "quick":
            lines.append(f"  {QUICK_BUDGET_NOTE}")
    # How and where these runs were made (machines, leases, what was left out), written by whoever ran them.
    if (out_dir / "NOTES.md").is_file():
        lines += ["", (out_dir / "NOTES.md").read_text().strip()]
    lines += [
        "",
        "Read the numbers with this in mind:",
        "- Winners are chosen on validation metrics (validation accuracy, then validation loss), never on test; "
        "★ marks the row chosen. Study B has no validation part: its comparisons use test figures, as the report "
        "does, with the spread over seeds beside them. Table 8 chooses nothing and is compared on test.",
        "- Each verdict is the expected row minus every rival on the test images, with a 95% interval: **holds** "
        "when every interval lies above zero, **reversed** when some rival's lies below zero, **tie** otherwise "
        "(the test images cannot tell them apart); the interval shown is the deciding one. Intervals are paired "
        "(bootstrap over the same test images, McNemar's test) where the runs kept per-image predictions, else "
        "unpaired from the accuracies (runs recorded before predictions were kept, and Table 8's cross-split "
        "scores); with several seeds the spread over seeds is given too.",
        "- Under the `pool` protocol (DATA.md) the data are not the reports' official splits: the parts are "
        "smaller and drawn differently, so the absolute numbers are not expected to match, only the comparisons.",
        "- Times are those of the device each table names, not the report's GPU, and runs trained side by side "
        "(`--workers`) slowed each other: compare times within a table, not with the report. A reduced profile "
        "trains on a fraction of the data for a few epochs, which lowers every accuracy and shrinks the gaps the "
        "report measured.",
        "",
        "| table | conclusion | here |",
        "|---|---|---|",
    ]
    for name, result in results.items():
        lines += [f"| [{name}](#{name.lower()}) | {claim.text} | {verdict_cell(claim.to_dict())} |"
                  for claim in result.claims]
    return lines


def _table_section(name: str, result: TableResult, out_dir: Path) -> list[str]:
    """One table: its rows beside the report's, the verdicts, the notes and the figures."""
    lines = ["", f'<a id="{name.lower()}"></a>', "", f"## {result.title}", "",
             f"`{name}` · profile {result.profile} · protocol {result.protocol} · "
             f"device {result.device} · [{name}.csv]({name}.csv) · [{name}.json]({name}.json)", ""]  # fmt: skip
    lines += _table_md(result)
    lines.append("")
    lines += [f"- {_verdict(claim)}" for claim in result.claims]
    if result.notes:
        lines.append(f"- {result.notes}")
    if (out_dir / f"{name}.md").is_file():  # a table's own notes (Study B SSL: the unlabelled data, the pretraining)
        lines += (out_dir / f"{name}.md").read_text().strip().splitlines()
    figures = sorted((out_dir / "figures").glob(f"{name}-*.png"))
    shown = [f for f in figures if "-confusion-" not in f.name]
    if shown:
        lines.append("")
        lines += [f"![{f.stem}](figures/{f.name})" for f in shown]
    singles = [f for f in figures if "-confusion-" in f.name]
    if singles:
        links = [f"[{f.stem.split('-confusion-')[1]}](figures/{f.name})" for f in singles]
        lines += ["", "Each confusion matrix alone (trained-tested): " + ", ".join(links)]
    return lines


def write_readme(results: dict[str, TableResult], out_dir: Path) -> Path:
    path = out_dir / "README.md"
    if not results:
        write_atomic(path, "# Reproduced tables\n\nNothing has been run yet: `python -m training reproduce all`.\n")
        return path
    lines = _page_head(results, out_dir)
    for name, result in results.items():
        lines += _table_section(name, result, out_dir)
    write_atomic(path, "\n".join(lines) + "\n")
    return path
