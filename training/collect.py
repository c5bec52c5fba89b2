"""Collecting: finished runs' metrics -> result rows -> ``<table>.json`` and ``.csv``, and ``winners.json``.

The one writer of ``ResultRow`` / ``TableResult`` (training/records.py); everything after it (the page, the
figures, the export) reads them back with ``TableResult.read``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import statistics
import time
from pathlib import Path
from typing import Any

from recognizer.files import write_atomic
from training.claims import Evidence, evaluate_claims
from training.config import RunConfig
from training.crosssplit import cross_evaluate
from training.data import resolve_protocol
from training.experiments import LAB_TABLES, TABLES, Spec
from training.experiments.profiles import PROFILES
from training.experiments.spec import PlannedRow
from training.models import model_info
from training.records import FIRST_SEED, SEED_METRICS, CrossCell, Metrics, ResultRow, TableResult
from training.runfolder import RunFolder
from training.runner import load_data
from training.utils import environment

UNITS = {"test_accuracy": "fraction 0-1 (also val_accuracy, weighted_f1)",
         "report": "the report's numbers as printed: accuracy in percent"}  # fmt: skip


def finished(runs_dir: Path, config: RunConfig) -> Metrics | None:
    run = RunFolder(runs_dir / config.run_id())
    return run.metrics() if run.done else None


def shown_settings(config: RunConfig, metrics: Metrics | None) -> RunConfig:
    """A config as the results show it: every model argument (defaults too) and the protocol the data had."""
    model_args = {**model_info(config.model).defaults, **config.model_args}
    protocol = metrics.protocol if metrics is not None else config.protocol
    return dataclasses.replace(config, model_args=model_args, protocol=protocol)


def first_seed_figures(metrics: Metrics) -> dict[str, Any]:
    """The row's figures of one run, named as the row names them (validation figures are the best epoch's)."""
    values = {"val_accuracy": metrics.best_val_accuracy, "val_loss": metrics.best_val_loss}
    values.update({name: getattr(metrics, name) for name in FIRST_SEED if name not in values})
    values.update(mnist_test_accuracy=metrics.mnist_test_accuracy, mnist_test_loss=metrics.mnist_test_loss)
    return values


def mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def seed_figures(configs: list[RunConfig], runs: list[Metrics | None]) -> dict[str, Any]:
    done = [m for m in runs if m is not None]
    values: dict[str, Any] = {"seeds": [c.seed for c in configs], "seed_run_ids": [c.run_id() for c in configs],
                              "seeds_done": len(done)}  # fmt: skip
    for metric in SEED_METRICS:
        values[f"{metric}_mean"], values[f"{metric}_std"] = mean_std([getattr(m, metric) for m in done])
    return values


def result_row(planned: PlannedRow, runs_dir: Path) -> ResultRow:
    """A spec row with its runs' figures: the first seed's, and the spread over seeds when there are several."""
    row = planned.row
    if not planned.configs:
        return ResultRow(row.key, "reference", row.label, row.report, row.note)
    runs = [finished(runs_dir, config) for config in planned.configs]
    first, config = runs[0], planned.configs[0]
    out = ResultRow(row.key, "missing", row.label, row.report, row.note, config.run_id(), shown_settings(config, first))
    if first is None:
        return out
    out = dataclasses.replace(out, status="done", **first_seed_figures(first))
    if len(planned.configs) > 1:
        out = dataclasses.replace(out, **seed_figures(planned.configs, runs))
    return out


def add_cross_split(rows: list[ResultRow], splits: tuple[str, ...], runs_dir: Path, root: Path,
                    device: str) -> None:  # fmt: skip
    """Score every finished row's model on each split's test part (Table 8), exact case mapping."""
    for row in rows:
        if not row.done:
            continue
        row.cross = {}
        for split in splits:
            # An official-protocol run is scored on each split's official test part where there is one.
            own = row.settings.protocol
            protocol = resolve_protocol(split, "auto", root) if own == "official" else own
            row.cross[split] = cross_evaluate(runs_dir / row.run_id, load_data(split, protocol, str(root)), device)


def collect_table(spec: Spec, planned: list[PlannedRow], profile: str, runs_dir: Path, root: Path,
                  device: str, records: Path | None = None) -> TableResult:  # fmt: skip
    """The table's rows from the finished runs, and its claims judged on them: paired where the runs (in
    ``runs_dir``, else their records under ``records``) kept per-image predictions."""
    rows = [result_row(p, runs_dir) for p in planned]
    if spec.cross_split:
        add_cross_split(rows, spec.cross_split, runs_dir, root, device)
    done = [r for r in rows if r.done]
    return TableResult(
        table=spec.name,
        title=spec.title,
        profile=profile,
        profile_description=PROFILES[profile]["description"],
        protocol=", ".join(sorted({r.settings.protocol for r in done})) or None,
        device=", ".join(sorted({r.device for r in done})) or None,
        units=UNITS,
        notes=spec.notes,
        rows=rows,
        environment=environment(),
        generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        claims=evaluate_claims(rows, spec.claims, Evidence(runs_dir, records)),
    )


# ---------------------------------------------------------------------------------------------
# Writing and reading the tables


CSV_COLUMNS = [
    "key", "label", "status", "run_id", "model", "split", "protocol", "profile", "optimizer", "lr", "loss",
    "focal_gamma", "focal_alpha", "activation", "blocks", "batch_size", "epochs", "limit_train", "limit_val", "seed",
    "epochs_run", "best_epoch", "n_train", "n_val", "n_test", "val_accuracy_pct", "val_loss", "test_accuracy_pct",
    "report_test_accuracy_pct", "diff_test_accuracy_pts", "test_loss", "report_test_loss", "weighted_f1",
    "train_seconds", "report_train_seconds", "inference_seconds", "test_accuracy_mean_pct", "test_accuracy_std_pct",
    "mnist_test_accuracy_pct", "mnist_test_accuracy_mean_pct", "mnist_test_accuracy_std_pct", "device",
    "git_commit", "torch",
]  # fmt: skip


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 3)


def csv_row(row: ResultRow) -> dict[str, Any]:
    """One CSV line: the row's settings and figures, accuracies in percent beside the report's."""
    flat, report = row.to_dict(), row.report
    out = {k: flat.get(k) for k in CSV_COLUMNS}
    out.update({f"{name}_pct": _pct(getattr(row, name)) for name in (
        "val_accuracy", "test_accuracy", "test_accuracy_mean", "test_accuracy_std", "mnist_test_accuracy",
        "mnist_test_accuracy_mean", "mnist_test_accuracy_std")})  # fmt: skip
    out.update(report_test_accuracy_pct=report.get("test_accuracy"), report_test_loss=report.get("test_loss"),
               report_train_seconds=report.get("train_seconds"), git_commit=row.environment.get("git_commit"),
               torch=row.environment.get("torch"))  # fmt: skip
    if row.test_accuracy is not None and report.get("test_accuracy") is not None:
        out["diff_test_accuracy_pts"] = round(100 * row.test_accuracy - report["test_accuracy"], 3)
    for split, cell in (row.cross or {}).items():
        out.update(cross_csv(split, cell, report.get("cross", {}).get(split, {})))
    return out


def cross_csv(split: str, cell: CrossCell, theirs: dict[str, Any]) -> dict[str, Any]:
    """Table 8: one group of columns per test split."""
    return {f"{split}_test_accuracy_pct": _pct(cell.test_accuracy), f"{split}_weighted_f1": cell.weighted_f1,
            f"{split}_inference_seconds": cell.inference_seconds, f"{split}_n_test": cell.n_test,
            f"report_{split}_test_accuracy_pct": theirs.get("test_accuracy"),
            f"report_{split}_weighted_f1": theirs.get("weighted_f1"),
            f"report_{split}_inference_seconds": theirs.get("inference_seconds")}  # fmt: skip


def write_table(result: TableResult, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    result.write(out_dir)
    rows = [csv_row(r) for r in result.rows]
    columns = CSV_COLUMNS + [k for k in dict.fromkeys(k for r in rows for k in r) if k not in CSV_COLUMNS]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(out_dir / f"{result.table}.csv", table.getvalue())


def copy_records(result: TableResult, runs_dir: Path, out_dir: Path) -> None:
    """Every number's run, with its config and log (no weights), beside the tables."""
    for row in result.rows:
        for run_id in row.run_ids:
            run, target = RunFolder(runs_dir / run_id), out_dir / "runs" / run_id
            if run.done and run.path.resolve() != target.resolve():
                run.copy_record(target)


def load_results(out_dir: Path) -> dict[str, TableResult]:
    """Every table's results found in ``out_dir``, in the reports' order, then the lab tables."""
    names = TABLES + LAB_TABLES
    return {name: TableResult.read(out_dir / f"{name}.json") for name in names if (out_dir / f"{name}.json").exists()}


