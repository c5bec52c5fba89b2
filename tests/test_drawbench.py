"""The drawing benchmark: test-part sources only, seeded renderings in the app's input forms, every shipped model
scored through the app's runtime, and committed figures that match the shipped models and the results summary page."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recognizer.labels import LETTER_SPLITS
from training import drawbench, reproduce
from training.__main__ import main
from training.data import load_pool
from training.experiments import load_spec

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "assets" / "drawbench"


def test_renderings_are_strokes_on_a_canvas_and_photos(emnist_env: Path) -> None:
    pool = load_pool(emnist_env)
    source = int(drawbench.pick_sources(pool, 1, seed=3)[0])
    config = drawbench.BenchConfig()
    params, renderings = drawbench.render(pool.images[source], config, np.random.default_rng([3, source]))
    canvas = renderings["canvas"]["composite"]
    assert canvas.shape == (400, 400, 4) and canvas.dtype == np.uint8 and (canvas[..., 3] == 255).all()
    grey = canvas[..., 0]
    assert np.median(grey) == 255 and grey.min() == 0  # white paper, black ink
    ink = (grey < 128).mean()
    assert 0.005 < ink < 0.4
    for variant in ("paper", "photo"):
        photo = Image.open(io.BytesIO(renderings[variant]))
        assert photo.format == "JPEG" and photo.size == (400, 400)
        assert 120 < np.median(np.asarray(photo.convert("L"))) < 230  # grey paper, not white
    again = drawbench.render(pool.images[source], config, np.random.default_rng([3, source]))
    assert again[0] == params and (again[1]["canvas"]["composite"] == canvas).all()
    assert again[1]["photo"] == renderings["photo"]


def test_drawbench_command_on_the_fixture(emnist_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "bench"
    assert main(["drawbench", "--per-class", "1", "--out", str(out), "--quiet"]) == 0
    result = json.loads((out / "results.json").read_text())
    pool = load_pool(emnist_env)
    sources = np.array(result["sources"])
    assert (pool.part[sources] == drawbench.TEST_PART).all(), "a source image is not in the test part"
    assert len(sources) == result["n_sources"] >= 40
    manifest = json.loads((REPO / "exported_models" / "manifest.json").read_text())
    assert [m["name"] for m in result["models"]] == [e["name"] for e in manifest["models"]
                                                      if e["split"] in LETTER_SPLITS]
    assert len(result["models"]) >= 5
    for model in result["models"]:
        assert 0 <= model["drawn"]["top1"] <= model["drawn"]["top3"] <= 1
        assert set(model["variants"]) == set(drawbench.VARIANTS)
        assert model["plain"]["top1"] > 0.5, "a shipped model fails on plain test images: the scoring is wrong"
    for name in ("README.md", "config.json", "log.txt", "examples.png", "per_class.png"):
        assert (out / name).is_file(), name
    # The set is cached by config and data; built again from nothing (a fresh cache) it is the same set.
    cached = drawbench.build_set(drawbench.BenchConfig(per_class=1), progress=False)
    monkeypatch.setenv("EMNIST_CACHE", str(tmp_path / "fresh"))
    rebuilt = drawbench.build_set(drawbench.BenchConfig(per_class=1), progress=False)
    assert (rebuilt.sources == cached.sources).all() and np.array_equal(rebuilt.inputs, cached.inputs)


def test_folded_scoring() -> None:
    labels = list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    truth = np.array([drawbench.MERGED_CHARS.index(c) for c in ("C", "a", "A")])
    probs = np.zeros((3, 62))
    probs[0, labels.index("c")] = 1  # lower-case c for a C: the same merged class
    probs[1, labels.index("A")] = 0.6  # A for a: wrong at top-1, right at top-3
    probs[1, labels.index("a")] = 0.3
    probs[2, labels.index("a")] = 1  # a for an A: wrong (A/a are not merged)
    top1, top3 = drawbench.folded_hits(probs, labels, truth)
    assert top1.tolist() == [True, False, False] and top3.tolist() == [True, True, False]


def test_committed_figures_compare_every_shipped_model() -> None:
    result = json.loads((COMMITTED / "results.json").read_text())
    manifest = json.loads((REPO / "exported_models" / "manifest.json").read_text())
    scored = {m["name"]: m["sha256"] for m in result["models"]}
    for entry in manifest["models"]:
        if entry["split"] in LETTER_SPLITS:
            assert scored.get(entry["name"]) == entry["sha256"], f"{entry['name']}: no drawbench figure for this file"
        else:  # Study B's digit model reads no letters
            assert entry["split"] == "mnist50" and entry["name"] not in scored
    page = (COMMITTED / "README.md").read_text()
    summary = (REPO / "assets" / "results" / "summary.md").read_text()
    rows = drawbench.summary_rows(result["models"], tuple(result["config"]["variants"]))
    for row in rows[2:]:
        assert row in page, f"assets/drawbench/README.md lacks {row}"
        assert row in summary, f"assets/results/summary.md's drawing-benchmark table lacks (or differs from) {row}"
    for name in ("config.json", "log.txt", "examples.png", "per_class.png"):
        assert (COMMITTED / name).is_file(), name


def test_the_lab_table_on_validation_test_and_drawings(emnist_env: Path, tmp_path: Path) -> None:
    """The lab ablation end to end at the smoke budget, then its rows' runs scored on the drawings."""
    out = tmp_path / "lab"
    assert reproduce.main(["lab", "--profile", "smoke", "--out", str(out), "--threads", "1", "--no-plots"]) == 0
    assert main(["drawbench", "--per-class", "1", "--table", str(out / "lab.json"), "--quiet"]) == 0
    result = json.loads((out / "lab-drawbench.json").read_text())
    assert [r["key"] for r in result["rows"]] == [r.key for r in load_spec("lab").rows]
    for row in result["rows"]:
        assert row["n_train"] > 0 and 0 <= row["drawn"]["top1"] <= row["drawn"]["top3"] <= 1
        assert row["val_accuracy"] is not None
    page = (out / "lab-drawbench.md").read_text()
    assert all(f"{r['key']}: {r['label']}" in page for r in result["rows"])


def test_committed_lab_ablation_matches_its_page_and_the_summary() -> None:
    folder = REPO / "assets" / "results" / "lab"
    result = json.loads((folder / "lab-drawbench.json").read_text())
    table = json.loads((folder / "lab.json").read_text())
    assert {r["key"] for r in result["rows"]} == {r["key"] for r in table["rows"] if r.get("run_id")}
    page, summary = (folder / "lab-drawbench.md").read_text(), (folder.parent / "summary.md").read_text()
    for row in drawbench.table_rows(result["rows"], tuple(result["config"]["variants"]))[2:]:
        assert row in page and row in summary, f"lab-drawbench.md or summary.md lacks (or differs from) {row}"
    for run in table["rows"]:
        assert (folder / "runs" / run["run_id"] / "metrics.json").is_file(), run["run_id"]
