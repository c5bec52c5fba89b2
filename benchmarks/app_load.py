"""Many people using the app at once: async HTTP users calling /predict through Gradio's REST API on loopback.

    python benchmarks/app_load.py [--users 50] [--requests 20] [--seconds 60] [--think 1.0]
    python benchmarks/app_load.py --route run                  # POST /gradio_api/run/predict: no queue, one request
    python benchmarks/app_load.py --think 0 --users 8          # closed loop: the server's saturation throughput
    python benchmarks/app_load.py --route raw                  # POST /api/predict, the PNG as the body
    python benchmarks/app_load.py --route run --floor          # Gradio alone: a /predict that does nothing
    python benchmarks/app_load.py --url http://127.0.0.1:7860/ --pid 1234   # an app already running here

Starts ``python app.py`` on a free 127.0.0.1 port (so it knows the server's PID), uploads each distinct
drawing once (``POST /gradio_api/upload``), then runs --users users in one asyncio loop with httpx: each
sends ``POST /gradio_api/call/predict`` with the uploaded file's FileData record, reads the answer from
``GET /gradio_api/call/predict/<event_id>`` (server-sent events) and waits --think seconds (uniformly
0.5x-1.5x: a person draws at most about one character a second) before the next, up to --requests calls
or --seconds. One event loop and one connection pool cost the client a few ms of CPU per call, where one
``gradio_client`` per thread cost more than the server itself, so the server, not the client, is measured.

Prints throughput, p50/p95/max latency (from the POST to the answer), errors, and the server's CPU per
request: the utime+stime of the server process and its children (``/proc/PID/stat``, clock ticks) from
after a warm-up to the end, divided by the requests answered. Each figure is printed against the issue's
targets (50 users: 0 errors, p95 <= 250 ms; server CPU per /predict <= 12 ms). The server's CPU is then
split: before the load this process times the app's own work on the same drawings (``app_work``: reading
the PNG, preprocessing, the three models, ``webapp.api.predict_json`` whole), and the rest is Gradio's (for
--route raw: the HTTP stack's). ``--floor`` measures Gradio alone: the same calls against a bare Gradio app whose
/predict does nothing.
Only loopback addresses; users, requests and seconds have hard caps. Without shipped models it trains tiny
LeNet-5s on the fixture.

Writes the record assets/benchmarks/app_load-<route>[-floor].json (``--record`` names another), with the settings,
the machine and its load average; benchmarks/records.py makes the page of figures from the records.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import gradio as gr
import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]
from app_support import build_models, canvas_image, dataset_images, free_port  # noqa: E402
from records import write_record  # noqa: E402

from recognizer.preprocess import to_model_input  # noqa: E402
from webapp.api import RAW_ROUTE, predict_json  # noqa: E402
from webapp.served import ServedModels  # noqa: E402

MAX_USERS = 100
MAX_REQUESTS = 200  # per user
MAX_SECONDS = 300.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")
API = "gradio_api"
TARGET_USERS, TARGET_P95_MS, TARGET_CPU_MS = 50, 250.0, 12.0
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Tally:
    """What the users saw: latencies of answered calls (ms) and error messages."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# The server's own CPU time


def process_ticks(pid: int) -> int:
    """utime+stime of one process, in clock ticks (fields 14 and 15 of /proc/PID/stat); 0 once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = text[text.rindex(")") + 2:].split()  # the name in parentheses may hold spaces
    return int(fields[11]) + int(fields[12])


def descendants(pid: int) -> list[int]:
    """pid and every live process below it (a server that forks workers spends CPU there too)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            parents.setdefault(int(text[text.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(parents.get(p, []))
    return found


def server_cpu_seconds(pid: int) -> float:
    return sum(process_ticks(p) for p in descendants(pid)) / TICK


# ---------------------------------------------------------------------------------------------
# The REST calls


async def upload(client: httpx.AsyncClient, url: str, path: Path) -> dict:
    """Upload one file once; the FileData record /predict takes (what gradio_client.handle_file sends)."""
    with path.open("rb") as f:
        response = await client.post(f"{url}{API}/upload", files={"files": (path.name, f, "image/png")})
    response.raise_for_status()
    return {"path": response.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


async def call_predict(client: httpx.AsyncClient, url: str, image: dict, session: str | None = None) -> dict:
    """One /predict through the queue: POST for an event id, then read the SSE stream to its end.

    ``session`` is the user's session hash, as the browser and gradio_client send one per visitor: without
    one Gradio builds a fresh session state (a copy of every block's config) for every call.
    """
    body: dict = {"data": [image, 5, False, "", ""]}  # image, top_k, include_input, models, only
    if session:
        body["session_hash"] = session
    response = await client.post(f"{url}{API}/call/predict", json=body)
    response.raise_for_status()
    event_id = response.json()["event_id"]
    event = None
    async with client.stream("GET", f"{url}{API}/call/predict/{event_id}") as stream:
        stream.raise_for_status()
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line[7:].strip()
            elif line.startswith("data: ") and event in ("complete", "error"):
                data = json.loads(line[6:])
                if event == "error":
                    raise RuntimeError(f"server error: {data}")
                return data[0]
    raise RuntimeError(f"the stream ended without an answer (last event {event})")


async def run_predict(client: httpx.AsyncClient, url: str, image: dict, session: str | None = None) -> dict:
    """One /predict without the queue: ``POST /gradio_api/run/predict`` answers in its body (/predict sets
    queue=False, which opens this route; gradio_client and /call/ still use the queue)."""
    body: dict = {"data": [image, 5, False, "", ""]}  # image, top_k, include_input, models, only
    if session:
        body["session_hash"] = session
    response = await client.post(f"{url}{API}/run/predict", json=body)
    response.raise_for_status()
    return response.json()["data"][0]


async def raw_predict(client: httpx.AsyncClient, url: str, image: dict, session: str | None = None) -> dict:
    """One drawing through ``POST /api/predict``: the PNG itself is the body (no upload step, no Gradio call), so
    every request carries its image, as a new drawing would."""
    response = await client.post(f"{url}{RAW_ROUTE.lstrip('/')}", content=image["bytes"],
                                 params={"top_k": 5, "include_input": "false"}, headers={"content-type": "image/png"})
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
    return response.json()


ROUTES = {"call": call_predict, "run": run_predict, "raw": raw_predict}


async def prepare_images(client: httpx.AsyncClient, url: str, files: list[Path], route: str) -> list[dict]:
    """What each route sends for a drawing: the raw route its bytes, Gradio's routes the uploaded file's record."""
    if route == "raw":
        return [{"bytes": path.read_bytes()} for path in files]
    return [await upload(client, url, path) for path in files]


async def one_user(client: httpx.AsyncClient, url: str, images: list[dict], requests: int, deadline: float,
                   think: float, tally: Tally, seed: int, sessions: bool, route: str = "call") -> None:
    rng = random.Random(seed)
    session = f"load-user-{seed}-{rng.getrandbits(32):08x}" if sessions else None
    await asyncio.sleep(rng.uniform(0, think))  # people do not all start at the same instant
    for _ in range(requests):
        if time.perf_counter() > deadline:
            return
        started = time.perf_counter()
        try:
            answer = await ROUTES[route](client, url, images[rng.randrange(len(images))], session)
            problem = None if answer.get("ok") else str(answer.get("error", "not ok"))
        except Exception as err:  # noqa: BLE001 - a benchmark counts failures rather than stopping
            problem = f"{type(err).__name__}: {err}"
        if problem:
            tally.errors.append(problem)
        else:
            tally.latencies.append((time.perf_counter() - started) * 1000)
        if think > 0:
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))


async def run_load(url: str, files: list[Path], users: int, requests: int, seconds: float, think: float,
                   warmup: int, pid: int | None, sessions: bool = True, route: str = "call") -> dict:
    """Upload, warm up, then load; returns the tally, wall time and CPU figures."""
    limits = httpx.Limits(max_connections=users + 4, max_keepalive_connections=users + 4)
    timeout = httpx.Timeout(60.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
        images = await prepare_images(client, url, files, route)
        for image in images[:warmup]:  # first calls pay one-off costs (sessions, caches): not measured
            await ROUTES[route](client, url, image, "load-warmup")
        tally = Tally()
        cpu0 = server_cpu_seconds(pid) if pid else None
        own0, started = time.process_time(), time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(one_user(client, url, images, requests, deadline, think, tally, i, sessions, route)
                               for i in range(users)))
        wall = time.perf_counter() - started
        own = time.process_time() - own0
        cpu = server_cpu_seconds(pid) - cpu0 if pid and cpu0 is not None else None
    return {"tally": tally, "wall": wall, "server_cpu": cpu, "client_cpu": own}


# ---------------------------------------------------------------------------------------------
# Starting the app and reporting


def wait_until_ready(url: str, process: subprocess.Popen | None, limit: float = 120.0,
                     log: Path | None = None) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if process is not None and process.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"the app exited with code {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url + "config", timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {limit:.0f} s")


def drawings(work: Path, n: int = 40) -> list[Path]:
    """Real EMNIST test images drawn large on a 400x400 canvas, as PNG files."""
    x, _, _ = dataset_images("balanced", n)
    files = []
    for i, image in enumerate(x):
        files.append(work / f"drawing{i}.png")
        Image.fromarray(canvas_image(image)).save(files[-1])
    return files


def app_work(files: list[Path], models: Path, assets: Path, repeats: int = 3) -> dict[str, float]:
    """The app's own CPU per /predict, measured in this process before the load (thread CPU time, median ms
    over the drawings): reading the PNG, preprocessing, the three slot models, and ``predict_json`` whole (all
    three and its JSON). What the server spends beyond ``predict_json`` is Gradio's: HTTP, routing, the
    session, the uploaded file's checks and the answer's serialisation."""
    lab = ServedModels(models, assets)
    names = [n for n in lab.slot_defaults() if n]
    times: dict[str, list[float]] = {"read": [], "to_model_input": [], "models": [], "predict_json": []}
    for _ in range(repeats):
        for path in files:
            c0 = time.thread_time()
            Image.open(path).load()
            c1 = time.thread_time()
            x28 = to_model_input(str(path))
            c2 = time.thread_time()
            for name in names:
                lab.recognizer.predict(name, x28)
            c3 = time.thread_time()
            predict_json(lab, str(path), 5, False, "")
            c4 = time.thread_time()
            for stage, seconds in zip(times, (c1 - c0, c2 - c1, c3 - c2, c4 - c3), strict=True):
                times[stage].append(1000 * seconds)
    ms = {stage: float(np.median(values)) for stage, values in times.items()}
    return {"read PNG": ms["read"], "preprocess": ms["to_model_input"] - ms["read"], "3 models": ms["models"],
            "predict_json": ms["predict_json"]}


def models_for(args: argparse.Namespace, work: Path) -> Path:
    if (args.models / "manifest.json").exists():
        return args.models
    print(f"no manifest in {args.models}: training tiny LeNet-5s on the fixture in {work} (not representative)")
    return build_models(work / "models", work)


def serve_floor(port: int) -> None:
    """Gradio's floor: a bare Blocks whose /predict has the app's signature and does nothing, served as the app
    serves its own (queue=False, 127.0.0.1). Its server CPU per call is what Gradio alone costs."""
    def predict(image: gr.FileData | None, top_k: int = 5, include_input: bool = True, models: str = "") -> dict:
        """Answers at once without reading the image."""
        return {"ok": True, "error": None, "models": [], "agree": None, "input": None}

    with gr.Blocks(analytics_enabled=False) as demo:
        gr.Markdown("Gradio's floor for benchmarks/app_load.py")
        gr.api(predict, api_name="predict", queue=False)
    demo.queue().launch(server_name="127.0.0.1", server_port=port, quiet=True)


def start_app(args: argparse.Namespace, models: Path, work: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port),
               "--models", str(models), "--assets", str(args.assets),
               "--predict-rate", "0",  # every simulated user shares one address: measure the server, not the limiter
               *args.app_arg]
    if args.floor:
        command = [sys.executable, __file__, "--serve-floor", str(port)]
    started = time.perf_counter()
    log = work / "app.log"
    process = subprocess.Popen(command, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_until_ready(url, process, log=log)
    except BaseException:
        stop(process)
        raise
    print(f"app started (pid {process.pid}, {' '.join(args.app_arg) or 'default settings'}) and served its "
          f"config {time.perf_counter() - started:.1f} s after launch")
    return url, process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def report(result: dict, users: int, requests: int, args: argparse.Namespace, url: str) -> bool:
    """Print the figures and the target lines; True when every target this run can judge is met."""
    tally, wall = result["tally"], result["wall"]
    done, errors = len(tally.latencies), len(tally.errors)
    if args.floor:
        print("Gradio's floor: a bare Gradio app whose /predict returns at once (--floor), not the app")
    print(f"{users} users x up to {requests} /predict calls, think {args.think:g} s, "
          f"{'no session hash' if args.no_session else 'one session per user'}, /{args.route}/predict, on {url} "
          f"(limit {args.seconds:.0f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"  completed {done}, errors {errors}, wall {wall:.1f} s, throughput {done / wall:.1f} requests/s")
    p95 = float("inf")
    if done:
        a = np.asarray(tally.latencies)
        p95 = float(np.percentile(a, 95))
        print(f"  latency ms: p50 {np.percentile(a, 50):.0f}, p95 {p95:.0f}, max {a.max():.0f} "
              "(POST to answer: queue, preprocessing, three models, the SSE stream)")
    for message in sorted(set(tally.errors))[:5]:
        print(f"  error: {message}")
    answered = done + errors
    print(f"  load generator CPU {1000 * result['client_cpu'] / max(answered, 1):.1f} ms per request")
    ok = errors == 0 and p95 <= TARGET_P95_MS
    note = "" if users == TARGET_USERS else f" (this run had {users} users: not the target's setting)"
    print(f"target: {TARGET_USERS} users, 0 errors, p95 <= {TARGET_P95_MS:.0f} ms -> {errors} errors, "
          f"p95 {p95:.0f} ms: {verdict(ok)}{note}")
    if result["server_cpu"] is not None and answered:
        per = 1000 * result["server_cpu"] / answered
        ok_cpu = per <= TARGET_CPU_MS
        print(f"target: server CPU per /predict <= {TARGET_CPU_MS:.0f} ms -> {per:.1f} ms "
              f"({result['server_cpu']:.2f} s over {answered} requests, /proc utime+stime): {verdict(ok_cpu)}")
        if result.get("app_work"):
            own = result["app_work"]
            parts = ", ".join(f"{stage} {ms:.1f}" for stage, ms in own.items() if stage != "predict_json")
            rest = ("the HTTP stack's (uvicorn, FastAPI, Gradio's middleware)" if args.route == "raw"
                    else "Gradio's (HTTP, routing, session, file checks)")
            print(f"  of which the app's own work {own['predict_json']:.1f} ms ({parts}; measured alone in the load "
                  f"generator before the load) and {rest} the other {per - own['predict_json']:.1f} ms")
        ok = ok and ok_cpu
    else:
        print("target: server CPU per /predict: not measured (give --pid for an app started elsewhere)")
    return ok and users == TARGET_USERS


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=TARGET_USERS, help=f"at most {MAX_USERS}")
    parser.add_argument("--requests", type=int, default=20, help=f"per user, at most {MAX_REQUESTS}")
    parser.add_argument("--seconds", type=float, default=60.0, help=f"stop sending after (<= {MAX_SECONDS:g})")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds a user waits between calls (0: none)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured calls before the load")
    parser.add_argument("--models", type=Path, default=REPO / "exported_models")
    parser.add_argument("--assets", type=Path, default=REPO / "assets")
    parser.add_argument("--app-arg", action="append", default=[],
                        help="passed to app.py (repeat), e.g. --app-arg=--api-batch=4")
    parser.add_argument("--route", choices=sorted(ROUTES), default="call",
                        help="call: the queue (POST /call/predict + SSE, as gradio_client); run: POST /run/predict; "
                             "raw: POST /api/predict with the PNG as the body (no Gradio call)")
    parser.add_argument("--no-session", action="store_true",
                        help="send no session hash (a bare curl call): each call then costs the server a new session")
    parser.add_argument("--floor", action="store_true",
                        help="load a bare Gradio app whose /predict does nothing: Gradio's own CPU per call")
    parser.add_argument("--serve-floor", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--url", help="use an app already running on this machine")
    parser.add_argument("--pid", type=int, help="with --url: the app's process, for its CPU time")
    parser.add_argument("--record", help="the record's name under assets/benchmarks/ (default app_load-<route>"
                                         "[-floor], with -think0 for a closed loop)")
    args = parser.parse_args(argv)
    if args.url and urlparse(args.url).hostname not in LOOPBACK:
        parser.error("only an app on this machine (127.0.0.1) may be loaded")
    if args.floor and (args.url or args.route == "raw"):
        parser.error("--floor starts its own bare Gradio app, which has no raw route")
    args.users = max(1, min(args.users, MAX_USERS))
    args.requests = max(1, min(args.requests, MAX_REQUESTS))
    args.seconds = max(1.0, min(args.seconds, MAX_SECONDS))
    args.think = max(0.0, min(args.think, 10.0))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_floor:
        serve_floor(args.serve_floor)
        return 0
    work = Path(tempfile.mkdtemp(prefix="app-load-"))
    process = None
    try:
        files = drawings(work)
        models = models_for(args, work)
        if args.url:
            url, pid = (args.url if args.url.endswith("/") else args.url + "/"), args.pid
            wait_until_ready(url, None, 10)
        else:
            url, process = start_app(args, models, work)
            pid = process.pid
        own = app_work(files, models, args.assets) if pid and not args.floor else None
        result = asyncio.run(run_load(url, files, args.users, args.requests, args.seconds, args.think,
                                      args.warmup, pid, not args.no_session, args.route))
        result["app_work"] = own
    finally:
        if process is not None:
            stop(process)
        shutil.rmtree(work, ignore_errors=True)
    met = report(result, args.users, args.requests, args, url)
    print(f"wrote {record(result, args)}")
    return 0 if met else 1


def record(result: dict, args: argparse.Namespace) -> Path:
    """The run's figures as a record (benchmarks/records.py): latency, throughput, errors, CPU per call."""
    tally, wall = result["tally"], result["wall"]
    done, errors = len(tally.latencies), len(tally.errors)
    a = np.asarray(tally.latencies) if done else np.asarray([np.nan])
    answered = max(done + errors, 1)
    server = None if result["server_cpu"] is None else 1000 * result["server_cpu"] / answered
    own = (result.get("app_work") or {}).get("predict_json")
    rows = [["calls answered", done, "—"], ["errors", errors, "0"],
            ["throughput, requests/s", done / wall, "—"],
            ["latency p50, ms", float(np.percentile(a, 50)), "—"],
            ["latency p95, ms", float(np.percentile(a, 95)), f"<= {TARGET_P95_MS:.0f} ({TARGET_USERS} users)"],
            ["latency max, ms", float(a.max()), "—"],
            ["server CPU per call, ms", server, f"<= {TARGET_CPU_MS:.0f}"],
            ["of which the app's own work, ms", own, "—"],
            ["load generator CPU per call, ms", 1000 * result["client_cpu"] / answered, "—"]]
    what = "Gradio's floor (a /predict that does nothing)" if args.floor else f"/{args.route}/predict"
    name = args.record or f"app_load-{args.route}{'-floor' if args.floor else ''}{'-think0' if not args.think else ''}"
    return write_record(
        "app_load", f"Users at once: {args.users} users, {what}, think {args.think:g} s",
        {"columns": ["figure", "measured", "target (issue 14)"], "rows": rows},
        {k: v for k, v in vars(args).items() if k in ("users", "requests", "seconds", "think", "warmup", "route",
                                                     "floor", "no_session", "app_arg", "models")},
        [f"{args.users} async httpx users in one event loop on loopback, each up to {args.requests} calls, think "
         f"time uniform 0.5-1.5x {args.think:g} s, {'no session hash' if args.no_session else 'one session each'}; "
         "latency from the POST to the answer; the server's CPU from /proc utime+stime after the warm-up."],
        {"latencies_ms": tally.latencies, "errors": tally.errors[:20], "wall_s": wall,
         "server_cpu_s": result["server_cpu"], "client_cpu_s": result["client_cpu"],
         "app_work_ms": result.get("app_work")}, name=name)


if __name__ == "__main__":
    sys.exit(main())
