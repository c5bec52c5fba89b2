"""The benchmarks' figures as they are claimed: every benchmark writes a record (figures, machine, commit, date) under
assets/benchmarks/, the page there is generated from the records, the browser benchmark times the first moment a
person sees each answer, and the app benchmark times what the app does with the canvas's PNG."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import records  # noqa: E402

COMMITTED = records.PAGE.parent  # assets/benchmarks/


def test_every_benchmark_writes_a_record() -> None:
    for script in sorted(BENCHMARKS.glob("*.py")):
        if script.name == "records.py":
            continue
        calls = {node.func.id for node in ast.walk(ast.parse(script.read_text()))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
        assert "write_record" in calls, f"{script.name} writes no record (benchmarks/records.py)"


def test_every_record_says_what_where_when() -> None:
    found = records.read_records(COMMITTED)
    assert {r["benchmark"] for r in found} >= {"browser_latency", "app_latency"}
    for r in found:
        missing = [f for f in records.FIELDS if f not in r or r[f] in ("", None)]
        assert not missing, f"{r['file']} lacks {missing}"
        assert r["machine"]["cpus"] and r["date"].endswith("Z") and len(r["commit"]) >= 7, r["file"]
        columns = r["figures"]["columns"]
        assert r["figures"]["rows"] and all(len(row) == len(columns) for row in r["figures"]["rows"]), r["file"]
    assert not [p.name for p in COMMITTED.iterdir() if p.suffix not in (".json", ".md")]  # no loose logs


def test_the_page_is_generated_from_the_records() -> None:
    assert records.PAGE.read_text() == records.render(records.read_records(COMMITTED)), (
        "assets/benchmarks/README.md differs from the records: python benchmarks/records.py")


def _synthetic_character() -> tuple[dict, list, float, float]:
    """One character whose drawing event was sent twice (as the Sketchpad did): the answers and maps first show at
    150-270 ms, then the repeat's round trip redraws the same answers (new latency figures) at 1.0 s."""
    drawing = '{"data":["data:image/png;base64,iVBOR'
    t = 1000.0
    requests = [[t + 20, "/queue/join?", drawing], [t + 900, "/queue/join?", drawing]]
    calls = [("on_drawing", t + 50, t + 80), ("on_saliency", t + 160, t + 240), ("on_drawing", t + 920, t + 950)]
    changes = [[t + 10, "info-0", "processing | 0.1s"]]
    for i, answer in enumerate(["✓ T 99.8%", "✓ T 99.7%", "✓ T 99.6%"]):
        changes += [[t + 150 + 10 * i, f"info-{i}", f"{answer} · 1.46 ms"], [t + 250 + 10 * i, f"map-{i}", f"m{i}"],
                    [t + 960, f"info-{i}", "processing | 0.0s"], [t + 1000 + 10 * i, f"info-{i}", f"{answer} · 2.1 ms"]]
    return {"requests": requests, "changes": sorted(changes), "ups": [t]}, calls, t, t + 3000


def test_browser_latency_times_the_first_moment_each_answer_shows_and_counts_repeats() -> None:
    import browser_latency

    log, calls, t_up, t_next = _synthetic_character()
    stages = browser_latency.character_stages(log, calls, t_up, t_next)
    assert stages == {"join": 20, "handler start": 50, "handler end": 80, "slot 1": 150, "all 3": 170,
                      "saliency": 270, "handler calls": 2, "queue events": 2}


def test_the_sketchpad_figures_are_recomputed_from_its_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Sketchpad's record kept no events: its 'all 3' is bounded by its heat maps, which follow the answers."""
    import browser_latency

    committed = COMMITTED / "browser_latency-sketchpad.json"
    monkeypatch.setattr(records, "RECORDS", tmp_path)
    again = json.loads(browser_latency.from_record(committed, "sketchpad").read_text())
    source = again["data"]["source_record"]["characters"]
    repeated = [c for c in source if c["saliency"] < c["all 3"]]
    assert again["data"]["repeated"] == len(repeated) > 0
    bound = {row[0]: row for row in again["figures"]["rows"]}[
        "all 3, first moment: upper bound (min of the last answer and the last heat map)"]
    assert bound[3] == browser_latency.percentile([min(c["all 3"], c["saliency"]) for c in source], 0.95)
    assert again["figures"] == json.loads(committed.read_text())["figures"]  # the committed figures are these


@pytest.mark.skipif(not (REPO / "exported_models" / "manifest.json").exists(), reason="needs the shipped models")
def test_app_latency_times_the_canvas_png_path_and_records_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import app_latency

    from webapp import canvas

    decoded: list[str] = []
    real = canvas.canvas_value
    monkeypatch.setattr(app_latency, "canvas_value", lambda value: (decoded.append(value), real(value))[1])
    monkeypatch.setattr(records, "RECORDS", tmp_path)
    assert app_latency.main(["--images", "4", "--record", "latency"]) == 0
    record = json.loads((tmp_path / "latency.json").read_text())
    stages = [row[0] for row in record["figures"]["rows"]]
    assert stages[:2] == ["decode the canvas PNG", "preprocess"] and "whole drawing" in stages
    assert len(decoded) >= 4 and all(v.startswith(canvas.PREFIX) for v in decoded)  # the canvas's PNG data URLs
    assert record["config"]["images"] == 4 and len(record["data"]["stages"]["preprocess"]) == 4


@pytest.mark.slow
@pytest.mark.skipif(not (REPO / "exported_models" / "manifest.json").exists(), reason="needs the shipped models")
@pytest.mark.parametrize("answerer", ["server", "page"])
def test_page_load_draws_through_the_queue_and_the_answerer_is_who_it_says(
        answerer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two pages, one character each, against app.py, through Gradio's queue: the server's two steps carrying the
    answers (page_load.answers_problem checks every reply), or the page's one step, which has no answer among its
    outputs (page_load.read_events refuses one that has)."""
    import page_load

    from webapp import page_files

    if answerer == "page" and not page_files.RUNTIME_DIR.is_dir():
        pytest.skip("onnxruntime-web is not installed (node_modules): the page cannot answer")
    monkeypatch.setattr(records, "RECORDS", tmp_path)
    argv = ["--answerer", answerer, "--pages", "2", "--characters", "1", "--think", "0.2", "--warmup", "1",
            "--idle", "0", "--drawings", "2", "--seconds", "30", "--record", "load"]
    assert page_load.main(argv) == 0
    record = json.loads((tmp_path / "load.json").read_text())
    rows = {row[0]: row for row in record["figures"]["rows"]}
    assert rows["characters answered"][1] == 2 and rows["errors"][1] == 0
    steps = {name: len(ms) for name, ms in record["data"]["ms"].items() if ms}
    # the server answers in two steps (answers, then heat maps); the page's drawing is one step (maps included)
    assert steps == ({"drawing": 2, "saliency": 2} if answerer == "server" else {"drawing": 2}), steps
    assert record["data"]["server_cpu_s"] > 0 and record["config"]["answerer"] == answerer


@pytest.mark.slow
@pytest.mark.skipif(not (REPO / "exported_models" / "page" / "manifest.json").exists(),
                    reason="needs the shipped models and their page copies")
def test_page_saliency_times_both_sides_on_the_same_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three drawings' occlusion batches through the server's float32 models and the page's int8 ones in Chromium:
    every drawing timed on both sides, and the page's maps blame the segments the server's do."""
    from browser_support import need_browser

    from webapp import page_files

    need_browser()
    if not page_files.RUNTIME_DIR.is_dir():
        pytest.skip("onnxruntime-web is not installed (node_modules): the page cannot run the models")
    import page_saliency

    monkeypatch.setattr(records, "RECORDS", tmp_path)
    assert page_saliency.main(["--drawings", "3", "--record", "saliency"]) == 0
    record = json.loads((tmp_path / "saliency.json").read_text())
    drawn = record["config"]["drawings"]
    assert drawn + record["config"]["refused"] == 3 and drawn >= 2
    server, page, agree = record["data"]["server_ms"], record["data"]["page_ms"], record["data"]["agreement"]
    assert all(len(v) == drawn and min(v) > 0 for v in [*server.values(), *page.values()])
    assert agree["maps"] == 3 * drawn and agree["same_target"] == 1.0
    assert min(agree["correlations"]) > 0.9 and agree["page_top_within_5pct_of_server_top"] == 1.0
