"""Keeping in public: one client's flood meets the rate (429, Retry-After) and the store's limit (507), the page says
so in words, every route answers from the first request, and a mouse-drawn character's strokes reach the InkML
export. Loopback only; every flood is bounded and stops by itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from app_support import (
    free_port,
    letter_a,
    shipped_or_tiny_models,
    sketchpad_value,
)
from test_drawings_store import make

from recognizer.drawings import StoreLimits, open_store, write_dataset
from recognizer.drawings.inkml import read_inkml
from webapp.canvas import canvas_json
from webapp.draw import CanvasMemory
from webapp.limits import Limits

REPO = Path(__file__).resolve().parents[1]
OUTPUT = Path(__file__).parent / "output"
LIMIT = 25  # drawings the flooded store may hold
EARLIER = 5  # drawings in it before the flood
FLOOD = 200  # keeps one client sends, one after another
PREDICTS = 120  # POST /api/predict calls in the second flood

pytestmark = [pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return shipped_or_tiny_models(tmp_path_factory.mktemp("public-models"))


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    import base64
    import json as js

    url = js.loads(canvas_json(sketchpad_value(letter_a())["layers"][0], None))["png"]
    return base64.b64decode(url.split(",", 1)[1])


def test_one_client_flood_meets_the_rate_and_the_store_limit(models, png, tmp_path) -> None:
    import app

    path = tmp_path / "drawings.sqlite3"
    with open_store(path) as store:
        earlier = [store.keep(make("a", i)) for i in range(EARLIER)]
        before = {"drawings": store.count(), "bytes": store.bytes_used()}
    limits = Limits(StoreLimits(drawings=LIMIT, bytes=2_000_000), keeps_per_minute=30, predicts_per_minute=60)
    demo = app.build_demo(*models, drawings=path, limits=limits)
    _, url, _ = app.launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    lab = demo.emnist_lab
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    try:
        with httpx.Client(base_url=url, timeout=60, trust_env=False) as client:
            for i in range(FLOOD):
                response = client.post("api/keep", content=png, params={"char": "A"})
                statuses[response.status_code] += 1
                assert lab.store.count() <= LIMIT, i  # never past the limit, at any moment
                if response.status_code == 429:
                    assert int(response.headers["Retry-After"]) >= 1 and "Slow down" in response.json()["error"]
                elif response.status_code == 507:
                    assert "store of drawings is full" in response.json()["error"], response.text
                    assert "drawings you kept before are safe" in response.json()["error"]
            keeps_seconds = time.perf_counter() - started
            predicts: Counter[int] = Counter()
            for _ in range(PREDICTS):
                response = client.post("api/predict", content=png, params={"include_input": "false"})
                predicts[response.status_code] += 1
                if response.status_code == 429:
                    assert int(response.headers["Retry-After"]) >= 1 and "Slow down" in response.json()["error"]
        after = {"drawings": lab.store.count(), "bytes": lab.store.bytes_used()}
        assert statuses[200] == LIMIT - EARLIER and set(statuses) <= {200, 429, 507}
        assert statuses[429] >= FLOOD - 40 and statuses[507] >= 1  # the rate stops most; the store the rest
        assert after["drawings"] == LIMIT and all(lab.store.get(i) is not None for i in earlier)
        assert 60 <= predicts[200] <= 75 and predicts[429] == PREDICTS - predicts[200]
        sizes = [len(d.canvas_png) for d in lab.store.all()][EARLIER:]
        assert max(sizes) < 10_000  # normalised: grey, at most 400x400
    finally:
        demo.close()
    figures = {"keeps_sent": FLOOD, "keeps": dict(statuses), "keeps_seconds": round(keeps_seconds, 2),
               "predicts_sent": PREDICTS, "predicts": dict(predicts), "store_before": before, "store_after": after,
               "limits": {"drawings": LIMIT, "keeps_per_minute": 30, "predicts_per_minute": 60},
               "kept_png_bytes_max": max(sizes), "sent_png_bytes": len(png)}  # fmt: skip
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "keep-flood.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures))


def test_the_page_says_slow_down_in_words(models, png, tmp_path) -> None:
    import app

    demo = app.build_demo(*models, drawings=tmp_path / "drawings.sqlite3", limits=Limits(keeps_per_minute=3))
    tab = demo.emnist_draw
    visitor = SimpleNamespace(client=SimpleNamespace(host="203.0.113.7"), session_hash="a-session")
    other = SimpleNamespace(client=SimpleNamespace(host="203.0.113.8"), session_hash="b-session")
    url = json.loads(canvas_json(sketchpad_value(letter_a())["layers"][0], None))["png"]
    shown = []
    for request in (visitor,) * 4 + (other,):
        memory = CanvasMemory()
        tab.on_drawing(url, memory, *tab.lab.slot_defaults())
        shown.append(tab.keep.on_keep(True, "A", memory, request))
    statuses = [s[tab.keep.status] for s in shown]
    assert all(s.startswith("✓ Kept drawing") for s in statuses[:3]), statuses
    assert "Slow down: this app takes at most 3 keeps a minute from one visitor. Try again in" in statuses[3]
    assert shown[3][tab.keep.keep_on] is False and statuses[4].startswith("✓ Kept")  # another visitor keeps
    assert demo.emnist_lab.store.count() == 4


def test_every_route_answers_from_the_first_request(models, png, tmp_path) -> None:
    """The app as a process: the moment its page answers, POST /api/predict and /api/keep answer too (no 404)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "app.py", "--port", str(port), "--models", str(models[0]), "--assets", str(models[1]),
               "--drawings", str(tmp_path / "drawings.sqlite3")]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with httpx.Client(timeout=30, trust_env=False) as client:
            deadline = time.monotonic() + 90
            while True:
                assert process.poll() is None and time.monotonic() < deadline, "the app did not start"
                try:
                    if client.get(url).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.002)
            predict = client.post(f"{url}api/predict", content=png)
            keep = client.post(f"{url}api/keep", content=png, params={"char": "A"})
        assert (predict.status_code, keep.status_code) == (200, 200), (predict.text, keep.text)
        assert predict.json()["ok"] and keep.json()["ok"]
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_strokes_from_a_mouse_drawn_character_reach_the_inkml_export(models, tmp_path) -> None:
    from browser_support import CHARACTERS, app_page, draw, need_browser, surface, wait_until

    need_browser()
    import app

    demo = app.build_demo(*models, drawings=tmp_path / "drawings.sqlite3")
    _, url, _ = app.launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    lab = demo.emnist_lab
    try:
        with app_page(url) as page:
            left, top, side = surface(page)
            box = page.locator("#sketch canvas").first.bounding_box()
            draw(page, CHARACTERS["7"])
            wait_until(lambda: " ms" in page.locator("#info-0").inner_text(), "the first slot's answer", 60)
            page.locator("#meant input").click()
            page.get_by_role("option", name="7", exact=True).click()
            page.locator("#keep-on input").check()
            wait_until(lambda: "Kept drawing" in page.locator("#keep-status").inner_text(), "the keep", 60)
            drawing_id = page.locator("#keep-status").inner_text().split("Kept drawing")[1].split()[0]
    finally:
        demo.close()
    kept = lab.store.get(drawing_id)
    assert kept.character == "7" and kept.source == "canvas" and len(kept.strokes) == 1
    stroke = kept.strokes[0]
    assert stroke["pointer"] == "mouse" and stroke["mode"] == "brush" and len(stroke["points"]) >= 7
    times = [p[2] for p in stroke["points"]]
    assert times[0] == 0 and times == sorted(times) and all(p[3] == 0.5 for p in stroke["points"])  # mouse pressure

    def on_canvas(x: float, y: float) -> tuple[float, float]:  # a unit-square point as the canvas's pixels
        return ((left + x * side - box["x"]) * 400 / box["width"], (top + y * side - box["y"]) * 400 / box["height"])

    for point, (x, y) in ((stroke["points"][0], CHARACTERS["7"][0][0]), (stroke["points"][-1], CHARACTERS["7"][0][-1])):
        expected = on_canvas(x, y)
        assert abs(point[0] - expected[0]) < 2 and abs(point[1] - expected[1]) < 2, (point, expected)
    write_dataset(lab.store.all(), tmp_path / "set")
    ink = read_inkml((tmp_path / "set" / "inkml" / f"{drawing_id}.inkml").read_text())
    assert ink["truth"] == "7" and ink["strokes"] == [dict(s) for s in kept.strokes]
    record = {"id": kept.id, "character": kept.character, "source": kept.source, "suspect": kept.suspect,
              "created_utc": kept.created_utc, "png_bytes": len(kept.canvas_png),
              "answers": [{"model": a["model"], "top": a["top"][:2]} for a in kept.answers],
              "strokes": kept.strokes}  # fmt: skip
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "kept-record.json").write_text(json.dumps(record, indent=1))
    (OUTPUT / "kept-record.inkml").write_text((tmp_path / "set" / "inkml" / f"{drawing_id}.inkml").read_text())
