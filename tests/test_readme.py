"""The README quotes assets/ and exported_models/: its numbers and verdicts must be the ones written there."""

from __future__ import annotations

import json
from pathlib import Path

from training.report import verdict_rows
from training.reproduce import load_results

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_verdict_table_matches_the_results() -> None:
    results = {"paper": load_results(REPO / "assets/results/paper"), "quick": load_results(REPO / "assets/results")}
    assert results["paper"] and results["quick"]
    for row in verdict_rows(results):
        assert row in README, f"README's verdict table lacks (or differs from) {row}"


def test_shipped_models_table_matches_the_manifest() -> None:
    manifest = json.loads((REPO / "exported_models/manifest.json").read_text())
    lines = {line.split("|")[1].strip(): line for line in README.splitlines() if line.startswith("| `")}
    for entry in manifest["models"]:
        line = lines.get(f"`{entry['name']}`")
        assert line, f"README's shipped-models table has no row for {entry['name']}"
        metrics = entry["metrics"]
        for figure in (f"{100 * metrics['runtime_test_accuracy']:.2f}%", f"{100 * metrics['test_accuracy']:.2f}%",
                       f"{metrics['weighted_f1']:.4f}", f"{metrics['n_test']:,}", entry["training"]["profile"]):
            assert figure in line, f"{entry['name']}: README row lacks {figure}: {line}"
