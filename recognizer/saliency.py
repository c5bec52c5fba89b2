"""Where the model looked: occlusion saliency without gradients, and a heat-map overlay.

Occlusion needs only forward passes, so it works on any exported ONNX model; all occluded
copies go through ONNX Runtime as one batch.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .inference import Recognizer

# A perceptually ordered dark-to-bright table (close to matplotlib's "inferno"), interpolated.
_COLORMAP_STOPS = np.array(
    [
        [0, 0, 4],
        [40, 11, 84],
        [101, 21, 110],
        [159, 42, 99],
        [212, 72, 66],
        [245, 125, 21],
        [250, 193, 39],
        [252, 255, 164],
    ],
    dtype=np.float32,
)


def occlusion_map(
    recognizer: Recognizer,
    name: str,
    x28: np.ndarray,
    target: int | None = None,
    patch: int = 4,
    stride: int = 2,
) -> np.ndarray:
    """(28, 28) map in [0, 1]: how much blanking each area lowers the target class's probability.

    ``target`` is a class index (default: the model's top class). Each pixel gets the mean drop
    over the patches covering it; the map is scaled so its maximum is 1 (all zeros if nothing
    matters).
    """
    x = np.asarray(x28, dtype=np.float32).reshape(28, 28)
    starts = range(0, 28 - patch + 1, stride)
    boxes = [(r, c) for r in starts for c in starts]
    batch = np.repeat(x[None], len(boxes) + 1, axis=0)
    for i, (r, c) in enumerate(boxes, start=1):
        batch[i, r : r + patch, c : c + patch] = 0.0  # blank paper, as in the training images
    probs, _ = recognizer.predict_batch(name, batch, chunk=len(batch))
    if target is None:
        target = int(np.argmax(probs[0]))
    drops = np.clip(probs[0, target] - probs[1:, target], 0.0, None)
    total = np.zeros((28, 28), np.float64)
    count = np.zeros((28, 28), np.float64)
    for drop, (r, c) in zip(drops, boxes, strict=True):
        total[r : r + patch, c : c + patch] += drop
        count[r : r + patch, c : c + patch] += 1
    heat = total / np.maximum(count, 1)
    peak = heat.max()
    return (heat / peak if peak > 0 else heat).astype(np.float32)


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB through the table above."""
    v = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0) * (len(_COLORMAP_STOPS) - 1)
    low = np.floor(v).astype(int)
    high = np.minimum(low + 1, len(_COLORMAP_STOPS) - 1)
    frac = (v - low)[..., None]
    rgb = _COLORMAP_STOPS[low] * (1 - frac) + _COLORMAP_STOPS[high] * frac
    return np.round(rgb).astype(np.uint8)


def overlay(x28: np.ndarray, heat: np.ndarray, size: int = 224, alpha: float = 0.6) -> np.ndarray:
    """(size, size, 3) uint8 picture: the model's input in grey with the heat map blended on top.

    The input is scaled up with nearest neighbour (pixels stay visible, as the model sees them);
    the heat map bilinearly. Cold areas stay grey, hot areas take the colormap's colour.
    """
    x = np.clip(np.asarray(x28, dtype=np.float32).reshape(28, 28), 0, 1)
    h = np.clip(np.asarray(heat, dtype=np.float32).reshape(28, 28), 0, 1)
    base = np.asarray(Image.fromarray(np.round(x * 255).astype(np.uint8)).resize((size, size), Image.NEAREST))
    big = np.asarray(Image.fromarray(h, "F").resize((size, size), Image.BILINEAR)).clip(0, 1)
    weight = (alpha * big)[..., None]
    grey = np.repeat(base[..., None].astype(np.float32), 3, axis=-1)
    out = grey * (1 - weight) + colormap(big).astype(np.float32) * weight
    return np.round(out).clip(0, 255).astype(np.uint8)
