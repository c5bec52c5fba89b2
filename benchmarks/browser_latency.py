"""The time a person waits: from the last mouse-up of a character to its answers on the page, in real Chromium.

    python benchmarks/browser_latency.py [--rounds 2] [--busy] [--models exported_models] [--json out.json]

Serves the app in this process, opens it in headless Chromium (tests/browser_support.py) and draws
``--rounds`` x 10 characters with the mouse, Clear between them, as a person does. The page records, on its
own clock (epoch milliseconds, the same clock as the server's), each mouse-up (pointerup), each request the
page sends, and the moment each slot's answer and each saliency map last changed; the server records when its
handlers ran. Per character, from the last mouse-up:

    upload   the first upload of the drawing's files starts (gr.Sketchpad only: its layers as PNG files)
    join     the event is sent to Gradio's queue (with the drawing, or after its files were uploaded)
    handler  the server's handler for the drawing starts and ends
    slot 1   slot 1's answer is on the page; all 3: every slot's answer; saliency: the last heat map

``--busy`` runs two CPU-bound processes beside it (a training run's load on a 2-core machine).
Prints p50/p95 of each stage; figures go in the README's benchmarks section.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from app_support import REAL_ASSETS, REAL_MODELS, free_port  # noqa: E402
from browser_support import CHARACTERS, draw, launch, slot_answers, wait_until  # noqa: E402

# Runs in the page before Gradio's code: mouse-ups, requests and when each answer or map last changed.
RECORDER = """
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const log = window.__latency = {ups: [], requests: [], changes: []};
  document.addEventListener('pointerup', () => log.ups.push(now()), true);
  const fetch0 = window.fetch;
  window.fetch = function (input, init) {
    const url = String(input && input.url || input);
    const body = init && typeof init.body === 'string' ? init.body.slice(0, 40) : '';
    log.requests.push([now(), url.split('gradio_api')[1] || url, body]);
    return fetch0.apply(this, arguments);
  };
  const seen = new Map();
  const watch = () => {
    const parts = [0, 1, 2].map(i => ['info-' + i, document.querySelector('#info-' + i)?.innerText || '']);
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

    calls: list[tuple[str, float, float]] = []
    for name in ("on_drawing", "on_saliency"):
        original = getattr(DrawTab, name)

        def timed(*args, _original=original, _name=name):
            started = time.time() * 1000
            try:
                return _original(*args)
            finally:
                calls.append((_name, started, time.time() * 1000))
        setattr(DrawTab, name, timed)
    return calls


def after(events, t0: float, t1: float, pick=lambda e: True) -> list:
    return [e for e in events if t0 <= e[0] < t1 and pick(e)]


def character_stages(log: dict, calls: list, t_up: float, t_next: float) -> dict[str, float]:
    """The stages of one character, in ms after its last mouse-up (t_next: the next Clear)."""
    requests, changes = log["requests"], log["changes"]
    uploads = after(requests, t_up, t_next, lambda r: "upload" in r[1] or "component_server" in r[1])
    joins = after(requests, t_up, t_next,
                  lambda r: "queue/join" in r[1] and ("background" in r[2] or "data:image" in r[2]))
    handlers = [c for c in calls if c[0] == "on_drawing" and t_up <= c[1] < t_next]
    last_change = {key: max((c[0] for c in after(changes, t_up, t_next) if c[1] == key), default=None)
                   for key in ("info-0", "info-1", "info-2", "map-0", "map-1", "map-2")}
    stage = {"upload": uploads[0][0] if uploads else None, "join": joins[-1][0] if joins else None,
             "handler start": handlers[-1][1] if handlers else None,
             "handler end": handlers[-1][2] if handlers else None,
             "slot 1": last_change["info-0"],
             "all 3": max(last_change[f"info-{i}"] or 0 for i in range(3)) or None,
             "saliency": max(last_change[f"map-{i}"] or 0 for i in range(3)) or None}
    return {k: v - t_up for k, v in stage.items() if v is not None}


def run(rounds: int, models: Path, assets: Path) -> list[dict[str, float]]:
    from playwright.sync_api import sync_playwright

    import app

    calls = record_handlers()
    demo = app.build_demo(models, assets)
    _, url, _ = app.launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    marks = []  # (last mouse-up, next clear) per character, epoch ms
    try:
        with sync_playwright() as p:
            browser = launch(p)
            context = browser.new_context(viewport={"width": 1400, "height": 1100})
            context.add_init_script(RECORDER)
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector("#sketch canvas[data-ready]", timeout=60_000)
            clock = "performance.timeOrigin + performance.now()"
            chars = list(CHARACTERS) * rounds
            for n, char in enumerate(chars, 1):
                draw(page, CHARACTERS[char])
                t_up = page.evaluate("window.__latency.ups.at(-1)")
                wait_until(lambda: all(slot_answers(page)), f"answers to {char!r}", 60)
                time.sleep(1.5)  # let every answer and map settle before Clear
                marks.append((t_up, page.evaluate(clock)))
                page.locator("#clear").click()
                wait_until(lambda: not any(slot_answers(page)), "the ready state", 30)
                print(f"\r{n}/{len(chars)} characters drawn", end="", flush=True)
            print()
            log = page.evaluate("window.__latency")
            browser.close()
    finally:
        demo.close()
    return [character_stages(log, calls, t_up, t_next) for t_up, t_next in marks]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(stages: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    keys = ["upload", "join", "handler start", "handler end", "slot 1", "all 3", "saliency"]
    out = {}
    for key in keys:
        values = [s[key] for s in stages if key in s]
        if values:
            out[key] = {"n": len(values), "p50": statistics.median(values), "p95": percentile(values, 0.95)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="times through the 10 characters (default 2: 20)")
    parser.add_argument("--busy", action="store_true", help="two CPU-bound processes beside the app and browser")
    parser.add_argument("--models", type=Path, default=REAL_MODELS)
    parser.add_argument("--assets", type=Path, default=REAL_ASSETS)
    parser.add_argument("--json", type=Path, help="write every character's stages and the summary here")
    args = parser.parse_args(argv)
    neighbours = [multiprocessing.Process(target=spin, daemon=True) for _ in range(2 if args.busy else 0)]
    for process in neighbours:
        process.start()
    try:
        stages = run(args.rounds, args.models, args.assets)
    finally:
        for process in neighbours:
            process.terminate()
    table = summary(stages)
    print(f"{'busy' if args.busy else 'idle'}: {len(stages)} characters; ms after the last mouse-up")
    print(f"{'stage':<14} {'n':>3} {'p50':>8} {'p95':>8}")
    for key, row in table.items():
        print(f"{key:<14} {row['n']:>3} {row['p50']:>8.0f} {row['p95']:>8.0f}")
    if args.json:
        args.json.write_text(json.dumps({"busy": args.busy, "characters": stages, "summary": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
