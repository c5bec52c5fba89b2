"""The time a person waits: from the last mouse-up of a character to its answers on the page, in real Chromium.

    python benchmarks/browser_latency.py [--rounds 2] [--busy] [--answerer page|server] [--models exported_models]
                                         [--record NAME]
    python benchmarks/browser_latency.py --from-record assets/benchmarks/browser_latency-sketchpad.json --record NAME

Serves the app in this process, opens it in headless Chromium (tests/browser_support.py) and draws
``--rounds`` x 10 characters with the mouse, Clear between them, as a person does. The page records, on its
own clock (epoch milliseconds, the same clock as the server's), each mouse-up (pointerup), each request the
page sends, and every change of each slot's answer and each saliency map; the server records when its
handlers ran. Per character, from the last mouse-up, the FIRST moment of each stage (a duplicate event, which
the earlier Sketchpad fired, repeats a round trip after the person already saw the answer):

    upload   the first upload of the drawing's files starts (gr.Sketchpad only: its layers as PNG files)
    join     the first event sent to Gradio's queue with the drawing (or after its files were uploaded)
    handler  the server's first handler run for the drawing starts and ends
    slot 1   slot 1 first shows the answer it ends with (its latency figure set aside: a repeat changes only that;
             0 where it showed it already at the mouse-up: the page answers while a stroke is drawn)
    all 3    every slot shows its final answer; saliency: every heat map has appeared
    page's reading done   the page's reading of the finished drawing has been handed to the page (where it answers)
    handler calls, queue events: how many the character caused (1 each when nothing is repeated)

``--answerer page`` (the app's default) lets the page answer with its own models (webapp/static/page.js);
``server`` starts the app with ``--no-browser-inference``. Also measured: the server's CPU per character in the draw
tab's handlers (the thread time of each handler run: the answers and the heat maps), and, after the characters,
the answers a page shows while one long stroke is drawn (readings per second of the stroke).
``--busy`` runs two CPU-bound processes beside it (a training run's load on a 2-core machine). Writes the
record assets/benchmarks/browser_latency-<answerer>-idle.json (or -busy; ``--record`` names another) with every
event, so the stages can be recomputed from it (``--from-record``); ``benchmarks/records.py`` makes the page.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]

from app_support import REAL_ASSETS, REAL_MODELS, serve  # noqa: E402
from browser_support import (  # noqa: E402
    CHARACTERS,
    EVENTS,
    draw,
    launch,
    settled,
    slot_answers,
    surface,
    wait_until,
)
from records import write_record  # noqa: E402

# Runs in the page before Gradio's code: mouse-ups, requests and every change of an answer or a map.
RECORDER = """
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const log = window.__latency = {ups: [], requests: [], changes: []};
  document.addEventListener('pointerup', () => log.ups.push(now()), true);
  const fetch0 = window.fetch;
  window.fetch = function (input, init) {
    const url = String(input && input.url || input);
    const sent = init && typeof init.body === 'string' ? init.body : '';
    const body = sent.includes('data:image') ? 'data:image' : sent.slice(0, 40);  // a drawing, or the start
    log.requests.push([now(), url.split('gradio_api')[1] || url, body]);
    return fetch0.apply(this, arguments);
  };
  const seen = new Map();
  const watch = () => {
    const text = i => document.querySelector(`#info-${i} [data-testid="markdown"]`)?.innerText || '';  // not the
    const parts = [0, 1, 2].map(i => ['info-' + i, text(i)]);  // hidden status tracker's timer beside it
    document.querySelectorAll('.saliency img').forEach((img, i) => parts.push(['map-' + i, img.src.slice(-40)]));
    for (const [key, value] of parts) {
      if (seen.get(key) !== value) { seen.set(key, value); log.changes.push([now(), key, value]); }
    }
  };
  new MutationObserver(watch).observe(document, {subtree: true, childList: true, characterData: true,
                                                 attributes: true, attributeFilter: ['src']});
})();
"""


def spin() -> None:
    while True:
        pass


def record_handlers() -> list[tuple[str, float, float]]:
    """Wrap the draw tab's handlers (before the page is built) to note when each ran (epoch ms)."""
    from webapp.draw import DrawTab

    calls: list[tuple[str, float, float, float]] = []  # (handler, start, end: epoch ms, its thread's CPU ms)
    for name in ("on_drawing", "on_page_stroke", "on_saliency", "on_clear"):
        original = getattr(DrawTab, name)

        @functools.wraps(original)  # Gradio reads the signature (on_page_stroke's gr.EventData) through it
        def timed(*args, _original=original, _name=name):
            started, cpu = time.time() * 1000, time.thread_time()
            try:
                return _original(*args)
            finally:
                calls.append((_name, started, time.time() * 1000, (time.thread_time() - cpu) * 1000))
        setattr(DrawTab, name, timed)
    return calls


def after(events, t0: float, t1: float, pick=lambda e: True) -> list:
    return [e for e in events if t0 <= e[0] < t1 and pick(e)]


LATENCY = re.compile(r"\s*·\s*[\d.]+\s*ms\s*$")  # '✓ T 99.8% · 1.46 ms': a repeated round trip changes only this


def answer(text: str) -> str:
    """A slot's answer as a person reads it: its text without the handler's latency figure."""
    return LATENCY.sub("", text).strip()


def first_final(changes: list, key: str, t_up: float) -> float | None:
    """The first moment at or after ``t_up`` the element showed the answer it ends with: the start of the last run of
    that answer, or ``t_up`` where it already showed it then (the page answers while a stroke is drawn). None when it
    ends empty. ``changes``: every change before the next Clear."""
    seen = [(t, answer(value)) for t, k, value in changes if k == key and "processing" not in value]  # not the
    if not seen or not seen[-1][1]:  # status tracker's timer, which older records kept in the text
        return None
    start = seen[-1][0]
    for t, value in reversed(seen):
        if value != seen[-1][1]:
            break
        start = t
    return max(start, t_up)


def character_stages(log: dict, calls: list, t_up: float, t_next: float,
                     readings: list | None = None) -> dict[str, float]:
    """The stages of one character: ms after its last mouse-up (t_next: the next Clear), each the FIRST moment;
    and the handler calls and queue events it caused."""
    requests, changes = log["requests"], after(log["changes"], t_up, t_next)
    before_next = [c for c in log["changes"] if c[0] < t_next]
    uploads = after(requests, t_up, t_next, lambda r: "upload" in r[1] or "component_server" in r[1])
    joins = after(requests, t_up, t_next,
                  lambda r: "queue/join" in r[1] and ("background" in r[2] or "data:image" in r[2]))
    handlers = [c for c in calls if c[0] in ("on_drawing", "on_page_stroke") and t_up <= c[1] < t_next]
    cpu = sum(c[3] for c in calls if len(c) > 3 and c[0] != "on_clear" and t_up <= c[1] < t_next)
    slots = [first_final(before_next, f"info-{i}", t_up) for i in range(3)]
    maps = [next((t for t, k, value in changes if k == f"map-{i}" and value), None) for i in range(3)]
    stage = {"upload": uploads[0][0] if uploads else None, "join": joins[0][0] if joins else None,
             "handler start": handlers[0][1] if handlers else None,
             "handler end": handlers[0][2] if handlers else None,
             "slot 1": slots[0], "all 3": max(slots) if all(slots) else None,
             "saliency": max(maps) if all(maps) else None,
             # the page's reading of the finished drawing (its last before Clear), when the page answers
             "page's reading done": max((r["shown"] for r in readings or [] if t_up <= r.get("shown", 0) < t_next),
                                        default=None)}
    out = {k: v - t_up for k, v in stage.items() if v is not None}
    timed = any(len(c) > 3 for c in calls)  # older records kept no CPU time
    return out | {"handler calls": len(handlers), "queue events": len(joins)} | ({"server CPU": cpu} if timed else {})


# One long stroke, a spiral drawn over about two seconds: how often the page's answers change while it is drawn.
SPIRAL = [[(0.5 + 0.45 * (k / 120) * math.cos(k / 6), 0.5 + 0.45 * (k / 120) * math.sin(k / 6)) for k in range(121)]]


def during_stroke(page) -> dict[str, float]:
    """Draw ``SPIRAL`` slowly (the mouse moved every ~16 ms) and count the page's readings while the button is
    down: readings per second of the stroke (0 where the server answers: it reads a drawing only at its end)."""
    page.locator("#clear").click()
    settled(page, 60)
    before = page.evaluate("(window.emnistCanvas?.timings || []).length")
    left, top, side = surface(page)
    points = [(left + x * side, top + y * side) for x, y in SPIRAL[0]]
    page.mouse.move(*points[0])
    page.mouse.down()
    started = time.perf_counter()
    for x, y in points[1:]:
        page.mouse.move(x, y)
        page.wait_for_timeout(16)
    seconds = time.perf_counter() - started
    during = page.evaluate("(window.emnistCanvas?.timings || []).length") - before
    page.mouse.up()
    settled(page, 60)
    return {"stroke seconds": seconds, "readings": during, "readings per second": during / seconds,
            "moves": len(points) - 1}


def run(rounds: int, models: Path, assets: Path, answerer: str = "page") -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    import app

    calls = record_handlers()
    demo = app.build_demo(models, assets, page_inference=answerer == "page")
    url = serve(demo)
    marks = []  # (last mouse-up, next clear) per character, epoch ms
    try:
        with sync_playwright() as p:
            browser = launch(p)
            context = browser.new_context(viewport={"width": 1400, "height": 1100})
            context.add_init_script(RECORDER)
            context.add_init_script(EVENTS)  # the page's count of events sent and answered: Clear once all are
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector("#sketch canvas[data-ready]", timeout=60_000)
            page.wait_for_selector("#sketch canvas[data-engine]", state="attached", timeout=60_000)
            shown = page.locator("#sketch canvas").get_attribute("data-answerer")
            if shown != answerer:
                raise SystemExit(f"the page says {page.locator('#sketch .answerer').inner_text()!r}, not {answerer}")
            clock = "performance.timeOrigin + performance.now()"
            chars = list(CHARACTERS) * rounds
            for n, char in enumerate(chars, 1):
                draw(page, CHARACTERS[char])
                t_up = page.evaluate("window.__latency.ups.at(-1)")
                wait_until(lambda: all(slot_answers(page)), f"answers to {char!r}", 60)
                wait_until(lambda: page.locator(".saliency img").count() == 3, f"maps of {char!r}", 60)
                settled(page, 60)  # every event this character raised answered, before Clear
                marks.append((t_up, page.evaluate(clock)))
                page.locator("#clear").click()
                wait_until(lambda: not any(slot_answers(page)), "the ready state", 30)
                print(f"\r{n}/{len(chars)} characters drawn", end="", flush=True)
            print()
            log = page.evaluate("window.__latency")
            readings = page.evaluate("window.emnistCanvas?.timings || []")  # the page's own, per reading
            stroke = during_stroke(page)
            browser.close()
    finally:
        demo.close()
    return {"log": log, "calls": calls, "marks": marks, "readings": readings, "stroke": stroke}


def stages_of(events: dict[str, Any]) -> list[dict[str, float]]:
    return [character_stages(events["log"], events["calls"], t_up, t_next, events.get("readings"))
            for t_up, t_next in events["marks"]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


KEYS = ["upload", "join", "handler start", "handler end", "slot 1", "all 3", "page's reading done", "saliency",
        "handler calls", "queue events", "server CPU"]


def summary(stages: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for key in KEYS:
        values = [s[key] for s in stages if key in s]
        if values:
            out[key] = {"n": len(values), "p50": statistics.median(values), "p95": percentile(values, 0.95),
                        "max": max(values)}
    return out


def figures_of(events: dict[str, Any], stages: list[dict[str, float]]) -> dict[str, list]:
    """The record's table: the stages, then the answers a second during one stroke and the page's own readings."""
    figures = table(summary(stages))
    stroke, readings = events.get("stroke"), events.get("readings")
    if stroke:
        rate = stroke["readings per second"]
        figures["rows"].append(["answers shown a second while one stroke is drawn", 1, rate, rate, rate])
        moves = (stroke.get("moves") or len(SPIRAL[0]) - 1) / stroke["stroke seconds"]
        figures["rows"].append(["the mouse's moves a second during that stroke", 1, moves, moves, moves])
    if readings:
        own = [r["total"] for r in readings]
        figures["rows"].append(["the page's own reading (preprocessing, 3 models, sets, words)", len(own),
                                statistics.median(own), percentile(own, 0.95), max(own)])
    return figures


def table(summary_: dict[str, dict[str, float]]) -> dict[str, list]:
    return {"columns": ["stage (ms after the last mouse-up; counts per character)", "characters", "p50", "p95",
                        "max"],
            "rows": [[key, row["n"], row["p50"], row["p95"], row["max"]] for key, row in summary_.items()]}


def sketchpad_bound(source: dict[str, Any]) -> tuple[dict[str, list], list[str], dict[str, Any]]:
    """From a record of per-character stages without the events (the Sketchpad's, written before this script kept
    them), what can be said: the stages as recorded (each the LAST moment), and for "all 3" an upper bound on the
    first moment: the heat maps come after the answers (a .then step), so a character whose last heat map came
    before its last answer had its answers showing by then; the earlier of the two bounds the first moment."""
    characters = source["characters"]
    repeated = [c for c in characters if "saliency" in c and "all 3" in c and c["saliency"] < c["all 3"]]
    bound = [min(c["all 3"], c.get("saliency", c["all 3"])) for c in characters if "all 3" in c]
    recorded = summary(characters)
    rows = [[f"{key} (as recorded: the last moment)", row["n"], row["p50"], row["p95"], row["max"]]
            for key, row in recorded.items()]
    rows.append(["all 3, first moment: upper bound (min of the last answer and the last heat map)", len(bound),
                 statistics.median(bound), percentile(bound, 0.95), max(bound)])
    notes = [f"{len(repeated)} of {len(characters)} characters show their last heat map before their last answer, "
             "which only a repeated round trip can do (the maps follow the answers): the recorded 'all 3' of those "
             "is a duplicate event's, not the first moment a person saw the answers.",
             "This record kept only each stage's last moment per character, not the page's events, so the first "
             "moments cannot be recomputed; the bound row is what the record allows. The Sketchpad is no longer in "
             "the app, so it cannot be measured again with the corrected script."]
    return {"columns": table({})["columns"], "rows": rows}, notes, {"repeated": len(repeated), "bound": bound}


def from_record(path: Path, name: str) -> Path:
    """Recompute a record's figures: from its events when it kept them, else the Sketchpad's bound."""
    source = json.loads(path.read_text())
    source = source.get("data", {}).get("source_record", source) if "benchmark" in source else source
    events = source.get("data", {}).get("events") if "benchmark" in source else None
    if events:
        stages = stages_of(events)
        return write_record("browser_latency", source["title"], figures_of(events, stages), source["config"],
                            source["notes"], {"events": events, "characters": stages}, name=name)
    figures, notes, data = sketchpad_bound(source)
    notes = [SKETCHPAD_SOURCE.format(file=path.name)] + notes
    return write_record("browser_latency", "The time a person waits, in Chromium: gr.Sketchpad (before the canvas)",
                        figures, {"busy": source.get("busy"), "source": path.name}, notes,
                        {"source_record": source, **data}, name=name)


SKETCHPAD_SOURCE = ("Recomputed from {file}: gr.Sketchpad at commit b772bfd (with its Clear fixed), 20 characters, "
                    "no neighbour; measured with this script as it was at commit 47821a6, in a worktree of b772bfd, "
                    "1 Dec 2026 23:34 UTC, load average 1.7 before it started (as noted when it was measured).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="times through the 10 characters (default 2: 20)")
    parser.add_argument("--busy", action="store_true", help="two CPU-bound processes beside the app and browser")
    parser.add_argument("--answerer", choices=["page", "server"], default="page",
                        help="who answers: the page's own models (default) or the server (--no-browser-inference)")
    parser.add_argument("--models", type=Path, default=REAL_MODELS)
    parser.add_argument("--assets", type=Path, default=REAL_ASSETS)
    parser.add_argument("--record", help="the record's name under assets/benchmarks/ (default browser_latency-idle "
                                         "or -busy)")
    parser.add_argument("--from-record", type=Path, help="recompute the figures of this record instead of measuring")
    args = parser.parse_args(argv)
    name = args.record or f"browser_latency-{args.answerer}-{'busy' if args.busy else 'idle'}"
    if args.from_record:
        print(f"wrote {from_record(args.from_record, name)}")
        return 0
    load_before = [round(x, 2) for x in os.getloadavg()]
    neighbours = [multiprocessing.Process(target=spin, daemon=True) for _ in range(2 if args.busy else 0)]
    for process in neighbours:
        process.start()
    try:
        events = run(args.rounds, args.models, args.assets, args.answerer)
    finally:
        for process in neighbours:
            process.terminate()
    stages = stages_of(events)
    result = summary(stages)
    print(f"{'busy' if args.busy else 'idle'}: {len(stages)} characters; ms after the last mouse-up")
    print(f"{'stage':<14} {'n':>3} {'p50':>8} {'p95':>8} {'max':>8}")
    for key, row in result.items():
        print(f"{key:<14} {row['n']:>3} {row['p50']:>8.0f} {row['p95']:>8.0f} {row['max']:>8.0f}")
    neighbour = "two CPU-bound processes beside it" if args.busy else "no other work started by the benchmark"
    who = "answered in the page" if args.answerer == "page" else "answered by the server"
    title = f"The time a person waits, in Chromium: the canvas, {who}, {'busy' if args.busy else 'idle'}"
    stroke, readings = events["stroke"], events["readings"]
    if readings:
        own = [r["total"] for r in readings]
        print(f"the page's own readings: {len(own)}, p50 {statistics.median(own):.1f} ms, "
              f"p95 {percentile(own, 0.95):.1f} ms (preprocessing, three models, sets and words)")
    print(f"during one {stroke['stroke seconds']:.1f} s stroke: {stroke['readings']} readings, "
          f"{stroke['readings per second']:.1f} a second")
    notes = [f"{len(stages)} characters drawn with the mouse in headless Chromium, Clear between them; {neighbour}; "
             f"models {args.models.name}/; load average {load_before[0]} before it started (the machine is shared). "
             "Each time stage is its first moment after the last mouse-up."]
    figures = figures_of(events, stages)
    notes.append("server CPU: the draw tab's handlers' thread CPU time per character (the drawing's step and its "
                 "heat maps; Gradio's queue and HTTP work not counted), ms.")
    path = write_record("browser_latency", title, figures,
                        {"rounds": args.rounds, "busy": args.busy, "answerer": args.answerer,
                         "models": str(args.models), "load_before": load_before}, notes,
                        {"events": events, "characters": stages}, name=name)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
