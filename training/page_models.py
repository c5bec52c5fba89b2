"""Smaller copies of the three slot models for the page's own inference: float16 or int8 weights, compute in float32.

    python -m training.page_models                 # -> exported_models/page/ (+ page_models.json, its record)
    python -m training.page_models --keep int8     # which variant the page loads (default: the smallest that passes)

The page downloads its models on a first visit: the shipped residual CNNs are 7 MB each in float32. Two variants
of each slot model (``Recognizer.default_slots``), both computing in float32 as the original does:

    float16   every weight stored as float16, cast back by a Cast node (training.convert.weights_to_fp16)
    int8      every weight matrix and kernel stored as int8 with one float32 scale per output channel
              (symmetric, round to nearest), restored by a DequantizeLinear node; biases stay float32

Each variant is scored as the original is when exported (``training.convert.evaluate_exported``: the whole test
part of its split through the app's ONNX Runtime path) and compared with the original on the same images (same
top-1, largest probability difference) and on drawing-benchmark canvases of the test part as the app (and the
page, to the bit) preprocesses them. A variant passes when its test-part accuracy is within ``MAX_DROP`` of the
original's. The kept variant's files and a manifest of the same form as exported_models/manifest.json (the
originals' entries with their file, sha256 and runtime accuracy replaced, and ``source_sha256``: the sha256 of the
original file each was made from, which webapp.page_files checks against the served model) go to exported_models/page/;
the shipped models and their manifest are left as they are. Every figure, both variants', goes to the JSON record.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gzip
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from recognizer.files import sha256_bytes, write_atomic, write_json
from recognizer.inference import Recognizer
from recognizer.manifest import Manifest, ModelEntry
from recognizer.preprocess import InputError, to_model_input
from training.convert import evaluate_exported, weights_to_fp16
from training.data import load_split
from training.drawbench import BenchConfig, draw_params, place, skeleton_strokes, sketchpad_strokes, stroke_ink
from training.paths import REPO_ROOT
from training.utils import environment

VARIANTS = ("float16", "int8")
MAX_DROP = 0.003  # test-part accuracy a variant may lose (0.3 points)
DEFAULT_OUT = REPO_ROOT / "exported_models" / "page"
DEFAULT_RECORD = REPO_ROOT / "exported_models" / "page" / "page_models.json"


def weights_to_int8(proto: onnx.ModelProto) -> None:
    """Store every float32 weight of two or more dimensions as int8 with a float32 scale per output channel (axis
    0), restored by DequantizeLinear; vectors (biases) stay float32."""
    nodes = []
    for init in proto.graph.initializer:
        if init.data_type != TensorProto.FLOAT or len(init.dims) < 2:
            continue
        name = init.name
        w = numpy_helper.to_array(init).astype(np.float32)
        peak = np.abs(w.reshape(len(w), -1)).max(axis=1)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.round(w / scale.reshape(-1, *([1] * (w.ndim - 1)))), -127, 127).astype(np.int8)
        init.CopyFrom(numpy_helper.from_array(q, f"{name}__int8"))
        proto.graph.initializer.append(numpy_helper.from_array(scale, f"{name}__scale"))
        nodes.append(onnx.helper.make_node("DequantizeLinear", [f"{name}__int8", f"{name}__scale"], [name], axis=0))
    rest = list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes + rest)  # the weights first keeps the graph topologically sorted


def variant_bytes(original: Path, variant: str) -> bytes:
    proto = onnx.load(str(original))
    if variant == "float16":
        weights_to_fp16(proto)
    elif variant == "int8":
        weights_to_int8(proto)
    else:
        raise ValueError(f"unknown variant {variant!r}: one of {VARIANTS}")
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()


def sizes(data: bytes) -> dict:
    """Bytes as stored and as served gzip-compressed (level 6, a web server's usual setting)."""
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=6, mtime=0))}


def drawn_inputs(images: np.ndarray, count: int, seed: int = 29) -> np.ndarray:
    """``count`` of the images redrawn as the drawing benchmark draws a canvas (training.drawbench: skeleton
    strokes, size, slant, rotation, place, brush), through the app's preprocessing; refused drawings left out.
    The page's preprocess.js gives these inputs to the bit (tests/test_preprocess_parity.py)."""
    config = BenchConfig()
    rng = np.random.default_rng(seed)
    out = []
    for index in rng.choice(len(images), size=min(count, len(images)), replace=False):
        params = draw_params(config, np.random.default_rng([seed, int(index)]))
        points, pairs = skeleton_strokes(images[index])
        if len(points):
            ink = stroke_ink(place(points, params, config.canvas), pairs, params["brush"], config.canvas,
                             config.supersample)  # fmt: skip
            with contextlib.suppress(InputError):  # refused: nothing to compare
                out.append(to_model_input(sketchpad_strokes(ink)))
    return np.stack(out)


def staged(folder: Path, entry: ModelEntry, file: str, data: bytes) -> ModelEntry:
    """``data`` written to ``folder`` as ``file`` with a one-entry manifest, as the runtime reads it."""
    write_atomic(folder / file, data)
    moved = dataclasses.replace(entry, file=file, sha256=sha256_bytes(data))
    Manifest([moved]).write(folder)
    return moved


def compare(original: Recognizer, variant: Recognizer, name: str, x: np.ndarray) -> dict:
    a = original.predict_batch(name, x)[0]
    b = variant.predict_batch(name, x)[0]
    return {"n": len(x), "same_top1": float((a.argmax(1) == b.argmax(1)).mean()),
            "max_prob_diff": float(np.abs(a - b).max())}  # fmt: skip


def measure(models: Path, out: Path, canvases: int, progress: bool) -> dict:
    """Every variant of every slot model: sizes, accuracy, agreement with the original; files staged in ``out``."""
    shipped = Recognizer(models)
    slots = shipped.default_slots()
    splits = {slot: load_split(shipped.entry(name).split, shipped.entry(name).protocol or "auto")
              for slot, name in slots.items()}  # fmt: skip
    x_drawn = drawn_inputs(next(iter(splits.values())).parts["test"][0], canvases)
    figures: dict = {"slots": {}, "drawn_inputs": len(x_drawn)}
    for slot, name in slots.items():
        entry, data = shipped.entry(name), splits[slot]
        x_test = data.parts["test"][0].astype(np.float32) / 255.0
        original = evaluate_exported(models, name, data, progress=progress)
        row = {"model": name, "original": {**sizes(entry.path.read_bytes()), "test_accuracy": original["accuracy"],
                                           "n_test": original["n"]}, "variants": {}}  # fmt: skip
        for variant in VARIANTS:
            started = time.perf_counter()
            blob = variant_bytes(entry.path, variant)
            folder = out / variant
            staged(folder, entry, f"{name}.{variant}.onnx", blob)
            scored = evaluate_exported(folder, name, data, progress=progress)
            small = Recognizer(folder)
            row["variants"][variant] = {
                **sizes(blob), "test_accuracy": scored["accuracy"],
                "drop_points": 100 * (original["accuracy"] - scored["accuracy"]),
                "passes": original["accuracy"] - scored["accuracy"] <= MAX_DROP,
                "test_part": compare(shipped, small, name, x_test),
                "drawn_canvases": compare(shipped, small, name, x_drawn),
                "seconds": time.perf_counter() - started,
            }  # fmt: skip
            print(f"{slot:9s} {variant:8s} {len(blob) / 1e6:5.2f} MB  test {scored['accuracy']:.4%} "
                  f"(original {original['accuracy']:.4%})", flush=True)
        figures["slots"][slot] = row
    return figures


def keep(figures: dict, choice: str | None, staging: Path, out: Path, models: Path) -> str:
    """Copy the chosen variant's files and a manifest of their entries to ``out``; returns the variant."""
    passing = [v for v in VARIANTS if all(r["variants"][v]["passes"] for r in figures["slots"].values())]
    if choice is None:
        if not passing:
            raise SystemExit("no variant stays within the accuracy limit for every slot: nothing kept")
        choice = min(passing, key=lambda v: sum(r["variants"][v]["gzip_bytes"] for r in figures["slots"].values()))
    elif choice not in passing:
        raise SystemExit(f"{choice} loses more than {MAX_DROP:.1%} on some slot: not kept")
    shipped = Recognizer(models)
    entries = []
    for old in out.glob("*.onnx"):
        old.unlink()
    for row in figures["slots"].values():
        original = shipped.entry(row["model"])
        file = f"{row['model']}.{choice}.onnx"
        blob = (staging / choice / file).read_bytes()
        write_atomic(out / file, blob)
        moved = dataclasses.replace(original, file=file, sha256=sha256_bytes(blob))
        moved.extra = {**original.extra, "source_sha256": original.sha256}  # the served file it is a copy of
        if original.run_record:  # the training run's record stays beside the shipped models
            moved.run_record = f"../{original.run_record}"
        accuracy = row["variants"][choice]["test_accuracy"]
        moved.metrics = dataclasses.replace(original.metrics, runtime_test_accuracy=accuracy)
        entries.append(moved)
    Manifest(entries).write(out)
    return choice


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", type=Path, default=REPO_ROOT / "exported_models")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the kept variant goes")
    parser.add_argument("--record", type=Path, default=DEFAULT_RECORD)
    parser.add_argument("--keep", choices=VARIANTS, default=None, help="default: the smallest that passes")
    parser.add_argument("--canvases", type=int, default=1000, help="drawing-benchmark canvases to compare on")
    parser.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="page-models-") as tmp:
        figures = measure(args.models, Path(tmp), args.canvases, progress=not args.quiet)
        chosen = keep(figures, args.keep, Path(tmp), args.out, args.models)
    record = {"what": "page model variants (training/page_models.py)", "kept": chosen, "max_drop": MAX_DROP,
              **figures, "seconds": time.perf_counter() - started,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "environment": environment()}
    write_json(args.record, record)
    print(f"kept {chosen} in {args.out}; record {args.record}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
