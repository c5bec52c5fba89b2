"""Canvases as the page's canvas holds them, and webapp/static/preprocess.js run over them in node.

Two sources of canvases, both as the RGBA pixels a 400x400 canvas holds (black strokes whose alpha is the ink,
transparent paper): the drawing benchmark's renderings (``training.drawbench``'s skeleton strokes, size, slant,
rotation, aspect, place and brush) of real EMNIST test images, and the browser tests' characters
(``tests.browser_support.CHARACTERS``) drawn with a round brush at varied sizes, places and pen widths.
The server's side of a canvas is ``server_input``: the PNG the canvas sends, ``webapp.canvas.canvas_value``,
``recognizer.preprocess.to_model_input``; the page's side is ``node_inputs``: one node process over them all.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from recognizer.preprocess import InputError, NothingDrawn, from_idx, to_model_input
from tests.browser_support import CHARACTERS
from webapp.canvas import CANVAS, PREFIX, canvas_value

REPO = Path(__file__).resolve().parents[1]
NODE_DRIVER = REPO / "tests" / "preprocess_node.mjs"
SHARED_TEST = REPO.parent / "shared" / "data" / "emnist" / "emnist-byclass-test-images-idx3-ubyte.gz"
FIXTURE_TEST = REPO / "tests" / "fixtures" / "emnist" / "partial" / "emnist-byclass-test-images-idx3-ubyte.fixture.gz"
STATUS = {0: "input", 1: "NothingDrawn", 2: "BadImage", 3: "error"}


def test_images(limit: int) -> tuple[np.ndarray, str]:
    """Up to ``limit`` upright EMNIST byclass test images (the real files when present, else the fixture)."""
    path = SHARED_TEST if SHARED_TEST.exists() else FIXTURE_TEST
    with gzip.open(path, "rb") as f:
        _, n, rows, cols = struct.unpack(">IIII", f.read(16))
        take = min(n, limit)
        raw = np.frombuffer(f.read(take * rows * cols), np.uint8).reshape(take, rows, cols)
    return (from_idx(raw) * 255).round().astype(np.uint8), str(path.relative_to(REPO.parent))


def layer_of(ink: np.ndarray) -> np.ndarray:
    """Ink coverage in [0, 1] -> the canvas's RGBA: black, alpha = the ink (what a 2D canvas holds)."""
    layer = np.zeros((*ink.shape, 4), np.uint8)
    layer[..., 3] = np.round(255 * np.clip(ink, 0, 1)).astype(np.uint8)
    return layer


def drawbench_canvases(count: int, seed: int = 29) -> tuple[np.ndarray, str]:
    """``count`` drawing-benchmark canvas renderings of test images (seeded), as (N, 400, 400, 4) uint8."""
    from training.drawbench import BenchConfig, draw_params, place, skeleton_strokes, stroke_ink

    images, source = test_images(20_000)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(images), size=count, replace=len(images) < count)  # fewer images: redrawn differently
    config = BenchConfig()
    out = np.zeros((len(chosen), CANVAS, CANVAS, 4), np.uint8)
    for i, index in enumerate(chosen):
        draw = np.random.default_rng([seed, int(index), i])
        params = draw_params(config, draw)
        points, pairs = skeleton_strokes(images[index])
        if len(points):
            ink = stroke_ink(place(points, params, CANVAS), pairs, params["brush"], CANVAS, config.supersample)
            out[i] = layer_of(ink)
    return out, source


def stroke_canvases(per_character: int = 20, seed: int = 7) -> np.ndarray:
    """The browser tests' characters drawn with a round brush: sizes, places, pen widths (fine pens included,
    which the preprocessing thickens), a few huge ones that run over the canvas's edge, and edge cases the
    preprocessing refuses (blank, a dot, a filled canvas)."""
    from training.drawbench import stroke_ink

    rng = np.random.default_rng(seed)
    canvases = []
    for strokes in CHARACTERS.values():
        for k in range(per_character):
            side = CANVAS * (rng.uniform(1.0, 1.4) if k == 0 else rng.uniform(0.15, 0.8))
            brush = float(rng.choice([2.0, 4.0, 8.0, 24.0, 40.0])) if k else 30.0
            corner = rng.uniform(-0.1 * side if k == 0 else 4 + brush, max(CANVAS - side - brush, 5 + brush), 2)
            points, pairs = [], []
            for stroke in strokes:
                p = np.asarray(stroke, float) + rng.normal(0, 0.01, (len(stroke), 2))
                steps = [p[j] + (p[j + 1] - p[j]) * t for j in range(len(p) - 1) for t in np.linspace(0, 1, 8)]
                start = len(points)
                points.extend(np.asarray(steps) * side + corner)
                pairs.extend((j, j + 1) for j in range(start, len(points) - 1))
            ink = stroke_ink(np.asarray(points), np.asarray(pairs, np.int64), brush, CANVAS, 2)
            canvases.append(layer_of(ink))
    washed = []  # a faint wash over most of the canvas, darker inside than at the border: the noise floor's path
    for layer in canvases[:: max(1, len(canvases) // 4)][:4]:
        wash = rng.integers(4, 17, (CANVAS, CANVAS), dtype=np.uint8)
        wash[:8], wash[-8:], wash[:, :8], wash[:, -8:] = (rng.integers(0, 13, w.shape, dtype=np.uint8)
                                                          for w in (wash[:8], wash[-8:], wash[:, :8], wash[:, -8:]))
        out = layer.copy()
        out[..., 3] = np.maximum(out[..., 3], wash)
        washed.append(out)
    blank = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    dot = blank.copy()
    dot[200:203, 200:203, 3] = 255
    filled = blank.copy()
    filled[..., 3] = 255
    return np.stack([*canvases, *washed, blank, dot, filled])


def data_url(layer: np.ndarray) -> str:
    """The canvas's PNG data URL (``webapp.canvas.png_data_url``'s form, stored rather than deflated: the same
    pixels, encoded in a fraction of the time)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(layer, np.uint8), "RGBA").save(buffer, format="PNG", compress_level=0)
    return PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")


def server_input(layer: np.ndarray) -> tuple[str, np.ndarray | None]:
    """What the server computes from this canvas: ('input', x28) or (the refusal's name and detail, None)."""
    try:
        return "input", to_model_input(canvas_value(data_url(layer)).composite)
    except NothingDrawn as err:
        return f"NothingDrawn: {err.detail}", None
    except InputError as err:
        return f"BadImage: {err}", None


class NodeRun:
    """webapp/static/preprocess.js over the canvases in one node process, started at once (the caller can work
    meanwhile); ``result()``: statuses (N,), inputs (N, 28, 28) and the driver's summary (refusals by detail,
    milliseconds per canvas)."""

    def __init__(self, canvases: np.ndarray, node: str | None = None) -> None:
        node = node or shutil.which("node")
        if node is None:
            raise RuntimeError("node is not on PATH (node 20 is part of the set-up)")
        self.n, height, width, _ = canvases.shape
        self.tmp = tempfile.TemporaryDirectory(prefix="parity-")
        src, self.dst = Path(self.tmp.name) / "canvases.bin", Path(self.tmp.name) / "inputs.bin"
        with open(src, "wb") as f:
            f.write(b"CNV1" + struct.pack("<III", self.n, width, height))
            f.write(np.ascontiguousarray(canvases, np.uint8).tobytes())
        self.process = subprocess.Popen([node, str(NODE_DRIVER), str(src), str(self.dst)], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)  # fmt: skip

    def result(self, timeout: float = 600) -> tuple[np.ndarray, np.ndarray, dict]:
        try:
            out, err = self.process.communicate(timeout=timeout)
            if self.process.returncode != 0:
                raise RuntimeError(f"node preprocess failed ({self.process.returncode}): {err.strip()[-2000:]}")
            raw = np.fromfile(self.dst, np.uint8).reshape(self.n, 4 + 28 * 28 * 4)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.tmp.cleanup()
        status = raw[:, :4].copy().view("<i4")[:, 0]
        inputs = raw[:, 4:].copy().view("<f4").reshape(self.n, 28, 28)
        return status, inputs, json.loads(out.strip().splitlines()[-1])


def node_inputs(canvases: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """``NodeRun(canvases).result()``."""
    return NodeRun(canvases).result()
