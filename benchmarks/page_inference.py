"""The three slot models run in the page: open time and per-answer latency in headless Chromium (onnxruntime-web).

    python benchmarks/page_inference.py [--rounds 10]     # -> assets/benchmarks/page_inference.json

Not the app: a tiny static test page served from 127.0.0.1 (http.server, only the files it needs) that loads
onnxruntime-web from node_modules/ (WebAssembly, one thread: ``ort.wasm.min.js`` and
``ort-wasm-simd-threaded.{mjs,wasm}``), opens the three slot models and answers drawings the way the page will:
a character drawn on a 400x400 canvas with the app's brush (tests/browser_support.py's characters), its pixels
through webapp/static/preprocess.js, the 28x28 input through the three models (webapp/static/inference.js).
For each model set (the shipped float32 files, and the page variants in exported_models/page/ when present), in a
fresh browser context (a cold cache):

    open          from navigation to the three sessions created (the runtime's files and the models fetched)
    first answer  from navigation to the first drawing's three answers
    answer        one drawing's preprocessing + the three models, p50/p95 over ``--rounds`` x 10 drawings
    preprocess / models   the two parts of it

and, as a check, the server's answers (recognizer.preprocess + the app's ONNX Runtime sessions) for the same
canvas pixels. Bytes are what a first visit downloads for the models and the runtime, raw and gzip-compressed.
"""

from __future__ import annotations

import argparse
import base64
import functools
import gzip
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]

from browser_support import CHARACTERS, launch  # noqa: E402
from records import write_record  # noqa: E402

from recognizer.inference import Recognizer  # noqa: E402
from recognizer.preprocess import to_model_input  # noqa: E402
from webapp.canvas import BRUSH, CANVAS, canvas_value, png_data_url  # noqa: E402

ORT_DIST = REPO / "node_modules" / "onnxruntime-web" / "dist"
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>page inference benchmark</title>
<script src="/ort/ort.wasm.min.js"></script></head>
<body><canvas id="c" width="%(canvas)d" height="%(canvas)d"></canvas>
<script type="module">
import { toModelInput } from '/preprocess.js';
import { answer, openSlots } from '/inference.js';
ort.env.wasm.wasmPaths = '/ort/';
ort.env.wasm.numThreads = 1;
const canvas = document.getElementById('c');
const pen = canvas.getContext('2d', { willReadFrequently: true });
const draw = (strokes) => {
  pen.clearRect(0, 0, canvas.width, canvas.height);
  const side = 0.55 * canvas.width, left = (canvas.width - side) / 2, top = (canvas.height - side) / 2;
  pen.lineCap = 'round'; pen.lineJoin = 'round'; pen.lineWidth = %(width)d; pen.strokeStyle = '#000';
  for (const stroke of strokes) {
    pen.beginPath();
    stroke.forEach(([x, y], i) => (i ? pen.lineTo : pen.moveTo).call(pen, left + x * side, top + y * side));
    pen.stroke();
  }
  return pen.getImageData(0, 0, canvas.width, canvas.height);
};
window.bench = {
  slots: null,
  async open(set) {
    const t0 = performance.now();
    const manifest = await (await fetch(`/sets/${set}/manifest.json`)).json();
    this.slots = await openSlots(ort, manifest, (file) => `/sets/${set}/${file}`);
    return performance.now() - t0;
  },
  async answer(strokes) {
    const pixels = draw(strokes);
    const t0 = performance.now();
    const x = toModelInput(pixels.data, pixels.width, pixels.height);
    const t1 = performance.now();
    const answers = await answer(ort, this.slots, x, 1);
    const t2 = performance.now();
    return { preprocess: t1 - t0, models: t2 - t1, total: t2 - t0, top: answers.map((a) => a.top[0][0]) };
  },
  pixels(strokes) {
    const d = draw(strokes).data;
    let s = '';
    for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode.apply(null, d.subarray(i, i + 0x8000));
    return btoa(s);
  },
};
window.ready = true;
</script></body></html>
"""


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript", ".wasm": "application/wasm",
                      ".onnx": "application/octet-stream"}

    def log_message(self, *args) -> None:  # quiet
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def site(root: Path, model_sets: dict[str, tuple[Path, list[str], list[Path]]]) -> None:
    """Only what the test page needs: the page, preprocess.js and inference.js, the runtime's three files, and per
    model set its manifest and the three slot models (``/sets/<n>/``)."""
    (root / "ort").mkdir()
    (root / "index.html").write_text(PAGE % {"canvas": CANVAS, "width": 2 * BRUSH})
    for script in ("preprocess.js", "inference.js"):
        shutil.copy(REPO / "webapp" / "static" / script, root / script)
    for name in ORT_FILES:
        os.symlink(ORT_DIST / name, root / "ort" / name)
    for n, (folder, _, files) in enumerate(model_sets.values()):
        (root / "sets" / str(n)).mkdir(parents=True)
        for f in [folder / "manifest.json", *files]:
            os.symlink(f.resolve(), root / "sets" / str(n) / f.name)


def size(paths: list[Path]) -> dict:
    raw = sum(p.stat().st_size for p in paths)
    return {"bytes": raw, "gzip_bytes": sum(len(gzip.compress(p.read_bytes(), 6, mtime=0)) for p in paths)}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def measure_set(browser, url: str, set_index: int, files: list[Path], rounds: int) -> tuple[dict, list]:
    context = browser.new_context()  # a fresh context: an empty cache
    page = context.new_page()
    try:
        started = time.perf_counter()
        page.goto(url + "/index.html")
        page.wait_for_function("window.ready === true", timeout=60_000)
        open_ms = page.evaluate("set => bench.open(set)", set_index)
        opened = (time.perf_counter() - started) * 1000
        first = page.evaluate("s => bench.answer(s)", CHARACTERS["7"])
        first_answer = (time.perf_counter() - started) * 1000
        answers = [page.evaluate("s => bench.answer(s)", strokes)
                   for _ in range(rounds) for strokes in CHARACTERS.values()]  # fmt: skip
        pixels = {c: page.evaluate("s => bench.pixels(s)", s) for c, s in CHARACTERS.items()}
        tops = {c: page.evaluate("s => bench.answer(s)", s)["top"] for c, s in CHARACTERS.items()}
    finally:
        context.close()
    row = {"files": [f.name for f in files], **size(files), "open_in_page_ms": open_ms, "open_ms": opened,
           "first_answer_ms": first_answer, "first_answer_itself_ms": first["total"], "answers": len(answers)}
    for part in ("total", "preprocess", "models"):
        values = [a[part] for a in answers]
        row[f"{part}_p50_ms"], row[f"{part}_p95_ms"] = pct(values, 50), pct(values, 95)
    return row, [(c, pixels[c], tops[c]) for c in CHARACTERS]


def server_agreement(models: Path, names: list[str], drawn: list) -> dict:
    """The server's top-1 for the same canvas pixels (recognizer.preprocess + ONNX Runtime) against the page's."""
    recognizer = Recognizer(models)
    same, n = 0, 0
    for _, b64, page_top in drawn:
        layer = np.frombuffer(base64.b64decode(b64), np.uint8).reshape(CANVAS, CANVAS, 4)
        x = to_model_input(canvas_value(png_data_url(layer)).composite)
        for name, top in zip(names, page_top, strict=True):
            same += int(recognizer.predict(name, x).char == top)
            n += 1
    return {"answers": n, "same_top1": same / max(n, 1)}


def chromium_version() -> str:
    try:
        done = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True, timeout=20)
        return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="times the 10 characters are answered per model set")
    parser.add_argument("--models", type=Path, default=REPO / "exported_models")
    parser.add_argument("--page-models", type=Path, default=REPO / "exported_models" / "page")
    args = parser.parse_args(argv)
    missing = [n for n in ORT_FILES if not (ORT_DIST / n).is_file()]
    if missing:
        raise SystemExit(f"onnxruntime-web is not installed ({', '.join(missing)} missing): "
                         "run `make node_modules/.npm-installed`")
    from playwright.sync_api import sync_playwright

    sets: dict[str, tuple[Path, list[str], list[Path]]] = {}
    for label, folder in (("shipped float32", args.models), ("page variant", args.page_models)):
        if (folder / "manifest.json").is_file():
            recognizer = Recognizer(folder)
            names = list(recognizer.default_slots().values())
            sets[label] = (folder, names, [recognizer.entry(n).path for n in names])
    runtime = [ORT_DIST / n for n in ORT_FILES]
    rows = {}
    with tempfile.TemporaryDirectory(prefix="page-bench-") as tmp, sync_playwright() as playwright:
        site(Path(tmp), sets)
        server, url = serve(Path(tmp))
        browser = launch(playwright)
        try:
            for n, (label, (folder, names, files)) in enumerate(sets.items()):
                row, drawn = measure_set(browser, url, n, files, args.rounds)
                row["server_agreement"] = server_agreement(folder, names, drawn)
                rows[label] = row
                print(f"{label}: open {row['open_ms']:.0f} ms, first answer {row['first_answer_ms']:.0f} ms, "
                      f"answer p50 {row['total_p50_ms']:.1f} / p95 {row['total_p95_ms']:.1f} ms "
                      f"(preprocess p50 {row['preprocess_p50_ms']:.1f}, models p50 {row['models_p50_ms']:.1f}); "
                      f"models {row['bytes'] / 1e6:.1f} MB ({row['gzip_bytes'] / 1e6:.1f} MB gzip); "
                      f"same top-1 as the server {row['server_agreement']['same_top1']:.0%}", flush=True)
        finally:
            browser.close()
            server.shutdown()
    ort_version = json.loads((ORT_DIST.parent / "package.json").read_text())["version"]
    runtime_size = size(runtime)
    columns = ["models", "open (ms)", "first answer after navigation (ms)", "answer p50 (ms)", "answer p95 (ms)",
               "preprocessing p50 (ms)", "three models p50 (ms)", "model bytes", "model bytes, gzip",
               "same top-1 as the server"]
    table = [[label, r["open_ms"], r["first_answer_ms"], r["total_p50_ms"], r["total_p95_ms"], r["preprocess_p50_ms"],
              r["models_p50_ms"], r["bytes"], r["gzip_bytes"], f"{r['server_agreement']['same_top1']:.0%}"]
             for label, r in rows.items()]  # fmt: skip
    path = write_record(
        "page_inference", "The three slot models in the page: onnxruntime-web in headless Chromium",
        {"columns": columns, "rows": table},
        {"package": "onnxruntime-web", "version": ort_version, "files": list(ORT_FILES), "backend": "wasm, 1 thread",
         "rounds": args.rounds, "chromium": chromium_version()},
        [f"A test page (not the app) served from 127.0.0.1, a fresh browser context per model set (cold cache); the "
         f"runtime's files are {runtime_size['bytes']:,} bytes, {runtime_size['gzip_bytes']:,} gzip-compressed."],
        data={"runtime": runtime_size, "sets": rows})
    print(f"record: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
