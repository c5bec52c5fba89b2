"""The committed figures recomputed from what they claim to come from: each shipped model's test accuracy through
ONNX Runtime on the real test images, and every result row (JSON, CSV, the results page) from its run records."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from recognizer.inference import Recognizer
from training import report
from training.collect import csv_row, first_seed_figures, load_results, mean_std
from training.records import SEED_METRICS, Metrics, TableResult

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "exported_models"
RESULTS = [REPO / "assets/results", REPO / "assets/results/paper"]
MANIFEST = json.loads((MODELS / "manifest.json").read_text()) if (MODELS / "manifest.json").exists() else None


@pytest.mark.shared_data
@pytest.mark.skipif(MANIFEST is None, reason="no shipped models (exported_models/manifest.json)")
@pytest.mark.parametrize("name", [e["name"] for e in MANIFEST["models"]] if MANIFEST else [])
def test_shipped_model_scores_its_manifest_accuracy_through_onnx_runtime(name: str, shared_root: Path) -> None:
    """The whole test part of the model's own split and protocol, through the app's runtime, image for image."""
    from training.data import load_split

    recognizer = Recognizer(MODELS, intra_op_num_threads=1)
    entry = recognizer.entry(name)
    x, y = load_split(entry.split, entry.protocol, root=shared_root).parts["test"]
    correct = 0
    for start in range(0, len(y), 2048):
        logits, _ = recognizer.run(name, x[start:start + 2048].astype(np.float32) / 255.0)
        correct += int((logits.argmax(1) == y[start:start + 2048]).sum())
    assert len(y) == entry.metrics.runtime_n_test
    assert correct == round(entry.metrics.runtime_test_accuracy * len(y)), (
        f"{name}: {correct}/{len(y)} = {correct / len(y):.6f} through ONNX Runtime, "
        f"the manifest says {entry.metrics.runtime_test_accuracy:.6f}")


def _same(ours: object, theirs: object) -> bool:
    if isinstance(ours, float) and isinstance(theirs, float):
        return math.isclose(ours, theirs, rel_tol=1e-12, abs_tol=1e-15) or (math.isnan(ours) and math.isnan(theirs))
    return ours == theirs


def _row_problems(table: TableResult, folder: Path) -> list[str]:
    """Every figure of every finished row against the metrics.json of the runs it names."""
    problems = []
    for row in table.done:
        runs = [folder / "runs" / run_id for run_id in row.run_ids]
        metrics = [Metrics.read(r) if (r / "metrics.json").is_file() else None for r in runs]
        if metrics[0] is None:
            problems.append(f"{table.table}/{row.key}: no runs/{row.run_ids[0]}/metrics.json")
            continue
        expected = first_seed_figures(metrics[0])
        if row.seed_run_ids:
            done = [m for m in metrics if m is not None]
            expected["seeds_done"] = len(done)
            for metric in SEED_METRICS:
                expected[f"{metric}_mean"], expected[f"{metric}_std"] = mean_std([getattr(m, metric) for m in done])
        for key, value in expected.items():
            if not _same(getattr(row, key), value):
                problems.append(f"{table.table}/{row.key}.{key}: row {getattr(row, key)!r}, run record {value!r}")
    return problems


@pytest.mark.parametrize("folder", RESULTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_result_row_equals_its_run_records_and_every_record_has_its_row(folder: Path) -> None:
    tables = load_results(folder)
    assert tables, f"no results in {folder}"
    problems = [p for table in tables.values() for p in _row_problems(table, folder)]
    assert not problems, "\n".join(problems)
    # The other way: a run record no row names is a figure that is no longer shown (or a row that went missing).
    cited = {run_id for table in tables.values() for row in table.rows for run_id in row.run_ids}
    cited |= {row.settings.init_from for table in tables.values() for row in table.rows
              if row.settings is not None and row.settings.init_from}
    for record in (folder / "pretraining").glob("*.json"):  # the pretrainings compared, the chosen and the other
        cited |= {p["run_id"] for p in json.loads(record.read_text())["pretrainings"]}
    stale = sorted(p.name for p in (folder / "runs").iterdir() if p.is_dir() and p.name not in cited)
    assert not stale, f"{folder}/runs holds records no row names: {stale}"


@pytest.mark.parametrize("folder", RESULTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_csv_and_the_results_page_are_the_json_rows_both_ways(folder: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    tables = load_results(folder)
    for name, table in tables.items():
        with (folder / f"{name}.csv").open(newline="") as f:
            written = list(csv.DictReader(f))
        expected = [{k: "" if v is None else str(v) for k, v in csv_row(row).items()} for row in table.rows]
        assert [r["key"] for r in written] == [r["key"] for r in expected], name  # no row missing, none extra
        for ours, theirs in zip(written, expected, strict=True):
            differ = {k: (ours.get(k), v) for k, v in theirs.items() if ours.get(k, "") != v}
            assert not differ, f"{name}.csv row {theirs['key']}: {differ}"
    pages: dict[Path, str] = {}
    monkeypatch.setattr(report, "write_atomic", lambda path, text: pages.__setitem__(Path(path), text))
    report.write_readme(tables, folder)
    committed = (folder / "README.md").read_text().splitlines()
    rendered = pages[folder / "README.md"].splitlines()
    stale = [line for line in committed if line.startswith("|") and line not in rendered]
    missing = [line for line in rendered if line.startswith("|") and line not in committed]
    assert not stale and not missing, f"{folder}/README.md: rows not in the results {stale}; rows missing {missing}"
