"""The README quotes assets/ and exported_models/: its numbers and verdicts must be the ones written there."""

from __future__ import annotations

import json
from pathlib import Path

from recognizer.verdicts import verdict_cell
from training.collect import load_results
from training.records import TableResult

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def verdict_rows(results_by_profile: dict[str, dict[str, TableResult]]) -> list[str]:
    """Markdown rows ``| table: conclusion | verdict: interval | ... |``, one column per profile's results
    (as ``collect.load_results`` reads them), as the project README quotes them."""
    claims: dict[tuple[str, str], dict[str, str]] = {}
    for profile, results in results_by_profile.items():
        for name, result in results.items():
            for claim in result.claims:
                claims.setdefault((name, claim.text), {})[profile] = verdict_cell(claim.to_dict())
    return [f"| {name}: {text} | " + " | ".join(by.get(p, "not run") for p in results_by_profile) + " |"
            for (name, text), by in claims.items()]


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


def test_every_committed_number_has_its_run_record() -> None:
    """Each finished row of the committed results, and each shipped model, has its config, log and metrics."""
    record = ("config.json", "log.txt", "metrics.json", "history.json")
    for folder in (REPO / "assets/results", REPO / "assets/results/paper"):
        for name, table in load_results(folder).items():
            for row in table.done:
                for run_id in row.run_ids:
                    missing = [f for f in record if not (folder / "runs" / run_id / f).is_file()]
                    assert not missing, f"{folder.name}/{name} row {row.key}: runs/{run_id} lacks {missing}"
    manifest = json.loads((REPO / "exported_models/manifest.json").read_text())
    for entry in manifest["models"]:
        folder = REPO / "exported_models" / entry["run_record"]
        assert all((folder / f).is_file() for f in record), f"{entry['name']}: no run record in {folder}"
