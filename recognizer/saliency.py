"""Where the model looked: occlusion saliency without gradients, and a heat-map overlay.

Occlusion needs only forward passes, so it works on any exported ONNX model; all occluded
copies go through ONNX Runtime as one batch. Blanking sets pixels to 0, the paper of the training
images, so blanking paper changes nothing: only ink can matter, and only ink is occluded.

``segment_map`` (what the app draws) blanks the character one stroke segment at a time: k-means
over the ink pixels' positions cuts it into 16 compact pieces that follow the strokes, so 17 forward
passes give a map that lies on the strokes themselves. ``occlusion_map`` slides a square patch over
the image instead (169 passes with the default 4x4 patch at stride 2, fewer where there is no ink).
Both point at the strokes that matter about as well (tests/test_saliency.py checks it on real EMNIST images);
the segments cost far fewer passes (benchmarks/app_latency.py times them).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .inference import Recognizer

SEGMENTS = 16  # stroke pieces per character: 17 forward passes per map
KMEANS_ROUNDS = 6  # Lloyd iterations; on at most 784 points the segments settle in a few

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
    everywhere = [(r, c) for r in starts for c in starts]
    # A patch of bare paper blanks nothing (its drop is exactly 0): skip its forward pass, keep its count.
    boxes = [(r, c) for r, c in everywhere if x[r : r + patch, c : c + patch].any()]
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
    for r, c in everywhere:
        count[r : r + patch, c : c + patch] += 1
    return _scaled(total / np.maximum(count, 1))


def stroke_segments(x28: np.ndarray, count: int = SEGMENTS) -> np.ndarray:
    """(28, 28) int labels: each inked pixel's segment (0..n-1), -1 on bare paper.

    Ink-weighted k-means on pixel positions, seeded deterministically by farthest-point sampling from
    the ink's centre, so the same drawing always gives the same segments (and every slot gets the same).
    """
    x = np.asarray(x28, dtype=np.float32).reshape(28, 28)
    labels = np.full((28, 28), -1, np.int64)
    ys, xs = np.nonzero(x > 0)
    if ys.size == 0:
        return labels
    points = np.stack([ys, xs], axis=1).astype(np.float32)
    weight = x[ys, xs]
    k = min(count, len(points))
    centres = _farthest_points(points, (points * weight[:, None]).sum(0) / weight.sum(), k)
    for _ in range(KMEANS_ROUNDS):
        nearest = ((points[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        mass = np.bincount(nearest, weight, minlength=k)
        for axis in (0, 1):
            sums = np.bincount(nearest, weight * points[:, axis], minlength=k)
            centres[:, axis] = np.where(mass > 0, sums / np.maximum(mass, 1e-12), centres[:, axis])
    nearest = ((points[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    _, labels[ys, xs] = np.unique(nearest, return_inverse=True)  # numbered 0..n-1 with none empty
    return labels


def _farthest_points(points: np.ndarray, start: np.ndarray, k: int) -> np.ndarray:
    """k of ``points``, each the farthest from those already chosen (the first: farthest from ``start``)."""
    chosen = np.empty((k, 2), np.float32)
    distance = np.full(len(points), np.inf, np.float32)
    last = start
    for i in range(k):
        distance = np.minimum(distance, ((points - last) ** 2).sum(1))
        last = chosen[i] = points[int(np.argmax(distance))]
    return chosen


def segment_map(
    recognizer: Recognizer,
    name: str,
    x28: np.ndarray,
    target: int | None = None,
    segments: np.ndarray | None = None,
) -> np.ndarray:
    """(28, 28) map in [0, 1]: how much blanking each stroke segment lowers the target class's probability.

    ``segments`` are ``stroke_segments(x28)`` (computed here if not given: pass them to share them
    between models). ``target`` defaults to the model's top class. Each inked pixel gets its segment's
    drop; paper stays 0. Scaled so the maximum is 1 (all zeros if nothing matters).
    """
    x = np.asarray(x28, dtype=np.float32).reshape(28, 28)
    labels = stroke_segments(x) if segments is None else np.asarray(segments).reshape(28, 28)
    n = int(labels.max()) + 1
    batch = np.repeat(x[None], n + 1, axis=0)
    for i in range(n):
        batch[i + 1][labels == i] = 0.0  # blank paper, as in the training images
    probs, _ = recognizer.predict_batch(name, batch, chunk=len(batch))
    if target is None:
        target = int(np.argmax(probs[0]))
    drops = np.clip(probs[0, target] - probs[1:, target], 0.0, None)
    return _scaled(np.append(drops, 0.0)[labels])  # label -1 (paper) picks the appended 0


def _scaled(heat: np.ndarray) -> np.ndarray:
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
    the heat map bilinearly. Cold areas stay grey, hot areas take the colormap's colour. All the
    per-pixel work is Pillow's (a palette lookup and a masked blend): a few hundred microseconds.
    """
    x = np.clip(np.asarray(x28, dtype=np.float32).reshape(28, 28), 0, 1)
    h = np.clip(np.asarray(heat, dtype=np.float32).reshape(28, 28), 0, 1)
    base = Image.fromarray(np.round(x * 255).astype(np.uint8)).resize((size, size), Image.NEAREST)
    big = np.asarray(Image.fromarray(h * 255, "F").resize((size, size), Image.BILINEAR))
    levels = np.round(big.clip(0, 255)).astype(np.uint8)  # the heat in 256 steps
    colours = Image.fromarray(levels, "L").convert("P")
    colours.putpalette(_PALETTE)
    weight = Image.fromarray(levels, "L").point([round(alpha * v) for v in range(256)])  # alpha times the heat
    out = Image.composite(colours.convert("RGB"), base.convert("RGB"), weight)
    return np.asarray(out)


_PALETTE = colormap(np.linspace(0.0, 1.0, 256)).ravel().tolist()  # heat level -> RGB, for Pillow's "P" mode
