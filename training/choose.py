"""Choosing what to export: the runs the results tables name (``select_candidates``) and the drawing recipe's run per
split (``recipe_candidates``), each a ``Candidate`` that ``training/export.py`` takes through its one path.

Which runs: Table 8's final residual CNN of each split (slot = split), and for each baseline family (LeNet-5, plain
CNN, ResNet-50) its run with the best *validation* accuracy over every table (``pick_winners``); test figures
never choose. A table without a validation part (Study B's SSL table) ships the first-seed run of the row its spec's
``export_rows`` rank best on the figure its claims are decided on (``pick_without_validation``), exported
only when the table is named (``--table studyB_ssl``, with its runs folder), so the default export is unchanged.

The drawing recipe (``--lab``): per split, the finished row of the recipe tables (``experiments.LAB_TABLES``) in the
results folder with the best validation accuracy (then validation loss: ``validation_rank``), never a test
or drawing figure; it ships as ``<model>_lab-<split>`` with the checks of ``training/slots.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from recognizer.manifest import SLOTS
from training.experiments import LAB_TABLES, TABLES, load_spec
from training.paths import repo_relative
from training.records import RecordError, ResultRow, TableResult, Winner, Winners

FINAL_TABLE = "table8"  # the final residual CNN per split
FINAL_FAMILY = "residual_cnn"
BASELINE_FAMILIES = ("lenet5", "plain_cnn", "resnet50")
RECIPE_RESULTS = "lab-full"  # assets/results/<this>: where the `lab` profile's ablation is written (see README)


@dataclass
class Candidate:
    """One run to export and where the choice came from."""

    run_id: str
    name: str | None = None  # default: <family>-<split>
    slot: str | None = None
    source: str = "--run"
    notes: list[str] = field(default_factory=list)
    checked: bool = False  # a drawing-recipe model: its card, checks and default-slot rule (training/slots.py)


# ---------------------------------------------------------------------------------------------
# The results tables' winners


def read_tables(folder: Path, profile: str | None, messages: list[str]) -> dict[str, TableResult]:
    """The results tables of ``folder`` (of ``profile`` when given), by name; what is left out goes to messages."""
    tables: dict[str, TableResult] = {}
    for path in sorted(folder.glob("*.json")):
        if path.name == Winners.FILE:
            continue  # the runner's summary of these very tables, not a table
        try:
            table = TableResult.read(path)
        except RecordError as err:
            reason = str(err).removeprefix(f"{path}: ")
            messages.append(f"skipping {repo_relative(path)}: not a results table ({reason})")
            continue
        if profile and table.profile not in ("", profile):
            messages.append(f"skipping {path.name}: profile {table.profile!r}, not {profile!r}")
            continue
        tables[path.stem] = table
    return tables


def final_candidates(chosen: Winners, messages: list[str]) -> list[Candidate]:
    """Table 8's residual CNN of each split, in its slot."""
    picked = []
    for split in SLOTS:
        winner = chosen.table8.get(split)
        if winner is None:
            messages.append(f"{FINAL_TABLE}.json has no finished {split} row")
            continue
        picked.append(Candidate(winner.run_id, f"{FINAL_FAMILY}-{split}", split, f"{FINAL_TABLE} row {split}"))
    return picked


def baseline_candidates(chosen: Winners, messages: list[str]) -> list[Candidate]:
    """Each baseline family's run with the best validation accuracy, per split."""
    picked = []
    for family in BASELINE_FAMILIES:
        by_split = chosen.best_by_family.get(family, {})
        if not by_split:
            messages.append(f"no finished results row for {family} with a validation score (expected in table2.json)")
        for split, winner in sorted(by_split.items()):
            picked.append(Candidate(winner.run_id, f"{family}-{split}", None,
                                    f"{winner.table} row {winner.key} (best validation accuracy of the "
                                    f"{family} runs on {split})"))
    return picked


def no_validation_candidates(tables: dict[str, TableResult]) -> list[Candidate]:
    """The run each table without a validation part ships (``pick_without_validation``)."""
    return [Candidate(w.run_id, None, None, f"{w.table} row {w.key}, first seed (no validation part: the row of its "
                      "export_rows with the best mean over seeds on the figure its claims are decided on)")
            for w in pick_without_validation(tables)]  # fmt: skip


def select_candidates(results_dir: Path, profile: str | None,
                      only: list[str] | None = None) -> tuple[list[Candidate], list[str]]:  # fmt: skip
    """The runs the results tables (``only`` these, when given) name as winners, and messages about what is
    missing."""
    if not results_dir.is_dir():
        return [], [f"no results folder {results_dir}: run `python -m training reproduce` first, or pass --run"]
    folder = results_dir / profile if profile and (results_dir / profile).is_dir() else results_dir
    messages: list[str] = []
    tables = read_tables(folder, profile, messages)
    if only:
        tables = {name: table for name, table in tables.items() if name in only}
        messages += [f"no {folder / name}.json" for name in only if name not in tables]
    # One rule for "the winner", shared with winners.json: pick_winners (validation, never test).
    chosen = pick_winners(tables)
    picked: list[Candidate] = []
    if FINAL_TABLE in tables:
        picked += final_candidates(chosen, messages)
    elif not only:
        messages.append(f"no {folder / FINAL_TABLE}.json: the final residual CNNs (one per split) are not exported")
    if not only:
        return picked + baseline_candidates(chosen, messages), messages
    # Named tables only: a table without a validation part ships its pick when asked for by name.
    return picked + baseline_candidates(chosen, []) + no_validation_candidates(tables), messages


# ---------------------------------------------------------------------------------------------
# The drawing recipe's run per split


def read_recipe_tables(folder: Path, profile: str | None, messages: list[str]) -> list[TableResult]:
    """The lab tables (``experiments.LAB_TABLES``) written in ``folder`` (of ``profile`` when given)."""
    tables = []
    for name in LAB_TABLES:
        path = folder / f"{name}.json"
        if not path.is_file():
            continue
        try:
            table = TableResult.read(path)
        except RecordError as err:
            messages.append(f"skipping {path}: {err}")
            continue
        if profile and table.profile not in ("", profile):
            messages.append(f"skipping {path}: profile {table.profile!r}, not {profile!r}")
            continue
        tables.append(table)
    if not any((folder / f"{name}.json").is_file() for name in LAB_TABLES):
        messages.append(f"no lab table ({', '.join(LAB_TABLES)}) in {folder}: run `python -m training reproduce "
                        f"lab_slots --profile lab --out {folder}` (or `lab`, the whole ablation)")  # fmt: skip
    return tables


def best_per_split(tables: list[TableResult]) -> dict[str, tuple[str, ResultRow]]:
    """Each split's finished row (and its table) with the best validation figures; rows without one never win."""
    best: dict[str, tuple[str, ResultRow]] = {}
    for table in tables:
        for row in table.done:
            if row.val_accuracy is None or not row.run_id:
                continue
            split = row.settings.split
            if split not in best or validation_rank(row) > validation_rank(best[split][1]):
                best[split] = (table.table, row)
    return best


def recipe_candidates(folder: Path, profile: str | None = None) -> tuple[list[Candidate], list[str]]:
    """The recipe run per comparison slot, chosen on validation, and messages about what is missing."""
    messages: list[str] = []
    tables = read_recipe_tables(folder, profile, messages)
    best = best_per_split(tables)
    picks = []
    for split in SLOTS:
        if split not in best:
            if tables:
                messages.append(f"no finished lab row on {split} with a validation score in {folder}")
            continue
        table, row = best[split]
        source = (f"{table} row {row.key} (best validation accuracy {100 * row.val_accuracy:.2f}% of the lab rows "
                  f"on {split}; profile {row.settings.profile})")  # fmt: skip
        picks.append(Candidate(row.run_id, recipe_model_name(row.settings.model, split), None, source, checked=True))
    return picks, messages


def validation_rank(row: ResultRow) -> tuple[float, float]:
    """How a finished row ranks among rivals: validation accuracy, then validation loss (never a test figure).

    Validation losses of different losses are not comparable: they only break ties among cross-entropy runs."""
    cross_entropy = row.settings.loss == "cross_entropy" and row.val_loss
    return (row.val_accuracy or 0.0, -row.val_loss if cross_entropy else -math.inf)


def pick_without_validation(results: dict[str, TableResult]) -> list[Winner]:
    """The shipped run of each table without a validation part that names ``export_rows`` (Study B's SSL table):
    the row among them with the best ``export_metric`` (the figure the table's claims are decided on; for Study B
    the mean over seeds on the full MNIST test set), and that row's first-seed run (its single-run figure). No other
    test figure is read: not the seeds' own scores, not the report's 100 images."""
    picked = []
    for name, result in results.items():
        spec = load_spec(name) if name in TABLES else None
        if spec is None or not spec.export_rows:
            continue
        rows = [r for r in result.done if r.key in spec.export_rows and getattr(r, spec.export_metric) is not None]
        if rows:
            best = max(rows, key=lambda r: getattr(r, spec.export_metric))
            picked.append(Winner(best.run_id, best.settings.profile, name, best.key, None, best.test_accuracy))
    return picked


def pick_winners(results: dict[str, TableResult]) -> Winners:
    """Table 8's run per split, and the best run of each model family per split.

    'Best' is chosen on validation accuracy (then validation loss) over every EMNIST table's finished
    rows, never on test.
    """
    chosen = Winners()
    for row in results["table8"].done if "table8" in results else []:
        chosen.table8[row.settings.split] = Winner(row.run_id, row.settings.profile)
    best: dict[tuple[str, str], tuple[tuple[float, float], Winner]] = {}
    for name, result in results.items():
        for row in result.done:
            if row.val_accuracy is None:
                continue
            key = (row.settings.model, row.settings.split)
            rank = validation_rank(row)
            if key not in best or rank > best[key][0]:
                best[key] = (rank, Winner(row.run_id, row.settings.profile, name, row.key, row.val_accuracy,
                                          row.test_accuracy))  # fmt: skip
    for (model, split), (_, winner) in sorted(best.items()):
        chosen.best_by_family.setdefault(model, {})[split] = winner
    return chosen


def recipe_model_name(model: str, split: str) -> str:
    """The name a recipe run ships under: ``<model>_lab-<split>``."""
    return f"{model}_lab-{split}"
