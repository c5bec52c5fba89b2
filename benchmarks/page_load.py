"""50 simulated pages drawing at once against one server: the page answering in the browser versus the server answering.

    python benchmarks/page_load.py --answerer server     # app.py --no-browser-inference: the server answers
    python benchmarks/page_load.py --answerer page       # the default app: the page answers, one server step
    python benchmarks/page_load.py --answerer page --no-saliency   # the heat maps off: the answers' step alone

Each simulated page is an asyncio task with its own Gradio session (``session_hash``) doing, per character, what the
real page's canvas (webapp/canvas.js) does through Gradio's queue, as Gradio's own frontend sends it:
``POST /gradio_api/queue/join`` for the canvas's ``change`` event (``DrawTab.on_drawing``: its fn_index and
trigger_id read from ``GET /config``; data: the canvas's JSON value, ``null`` for the State, the three slots'
models), ``GET /gradio_api/queue/data?session_hash=`` (server-sent events) up to its ``process_completed``, then the
same for its ``.then`` step (``DrawTab.on_saliency``: the heat maps; the checkbox sent as --no-saliency says). The
drawings are real EMNIST test images drawn large on the canvas (the RGBA layer as the canvas holds it, PNG data
URL) with mouse-like strokes (``webapp.canvas.canvas_json``). For ``--answerer page`` a character is what the page
sends where it answered the drawing itself: one step, the canvas's ``input`` event with the value as its event
data (``DrawTab.on_page_stroke``: decode, preprocess, the heat maps; no
``.then``): the answers themselves are computed and shown by the page, on the person's own CPU, which this
benchmark does not time (benchmarks/browser_latency.py does, in Chromium). Each reply is checked: the server's step
must carry the slots' answers when the server answers; the page's step has no answer among its outputs.

A person draws about one character every 1-2 s: each page starts its next character --think seconds (uniform
0.5-1.5x) after the last one started, or when both of its steps are answered if that is later (the canvas holds a
drawing while one is pending: ``trigger_mode="always_last"``). One change event per character (a character of
several strokes raises one per stroke on a real page), and no Clear between characters.

Reuses benchmarks/app_load.py's app start (``--predict-rate 0``), readiness wait and ``/proc`` CPU reading. Prints,
per step, p50/p95/max from the join to ``process_completed``, errors, throughput, and the server's CPU per
character (utime+stime of the app's process tree after a warm-up, over the characters sent). Writes the record
assets/benchmarks/page_load-<answerer>[-nosaliency].json (benchmarks/records.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]
from app_load import API, LOOPBACK, models_for, server_cpu_seconds, start_app, stop, wait_until_ready  # noqa: E402
from app_support import canvas_image, dataset_images  # noqa: E402
from browser_support import CHARACTERS  # noqa: E402
from records import write_record  # noqa: E402

from recognizer.preprocess import sketchpad_value  # noqa: E402
from webapp.canvas import CANVAS, canvas_json  # noqa: E402

MAX_PAGES, MAX_CHARACTERS, MAX_SECONDS = 100, 50, 300.0
STEPS = ("drawing", "saliency")
POINTS = 80  # a mouse reports about 60 points a second; a character takes a second or two


@dataclass
class Tally:
    """What the pages saw: per step the milliseconds from the join to ``process_completed``, and errors."""

    ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    character_ms: list[float] = field(default_factory=list)  # the drawing's join to the heat maps' completion
    errors: list[str] = field(default_factory=list)
    sent: int = 0


@dataclass(frozen=True)
class Events:
    """What ``/config`` says about the canvas's events: the change step, its ``.then`` (the heat maps), and how to
    fill each step's inputs (component id -> type and initial value)."""

    drawing: int  # fn_index of the canvas's change event
    saliency: int  # fn_index of its .then follower
    page: int  # fn_index of the canvas's input event (a drawing the page answered: one step)
    trigger: int  # the canvas's component id (the trigger_id the frontend sends)
    inputs: dict[int, list[int]]  # fn_index -> input component ids
    labels: list[int]  # positions in the drawing step's outputs holding the slots' answers (gr.Label)
    components: dict[int, dict]  # id -> {"type", "value"}


def read_events(config: dict) -> Events:
    """The canvas's change event (a backend function targeting ``#sketch``'s change) and its ``.then`` step."""
    components = {c["id"]: {"type": c["type"], "value": c.get("props", {}).get("value")} for c in config["components"]}
    sketch = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "sketch")
    deps = config["dependencies"]
    change = next(d for d in deps if d["backend_fn"] and [sketch, "change"] in [list(t) for t in d["targets"]])
    follow = next(d for d in deps if d.get("trigger_after") == change["id"] and d["backend_fn"])
    page = next(d for d in deps if d["backend_fn"] and [sketch, "input"] in [list(t) for t in d["targets"]])
    if any(components[c]["type"] == "label" for c in page["outputs"]):
        raise SystemExit("the page's step has an answer among its outputs: it must compute none")
    labels = [i for i, c in enumerate(change["outputs"]) if components[c]["type"] == "label"]
    return Events(change["id"], follow["id"], page["id"], sketch,
                  {d["id"]: d["inputs"] for d in (change, follow, page)}, labels, components)


def step_data(events: Events, fn_index: int, value: str, saliency: bool) -> list[Any]:
    """A step's inputs as the page sends them: the canvas's value, null for State (the server keeps it per
    session), the checkbox, and each dropdown's model (its value in the config: the slots' defaults)."""
    data: list[Any] = []
    for cid in events.inputs[fn_index]:
        kind = events.components[cid]["type"]
        data.append(value if cid == events.trigger else saliency if kind == "checkbox"
                    else None if kind == "state" else events.components[cid]["value"])
    return data


# ---------------------------------------------------------------------------------------------
# The drawings


def mouse_strokes(character: list[list[tuple[float, float]]], rng: random.Random) -> list[dict]:
    """A character of browser_support.CHARACTERS as the canvas records it: mouse strokes of POINTS points in all,
    [x, y, ms, pressure] in the canvas's pixels (the server parses and keeps them)."""
    side, left, top = rng.uniform(200, 320), rng.uniform(20, 60), rng.uniform(20, 60)
    per = max(2, POINTS // len(character))
    strokes, t = [], 0.0
    for stroke in character:
        a = np.asarray(stroke, float)
        k = np.linspace(0, len(a) - 1, per)
        xy = np.stack([np.interp(k, np.arange(len(a)), a[:, j]) for j in (0, 1)], 1) * side + (left, top)
        points = [[round(float(x), 1), round(float(y), 1), round(t + 16.7 * i), 0.5] for i, (x, y) in enumerate(xy)]
        t += 16.7 * per + 200
        strokes.append({"pointer": "mouse", "mode": "brush", "points": points})
    return strokes


def canvas_values(n: int, seed: int = 0) -> list[str]:
    """``n`` canvas values as the canvas sends them (to either step): real EMNIST test images drawn on the canvas (the
    RGBA layer it holds), with strokes."""
    x, _, _ = dataset_images("balanced", n)
    rng, shapes = random.Random(seed), list(CHARACTERS.values())
    return [canvas_json(sketchpad_value(canvas_image(image, CANVAS))["layers"][0],
                        mouse_strokes(shapes[i % len(shapes)], rng)) for i, image in enumerate(x)]


# ---------------------------------------------------------------------------------------------
# One step through Gradio's queue, one page, the load


async def queue_step(client: httpx.AsyncClient, url: str, session: str, fn_index: int, trigger: int,
                     data: list[Any], event_data: Any = None) -> tuple[float, list[Any]]:
    """Join the queue for one event and read the session's SSE stream to its ``process_completed``; returns the
    milliseconds from the join to it and the step's output data. Raises on a failed step."""
    started = time.perf_counter()
    body = {"data": data, "event_data": event_data, "fn_index": fn_index, "trigger_id": trigger,
            "session_hash": session}
    response = await client.post(f"{url}{API}/queue/join", json=body)
    response.raise_for_status()
    event_id = response.json()["event_id"]
    async with client.stream("GET", f"{url}{API}/queue/data", params={"session_hash": session}) as stream:
        stream.raise_for_status()
        async for line in stream.aiter_lines():
            if not line.startswith("data: "):
                continue
            message = json.loads(line[6:])
            if message.get("msg") == "unexpected_error":
                raise RuntimeError(f"unexpected error: {message.get('message')}")
            if message.get("msg") == "process_completed" and message.get("event_id") == event_id:
                if not message.get("success"):
                    raise RuntimeError(f"step {fn_index} failed: {str(message.get('output'))[:200]}")
                return (time.perf_counter() - started) * 1000, message["output"]["data"]
    raise RuntimeError(f"the stream ended before step {fn_index} completed")


def answers_problem(events: Events, output: list[Any], answerer: str) -> str | None:
    """Whether the drawing step did what this answerer means: the server's answers in every slot's Label when the
    server answers; none (a skipped update) when the page does."""
    values = [output[i] for i in events.labels]
    answered = [isinstance(v, dict) and bool(v.get("confidences") or v.get("label")) for v in values]
    if answerer == "server" and not all(answered):
        return f"the server's step carried no answers: {str(values)[:120]}"
    if answerer == "page" and any(answered):
        return "the server computed answers for a drawing the page answered"
    return None


async def one_character(client: httpx.AsyncClient, url: str, session: str, events: Events, value: str,
                        args: argparse.Namespace, tally: Tally | None) -> None:
    """The canvas's change event, then its heat maps step (the server answers), or the page's one step (the page
    answered); ``tally`` None: a warm-up, not counted."""
    started = time.perf_counter()
    times = {}
    try:
        if args.answerer == "page":
            times["drawing"], _ = await queue_step(client, url, session, events.page, events.trigger,
                                                   step_data(events, events.page, value, not args.no_saliency),
                                                   {"value": value})
            if tally is not None:
                tally.ms["drawing"].append(times.pop("drawing"))
                tally.character_ms.append((time.perf_counter() - started) * 1000)
            return
        times["drawing"], output = await queue_step(client, url, session, events.drawing, events.trigger,
                                                    step_data(events, events.drawing, value, not args.no_saliency))
        problem = answers_problem(events, output, args.answerer)
        if problem:
            raise RuntimeError(problem)
        times["saliency"], _ = await queue_step(client, url, session, events.saliency, events.trigger,
                                                step_data(events, events.saliency, value, not args.no_saliency))
    except Exception as err:  # noqa: BLE001 - a benchmark counts failures rather than stopping
        if tally is None:
            raise
        tally.errors.append(f"{type(err).__name__}: {err}")
        return
    if tally is not None:
        for name, ms in times.items():
            tally.ms[name].append(ms)
        tally.character_ms.append((time.perf_counter() - started) * 1000)


async def one_page(client: httpx.AsyncClient, url: str, events: Events, values: list[str], args: argparse.Namespace,
                   deadline: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    session = f"page-load-{seed}-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
    await asyncio.sleep(rng.uniform(0, args.think))  # pages do not all start drawing at the same instant
    for _ in range(args.characters):
        if time.perf_counter() > deadline:
            return
        started = time.perf_counter()
        tally.sent += 1
        await one_character(client, url, session, events, values[rng.randrange(len(values))], args, tally)
        wait = args.think * rng.uniform(0.5, 1.5) - (time.perf_counter() - started)
        if wait > 0:
            await asyncio.sleep(wait)


async def run_load(url: str, values: list[str], args: argparse.Namespace, pid: int | None) -> dict:
    """Read /config, warm up with one session, then run the pages; returns the tally, wall time and CPU figures."""
    limits = httpx.Limits(max_connections=2 * args.pages + 4, max_keepalive_connections=2 * args.pages + 4)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0), trust_env=False) as client:
        config = (await client.get(f"{url}config")).raise_for_status().json()
        events = read_events(config)
        page = (await client.get(f"{url}page/config.json")).raise_for_status().json()
        if page["enabled"] != (args.answerer == "page"):  # the app must let the page answer exactly when it says so
            raise SystemExit(f"--answerer {args.answerer}, but the app's /page/config.json says enabled "
                             f"{page['enabled']} ({page['reason']})")
        for value in values[:args.warmup]:  # first calls pay one-off costs (session, caches): not measured
            await one_character(client, url, "page-load-warmup", events, value, args, None)
        idle = None
        if pid and args.idle > 0:  # what the server spends doing nothing (its loops, the warm-up's heartbeats)
            idle0 = server_cpu_seconds(pid)
            await asyncio.sleep(args.idle)
            idle = (server_cpu_seconds(pid) - idle0) / args.idle
        tally = Tally()
        cpu0 = server_cpu_seconds(pid) if pid else None
        own0, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one_page(client, url, events, values, args, started + args.seconds, tally, i)
                               for i in range(args.pages)))
        wall = time.perf_counter() - started
        own = time.process_time() - own0
        cpu = server_cpu_seconds(pid) - cpu0 if pid and cpu0 is not None else None
    return {"tally": tally, "wall": wall, "server_cpu": cpu, "client_cpu": own, "idle_cpu": idle}


# ---------------------------------------------------------------------------------------------
# Reporting


def percentiles(values: list[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    a = np.asarray(values)
    return float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(a.max())


def figures(result: dict) -> list[list[Any]]:
    """The record's rows: characters, errors, throughput, server CPU per character, each step's p50/p95/max."""
    tally, wall = result["tally"], result["wall"]
    done = len(tally.character_ms)
    server = None if result["server_cpu"] is None else 1000 * result["server_cpu"] / max(tally.sent, 1)
    rows: list[list[Any]] = [
        ["characters answered", done, None, None], ["errors", len(tally.errors), None, None],
        ["throughput, characters/s", done / wall, None, None],
        ["server CPU per character, ms", server, None, None],
        ["server CPU idle, ms per second", None if result["idle_cpu"] is None else 1000 * result["idle_cpu"],
         None, None],
        ["load generator CPU per character, ms", 1000 * result["client_cpu"] / max(tally.sent, 1), None, None]]
    for name, label in (("drawing", "drawing step (join to process_completed; the page's: with its heat maps), ms"),
                        ("saliency", "heat maps step (.then; none where the page answered), ms")):
        rows.append([label, *percentiles(tally.ms[name])])
    rows.append(["whole character (drawing join to heat maps), ms", *percentiles(tally.character_ms)])
    return rows


def what_the_step_is(args: argparse.Namespace) -> str:
    if args.answerer == "page":
        return ("the page shows the answers itself (about 20 ms of the person's own CPU: benchmarks/browser_latency.py "
                "times that in Chromium); the server's one step decodes and preprocesses the drawing and draws the "
                "heat maps (DrawTab.on_page_stroke)")
    return "the server answers: its drawing step decodes, preprocesses and runs the three slot models (on_drawing)"


def report(result: dict, args: argparse.Namespace, url: str) -> None:
    tally = result["tally"]
    print(f"{args.pages} pages x up to {args.characters} characters, think {args.think:g} s, answerer "
          f"{args.answerer}, heat maps {'off' if args.no_saliency else 'on'}, on {url} (limit {args.seconds:.0f} s)")
    for row in figures(result):
        cells = [f"{v:.1f}" if isinstance(v, float) else "—" if v is None else str(v) for v in row[1:]]
        print(f"  {row[0]}: {' / '.join(cells) if row[2] is not None else cells[0]}"
              + (" (p50 / p95 / max)" if row[2] is not None else ""))
    for message in sorted(set(tally.errors))[:5]:
        print(f"  error: {message}")
    print(f"  {what_the_step_is(args)}")


def record(result: dict, args: argparse.Namespace) -> Path:
    tally = result["tally"]
    name = args.record or f"page_load-{args.answerer}{'-nosaliency' if args.no_saliency else ''}"
    answers = "the page answers (in-browser)" if args.answerer == "page" else "the server answers"
    return write_record(
        "page_load", f"Pages drawing at once: {args.pages} pages, {answers}, heat maps "
                     f"{'off' if args.no_saliency else 'on'}, think {args.think:g} s",
        {"columns": ["figure", "value or p50", "p95", "max"], "rows": figures(result)},
        {k: v for k, v in vars(args).items() if k in ("pages", "characters", "seconds", "think", "warmup",
                                                      "answerer", "no_saliency", "app_arg", "models", "idle")},
        [f"{args.pages} simulated pages in one asyncio loop on loopback, one Gradio session each, each drawing up to "
         f"{args.characters} characters, one every {args.think:g} s (uniform 0.5-1.5x), through Gradio's queue as the "
         "page's frontend sends them (queue/join + queue/data SSE): the canvas's change event, then its .then heat "
         "maps step; one change event per character, no Clear between them.",
         f"{what_the_step_is(args)}.",
         "Server CPU: utime+stime of the app's process tree from /proc after a warm-up, over the characters sent."],
        {"ms": tally.ms, "character_ms": tally.character_ms, "errors": tally.errors[:20], "sent": tally.sent,
         "wall_s": result["wall"], "server_cpu_s": result["server_cpu"], "client_cpu_s": result["client_cpu"],
         "idle_cpu_s_per_s": result["idle_cpu"]},
        name=name)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answerer", choices=("server", "page"), default="page",
                        help="server: app.py --no-browser-inference; page: the default app, the page answering")
    parser.add_argument("--pages", type=int, default=50, help=f"at most {MAX_PAGES}")
    parser.add_argument("--characters", type=int, default=6, help=f"per page, at most {MAX_CHARACTERS}")
    parser.add_argument("--seconds", type=float, default=60.0, help=f"no new character after (<= {MAX_SECONDS:g})")
    parser.add_argument("--think", type=float, default=1.5, help="mean seconds between a page's characters")
    parser.add_argument("--no-saliency", action="store_true", help="the heat maps' checkbox off (sent as False)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured characters before the load")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds the server's idle CPU is read for (0: not)")
    parser.add_argument("--drawings", type=int, default=40, help="distinct test images drawn")
    parser.add_argument("--models", type=Path, default=REPO / "exported_models")
    parser.add_argument("--assets", type=Path, default=REPO / "assets")
    parser.add_argument("--app-arg", action="append", default=[], help="passed to app.py (repeat)")
    parser.add_argument("--url", help="use an app already running on this machine (its answerer must match)")
    parser.add_argument("--pid", type=int, help="with --url: the app's process, for its CPU time")
    parser.add_argument("--record", help="the record's name under assets/benchmarks/")
    args = parser.parse_args(argv)
    if args.url and urlparse(args.url).hostname not in LOOPBACK:
        parser.error(f"only an app on this machine ({', '.join(LOOPBACK)}) may be loaded")
    args.pages = max(1, min(args.pages, MAX_PAGES))
    args.characters = max(1, min(args.characters, MAX_CHARACTERS))
    args.seconds = max(1.0, min(args.seconds, MAX_SECONDS))
    args.think = max(0.0, min(args.think, 10.0))
    args.floor = False  # app_load.start_app's switch for its bare Gradio app
    if args.answerer == "server" and "--no-browser-inference" not in args.app_arg:
        args.app_arg = [*args.app_arg, "--no-browser-inference"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="page-load-"))
    process = None
    try:
        values = canvas_values(args.drawings)
        if args.url:
            url, pid = (args.url if args.url.endswith("/") else args.url + "/"), args.pid
            wait_until_ready(url, None, 10)
        else:
            url, process = start_app(args, models_for(args, work), work)
            pid = process.pid
        result = asyncio.run(run_load(url, values, args, pid))
    finally:
        if process is not None:
            stop(process)
        shutil.rmtree(work, ignore_errors=True)
    report(result, args, url)
    print(f"wrote {record(result, args)}")
    return 0 if not result["tally"].errors and result["tally"].character_ms else 1


if __name__ == "__main__":
    sys.exit(main())
