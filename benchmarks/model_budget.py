"""Each served model against issue 11's budget for the app's default slots: the ONNX file under 10 MB and one drawing
under 5 ms on one CPU thread.

    python benchmarks/model_budget.py                                   # every model of exported_models/
    python benchmarks/model_budget.py --models /tmp/lab-try/models --repeats 500

Per model: the file's size, and one preprocessed drawing through ``Recognizer.predict`` (one ONNX Runtime session
at one thread, as the app opens it: the session call, softmax and top-k), p50 and p95 over --repeats calls after a
warm-up. It is the figure ``python -m training export --lab`` measures and checks (``training.slots
.single_drawing_ms``: median against 5 ms), here on real test images of the fixture drawn large on a 400x400 canvas.
Then a whole drawing through the three default slots: the app's preprocessing of the canvas plus the three models,
for scale (the drawings arrive as the canvas sends them, a PNG data URL). Timings depend on the machine's load: the
load average is printed beside them. Writes the record assets/benchmarks/model_budget.json (``--record``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]
from app_support import canvas_image, dataset_images, sketchpad_value  # noqa: E402
from records import write_record  # noqa: E402

from recognizer.inference import Recognizer  # noqa: E402
from recognizer.preprocess import to_model_input  # noqa: E402
from training.convert import MAX_MB  # noqa: E402
from training.slots import MAX_MS, single_drawing_ms  # noqa: E402
from webapp.canvas import canvas_value, png_data_url  # noqa: E402


def drawings(n: int) -> tuple[list[str], np.ndarray]:
    """n fixture test images drawn on a canvas as the canvas sends them (PNG data URLs), and their model inputs."""
    images, _, _ = dataset_images("byclass", n)
    values = [png_data_url(sketchpad_value(canvas_image(x))["layers"][0]) for x in images]
    return values, np.stack([to_model_input(canvas_value(v).composite) for v in values])


def preprocessing_ms(values: list[str], repeats: int) -> float:
    """The app's work before the models, per drawing: the canvas's PNG decoded, then preprocessed (median ms)."""
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        to_model_input(canvas_value(values[i % len(values)]).composite)
        times.append(time.perf_counter() - started)
    return 1e3 * float(np.median(times))


def verdict(value: float, limit: float) -> str:
    return "ok" if value < limit else "OVER"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=REPO / "exported_models")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--record", default="model_budget", help="the record's name under assets/benchmarks/")
    args = parser.parse_args()
    recognizer = Recognizer(args.models, intra_op_num_threads=1)
    values, inputs = drawings(20)
    print(f"{args.models}: load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
          f"one ONNX Runtime thread per session; {args.repeats} drawings per model after a warm-up")
    print(f"{'model':30} {'slot':9} {f'size MB (< {MAX_MB:g})':16} {f'one drawing p50 / p95 ms (< {MAX_MS:g})'}")
    slots = {name: slot for slot, name in recognizer.default_slots().items()}
    p50, rows = {}, []
    load_before = os.getloadavg()
    for entry in recognizer.models:
        size = entry.path.stat().st_size / 1e6
        t = single_drawing_ms(recognizer, entry.name, inputs, args.repeats)
        p50[entry.name] = t.p50_ms
        rows.append([entry.name, slots.get(entry.name, ""), size, verdict(size, MAX_MB), t.p50_ms, t.p95_ms,
                     verdict(t.p50_ms, MAX_MS)])
        print(f"{entry.name:30} {slots.get(entry.name, ''):9} {size:6.2f} {verdict(size, MAX_MB):9} "
              f"{t.p50_ms:6.2f} / {t.p95_ms:6.2f} {verdict(t.p50_ms, MAX_MS)}")
    pre = preprocessing_ms(values, args.repeats)
    models = sum(p50.get(name, 0.0) for name in slots)
    whole = (f"a whole drawing, the {len(slots)} default slots: the canvas's PNG decoded and preprocessed {pre:.2f} ms "
             f"+ models {models:.2f} ms = {pre + models:.2f} ms (p50s)")
    print(whole)
    path = write_record(
        "model_budget", "Each served model against its budget (file size, one drawing on one CPU thread)",
        {"columns": ["model", "slot", "size MB", f"< {MAX_MB:g} MB", "one drawing p50 ms", "p95 ms",
                     f"p50 < {MAX_MS:g} ms"], "rows": rows},
        {"models": str(args.models), "repeats": args.repeats, "load_before": load_before},
        [f"One preprocessed fixture drawing through Recognizer.predict at a time, {args.repeats} calls per model "
         "after a warm-up, one ONNX Runtime thread (issue 11's budget).", whole + "."],
        {"p50": p50, "preprocessing_ms": pre}, name=args.record)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
