"""Parity figures of the two preprocessing implementations, as a record: the server's (recognizer/preprocess.py)
and the page's (webapp/static/preprocess.js, in node) on the parity test's canvases.

    python benchmarks/preprocess_parity.py [--drawbench 820]     # -> assets/benchmarks/preprocess_parity.json

The same canvases as tests/test_preprocess_parity.py (which asserts the limits): drawing-benchmark renderings of
real EMNIST test images and the browser tests' characters (tests/parity_support.py). Records the refusals on each
side, the largest per-pixel difference of the 28x28 inputs, how many inputs are identical, each slot model's share
of identical top-1, and the milliseconds per canvas on each side (node: one process, JIT warm-up included).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from records import write_record  # noqa: E402

from recognizer.inference import Recognizer  # noqa: E402
from tests.parity_support import NodeRun, drawbench_canvases, server_input, stroke_canvases  # noqa: E402


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawbench", type=int, default=820, help="drawing-benchmark canvases (as the test)")
    args = parser.parse_args(argv)
    drawn, source = drawbench_canvases(args.drawbench)
    strokes = stroke_canvases()
    canvases = np.concatenate([drawn, strokes])
    started = time.perf_counter()
    server = [server_input(layer) for layer in canvases]
    server_ms = (time.perf_counter() - started) * 1000 / len(canvases)
    status, page, summary = NodeRun(canvases).result()
    ok = np.array([kind == "input" for kind, _ in server])
    same_refusals = bool(np.array_equal(ok, status == 0))
    x_server = np.stack([x for kind, x in server if kind == "input"])
    x_page = page[ok & (status == 0)] if same_refusals else page[ok]
    diff = np.abs(x_server - x_page).reshape(len(x_server), -1).max(axis=1)
    recognizer = Recognizer(REPO / "exported_models")
    top1 = {}
    for slot, name in recognizer.default_slots().items():
        a = recognizer.predict_batch(name, x_server)[0].argmax(1)
        b = recognizer.predict_batch(name, x_page)[0].argmax(1)
        top1[slot] = {"model": name, "same_top1": float((a == b).mean())}
    rows = [["canvases (drawing benchmark + stroke-drawn)", f"{len(canvases)} ({len(drawn)} + {len(strokes)})"],
            ["refused by the server / by the page", f"{int((~ok).sum())} / {summary['refused']}"],
            ["same refusals", same_refusals], ["inputs compared", len(x_server)],
            ["identical inputs", int((diff == 0).sum())], ["largest pixel difference", float(diff.max())],
            *[[f"same top-1, {slot} ({t['model']})", f"{t['same_top1']:.2%}"] for slot, t in top1.items()],
            ["ms per canvas, server (PNG decode + canvas_value + to_model_input)", round(server_ms, 2)],
            ["ms per canvas, page (preprocess.js in node)", round(summary["ms_per_canvas"], 2)]]
    path = write_record(
        "preprocess_parity", "One preprocessing in two languages: the server's Python and the page's JavaScript",
        {"columns": ["figure", "value"], "rows": rows},
        {"drawbench_canvases": args.drawbench, "test_images": source, "node": node_version()},
        ["The same canvases through recognizer/preprocess.py and webapp/static/preprocess.js (in node); "
         "tests/test_preprocess_parity.py requires the same inputs within 1e-5 and the same top-1 on 99.5%."],
        data={"slots": top1, "refused_by_page": summary["refused"]})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
