"""Several people using the app at once: N gradio_client users calling /predict on loopback.

    python benchmarks/app_load.py [--users 4] [--requests 10] [--seconds 60] [--models exported_models]
    python benchmarks/app_load.py --url http://127.0.0.1:7860/     # an app that is already running

Starts ``python app.py`` on a free 127.0.0.1 port (and reports how long it took to serve its first
page), then runs --users clients in threads, each sending --requests real EMNIST test images drawn on
a 400x400 canvas, stopping early at --seconds. Prints throughput, latency percentiles and errors.
Only loopback addresses are accepted. Without shipped models it trains tiny LeNet-5s on the fixture.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from app_support import build_models, canvas_image, dataset_images, free_port  # noqa: E402

MAX_USERS = 32
MAX_REQUESTS = 200


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


def user(url: str, files: list[Path], requests: int, deadline: float, latencies: list[float], errors: list[str],
         lock: threading.Lock, seed: int) -> None:
    from gradio_client import Client, handle_file

    try:
        client = Client(url, verbose=False, download_files=False)
    except Exception as err:  # noqa: BLE001 - a benchmark counts failures rather than stopping
        with lock:
            errors.append(f"connect: {err}")
        return
    rng = np.random.default_rng(seed)
    for _ in range(requests):
        if time.perf_counter() > deadline:
            break
        path = files[int(rng.integers(len(files)))]
        started = time.perf_counter()
        try:
            answer = client.predict(handle_file(str(path)), 5, False, "", api_name="/predict")
            problem = None if answer.get("ok") else answer.get("error", "not ok")
        except Exception as err:  # noqa: BLE001
            problem = f"{type(err).__name__}: {err}"
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            if problem:
                errors.append(problem)
            else:
                latencies.append(elapsed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--requests", type=int, default=10, help="per user")
    parser.add_argument("--seconds", type=float, default=60.0, help="stop sending after this long")
    parser.add_argument("--models", type=Path, default=REPO / "exported_models")
    parser.add_argument("--assets", type=Path, default=REPO / "assets")
    parser.add_argument("--url", help="use an app that is already running on this machine")
    args = parser.parse_args(argv)
    users, requests = min(args.users, MAX_USERS), min(args.requests, MAX_REQUESTS)

    work = Path(tempfile.mkdtemp(prefix="app-load-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    x, _, _ = dataset_images("balanced", 40)
    files = []
    for i, image in enumerate(x):
        files.append(work / f"drawing{i}.png")
        Image.fromarray(canvas_image(image)).save(files[-1])

    process = None
    if args.url:
        url = args.url if args.url.endswith("/") else args.url + "/"
        if urlparse(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            parser.error("only an app on this machine (127.0.0.1) may be loaded")
    else:
        models = args.models
        if not (models / "manifest.json").exists():
            print(f"no manifest in {models}: training tiny LeNet-5s on the fixture in {work} (not representative)")
            models = build_models(work / "models", work)
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        command = [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port),
                   "--models", str(models), "--assets", str(args.assets)]
        started = time.perf_counter()
        log = (work / "app.log").open("w")
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        if process is not None:
            wait_until_ready(url, process, log=work / "app.log")
            print(f"app started and served its config {time.perf_counter() - started:.1f} s after launch")
        else:
            wait_until_ready(url, None, 10)
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        started = time.perf_counter()
        deadline = started + args.seconds
        threads = [threading.Thread(target=user, args=(url, files, requests, deadline, latencies, errors, lock, i))
                   for i in range(users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(args.seconds + 60)
        wall = time.perf_counter() - started
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()

    done = len(latencies)
    print(f"{users} users x up to {requests} /predict calls on {url} (limit {args.seconds:.0f} s)")
    print(f"  completed {done}, errors {len(errors)}, wall {wall:.1f} s, throughput {done / wall:.2f} requests/s")
    if latencies:
        a = np.asarray(latencies)
        print(f"  latency ms: p50 {np.percentile(a, 50):.0f}, p95 {np.percentile(a, 95):.0f}, max {a.max():.0f} "
              "(includes connecting, upload and the queue)")
    for message in sorted(set(errors))[:5]:
        print(f"  error: {message}")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
