"""The README and the results summary quote assets/ and exported_models/: their numbers and verdicts must be the
ones written there, and the README stays short enough to read (results live on their own pages)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from recognizer.verdicts import verdict_cell
from training.collect import load_results
from training.records import TableResult

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
SUMMARY = (REPO / "assets" / "results" / "summary.md").read_text()
MAX_README_BYTES = 15_000


def verdict_rows(results_by_profile: dict[str, dict[str, TableResult]]) -> list[str]:
    """Markdown rows ``| table: conclusion | verdict: interval | ... |``, one column per profile's results
    (as ``collect.load_results`` reads them), as the results summary quotes them."""
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
        assert row in SUMMARY, f"summary.md's verdict table lacks (or differs from) {row}"


def test_shipped_models_table_matches_the_manifest() -> None:
    manifest = json.loads((REPO / "exported_models/manifest.json").read_text())
    lines = {line.split("|")[1].strip(): line for line in SUMMARY.splitlines() if line.startswith("| `")}
    for entry in manifest["models"]:
        line = lines.get(f"`{entry['name']}`")
        assert line, f"summary.md's shipped-models table has no row for {entry['name']}"
        metrics = entry["metrics"]
        for figure in (f"{100 * metrics['runtime_test_accuracy']:.2f}%", f"{100 * metrics['test_accuracy']:.2f}%",
                       f"{metrics['weighted_f1']:.4f}", f"{metrics['n_test']:,}", entry["training"]["profile"]):
            assert figure in line, f"{entry['name']}: summary.md row lacks {figure}: {line}"


def test_readme_is_short_and_its_headline_figures_are_the_manifests() -> None:
    """The README's 'In short' names each default slot's test accuracy as the manifest records it, and the
    drawing benchmark's range of the three slots' drawn top-1 as assets/drawbench/results.json records it, and
    Study B's best row (mean ± std over seeds on the full MNIST test set) as its table records it."""
    assert len(README.encode()) <= MAX_README_BYTES, f"README.md is {len(README.encode()):,} bytes"
    manifest = json.loads((REPO / "exported_models/manifest.json").read_text())
    slots = {entry["name"] for entry in manifest["models"] if entry.get("slot") in ("byclass", "bymerge", "balanced")}
    assert len(slots) == 3
    for entry in manifest["models"]:
        if entry["name"] in slots:
            figure = f"{100 * entry['metrics']['runtime_test_accuracy']:.2f}% ({entry['slot']})"
            assert figure in README, f"README's headline lacks {figure}"
    bench = json.loads((REPO / "assets/drawbench/results.json").read_text())
    drawn = sorted(100 * m["drawn"]["top1"] for m in bench["models"] if m["name"] in slots)
    assert f"{drawn[0]:.1f}-{drawn[-1]:.1f}% top-1 on the drawing benchmark" in README
    ssl = {row["key"]: row for row in json.loads((REPO / "assets/results/paper/studyB_ssl.json").read_text())["rows"]}
    best = ssl["finetune_cleanbn"]
    figure = f"{100 * best['mnist_test_accuracy_mean']:.2f} ± {100 * best['mnist_test_accuracy_std']:.2f}%"
    assert figure in README and figure in SUMMARY, f"README or summary.md lacks Study B's best row {figure}"


def test_every_relative_link_of_the_readme_and_its_pages_resolves() -> None:
    pages = [REPO / "README.md", REPO / "assets/results/summary.md", *sorted((REPO / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)|src=\"([^\"]+)\"", page.read_text()):
            path = next(t for t in target if t)
            if path.startswith("http"):
                continue
            assert (page.parent / path).exists(), f"{page.relative_to(REPO)} links to a missing {path}"


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


def test_the_readme_benchmark_table_is_the_records() -> None:
    """The README's table of who answers (the page or the server: the wait, answers while drawing, server CPU, a first
    visit's bytes) is what benchmarks/records.py makes of the committed records, figure for figure."""
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    from records import answers_table

    table = answers_table(REPO / "assets" / "benchmarks")
    assert table in README, f"README.md's benchmark table differs from the records':\n{table}"
