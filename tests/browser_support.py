"""What the browser tests and benchmarks/browser_latency.py share: Chromium, characters drawn with the mouse.

Drives Debian's chromium (``apt-get install -y chromium``; scripts/ensure_chromium.sh) through Playwright,
headless; never ``playwright install``. Every character is a list of strokes in a unit square, drawn with
``page.mouse`` over the Sketchpad's drawing surface the way a person drags a mouse.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM = Path(os.environ.get("EMNIST_CHROMIUM", "/usr/bin/chromium"))  # the variable: to test a missing browser
REQUIRED = "EMNIST_REQUIRE_BROWSER"  # set (`make test`): a missing browser fails the browser tests, not skips them
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

Stroke = list[tuple[float, float]]
# Block capitals and digits the shipped models read with near certainty; (x, y) in a unit square, y down.
CHARACTERS: dict[str, list[Stroke]] = {
    "7": [[(0.15, 0.05), (0.85, 0.05), (0.4, 1.0)]],
    "L": [[(0.25, 0.0), (0.25, 1.0), (0.8, 1.0)]],
    "T": [[(0.1, 0.05), (0.9, 0.05)], [(0.5, 0.05), (0.5, 1.0)]],
    "X": [[(0.15, 0.0), (0.85, 1.0)], [(0.85, 0.0), (0.15, 1.0)]],
    "Z": [[(0.15, 0.05), (0.85, 0.05), (0.15, 0.95), (0.85, 0.95)]],
    "H": [[(0.2, 0.0), (0.2, 1.0)], [(0.8, 0.0), (0.8, 1.0)], [(0.2, 0.5), (0.8, 0.5)]],
    "E": [[(0.75, 0.0), (0.25, 0.0), (0.25, 1.0), (0.75, 1.0)], [(0.25, 0.5), (0.65, 0.5)]],
    "A": [[(0.5, 0.0), (0.12, 1.0)], [(0.5, 0.0), (0.88, 1.0)], [(0.28, 0.62), (0.72, 0.62)]],
    "V": [[(0.1, 0.0), (0.5, 1.0), (0.9, 0.0)]],
    "4": [[(0.65, 1.0), (0.65, 0.0), (0.1, 0.65), (0.9, 0.65)]],
}
DARK = 80  # a screenshot pixel darker than this is ink (the page's own greys are lighter)


# Runs in the page before Gradio's code: how many events the page has sent to Gradio's queue (queue/join) and how many
# of them Gradio has answered (a "process_completed" message on the page's event stream), so a test can wait until
# every event the page raised is answered instead of sleeping.
EVENTS = """
(() => {
  const count = window.__events = {sent: 0, done: 0};
  const fetch0 = window.fetch;
  window.fetch = function (input, init) {
    const url = String(input && input.url || input);
    if (url.includes('/queue/join')) count.sent += 1;
    const answer = fetch0.apply(this, arguments);
    if (!url.includes('/queue/data')) return answer;
    return answer.then(response => {
      const reader = response.clone().body.getReader(), text = new TextDecoder();
      const read = () => reader.read().then(({done, value}) => {
        if (done) return;
        count.done += (text.decode(value, {stream: true}).match(/"msg":\\s*"process_completed"/g) || []).length;
        read();
      }, () => {});  // the page closed its stream (aborted): nothing more to count
      read();
      return response;
    });
  };
})();
"""


def browser_problem() -> str | None:
    """Why the browser tests cannot run here (no Chromium, no Playwright), or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent: install Debian's chromium (bash scripts/ensure_chromium.sh, as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as err:
        return f"Playwright cannot be imported ({err}): pip install -r requirements.txt"
    return None


def need_browser() -> None:
    """Every browser test's first step: skip it where no browser can run, fail it with the reason under
    `make test` (``REQUIRED`` set), where the browser tests are part of the run."""
    import pytest

    if problem := browser_problem():
        if os.environ.get(REQUIRED):
            pytest.fail(f"the browser tests cannot run ({REQUIRED} is set): {problem}", pytrace=False)
        pytest.skip(problem)


def launch(playwright, **kwargs):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS, **kwargs)


def open_app(browser, url: str, **context):
    """A fresh page on the app, once its canvas is there (a Gradio page never reaches 'networkidle')."""
    context = browser.new_context(**{"viewport": {"width": 1400, "height": 1100}, **context})
    context.add_init_script(EVENTS)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#sketch canvas[data-ready]", timeout=60_000)  # its script is listening
    return page


@contextlib.contextmanager
def app_page(url: str, **context) -> Iterator:
    """A fresh headless Chromium with the app open in one page (``open_app``); the browser closes on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield open_app(browser, url, **context)
        finally:
            browser.close()


def surface(page) -> tuple[float, float, float]:
    """(left, top, side) of a square in the middle of the canvas, where a character is drawn."""
    box = page.locator("#sketch canvas").first.bounding_box()
    side = 0.55 * min(box["width"], box["height"])
    return box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2, side


def draw(page, strokes: list[Stroke], steps: int = 3) -> None:
    """Drag the mouse along each stroke, button down from its first point to its last."""
    left, top, side = surface(page)
    for stroke in strokes:
        x0, y0 = stroke[0]
        page.mouse.move(left + x0 * side, top + y0 * side)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(left + x * side, top + y * side, steps=steps)
        page.mouse.up()


def answered_by(page, who: str, limit: float = 60.0) -> str:
    """Wait until the page knows whether it answers itself (its models loaded, or why not), then require ``who``
    ("page" or "server") to answer, as the line under the canvas's toolbar says; returns that line."""
    page.wait_for_selector("#sketch canvas[data-engine]", state="attached", timeout=limit * 1000)
    canvas = page.locator("#sketch canvas").first
    line = page.locator("#sketch .answerer").inner_text()
    assert canvas.get_attribute("data-answerer") == who, (who, line)
    assert ("in your browser" if who == "page" else "by the server") in line, line
    return line


def canvas_ink(page) -> int:
    """Dark pixels in a screenshot of the canvas: what a person sees on it (0-200 for an empty canvas's icons)."""
    grey = np.asarray(Image.open(io.BytesIO(page.locator("#sketch canvas").first.screenshot())).convert("L"))
    return int((grey < DARK).sum())


def wait_until(predicate, what: str, limit: float = 30.0, every: float = 0.1):
    """The predicate's first truthy value, polled; an AssertionError naming ``what`` after ``limit`` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {limit:.0f} s")


def events(page) -> dict[str, int]:
    """The events the page has sent to Gradio's queue and those answered (``EVENTS``)."""
    return page.evaluate("({...window.__events})")


def settled(page, limit: float = 30.0) -> dict[str, int]:
    """Wait until every event the page has sent is answered, and still so after the page has drawn two frames (an
    answer may raise the next step, e.g. the heat maps after the answers, or be drawn a frame later)."""
    def quiet() -> dict[str, int] | None:
        before = events(page)
        if before["sent"] != before["done"]:
            return None
        page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
        return before if events(page) == before else None

    return wait_until(quiet, "every event the page sent answered", limit)


def slot_answers(page) -> list[str]:
    """Each slot's answer line as the page shows it ('' when none): the Markdown's own text, without the (hidden)
    timer Gradio's status tracker keeps beside it while an event with it as an output runs."""
    return [page.locator(f'#info-{i} [data-testid="markdown"]').inner_text().strip() for i in range(3)]


def touch_draw(page, strokes: list[Stroke], steps: int = 6) -> None:
    """Draw with a finger: the touch events a touch screen sends (through the DevTools protocol), not the mouse."""
    left, top, side = surface(page)
    cdp = page.context.new_cdp_session(page)
    try:
        for stroke in strokes:
            points = [(left + x * side, top + y * side) for x, y in stroke]
            path = [points[0]] + [
                (x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps)
                for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False) for k in range(1, steps + 1)]
            for kind, (x, y) in [("touchStart", path[0]), *(("touchMove", p) for p in path[1:])]:
                cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
            cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    finally:
        cdp.detach()


def in_viewport(page, selector: str) -> bool:
    """Whether the element is wholly on the first screen, without scrolling."""
    box = page.locator(selector).first.bounding_box()
    size = page.viewport_size
    scrolled = page.evaluate("window.scrollY")
    return bool(box) and scrolled == 0 and box["y"] >= 0 and box["y"] + box["height"] <= size["height"] \
        and box["x"] >= 0 and box["x"] + box["width"] <= size["width"]


def touch_tap(page, selector: str) -> None:
    """A finger's tap on the element's centre (scrolled into view first, as a person would scroll to it)."""
    element = page.locator(selector).first
    element.scroll_into_view_if_needed()
    box = element.bounding_box()
    point = {"x": box["x"] + box["width"] / 2, "y": box["y"] + box["height"] / 2}
    cdp = page.context.new_cdp_session(page)
    try:
        touch = {**point, "id": 1, "radiusX": 8, "radiusY": 8, "force": 1}
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [touch]})
        time.sleep(0.1)  # a finger rests on the glass for a moment
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    finally:
        cdp.detach()
