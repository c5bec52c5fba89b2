"""Turn a drawing, photo or dataset image into the model's input, the way NIST made EMNIST.

NIST's conversion (Cohen et al., 2017): Gaussian blur (sigma 1 at 128x128), crop to the ink's
bounding box, centre in a square keeping the aspect ratio, add a small border, bicubic down to
28x28, scale so the brightest pixel is full ink. ``to_model_input`` redoes that for anything a
person can hand the app, so a drawing reaches the model looking like the training data: the input read as grey
pixels (recognizer/inputs.py), the ink found in them (recognizer/ink.py), then framed here.

The framing constants are calibrated on EMNIST itself: in the byclass test set the long side of
the ink's bounding box at 12% of full ink is 24 of 28 pixels in most images, and strokes are
about 2.3 pixels wide (5th percentile 1.5).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from .idx import upright
from .ink import FILLED, _Ink, _ink_levels, _mask_box
from .inputs import BadImage, InputError, NothingDrawn, sketchpad_value

__all__ = ["FILLED", "BadImage", "InputError", "NothingDrawn", "frame", "from_idx", "gaussian_blur", "sketchpad_value",
           "stroke_width", "to_model_input"]  # the input forms' errors and helpers are part of this interface

SIZE = 28
WORK = 128  # NIST's working resolution: the blur's sigma is given at this scale
WORK_INNER = 100  # long side of the half-ink box in the working frame (room for blur and reframing)
BLUR_SIGMA = 1.0
FRAME_LEVEL = 0.12  # ink level whose bounding box frames the character, as NIST's blurred crop did
FRAME_EXTENT = 24.0 / SIZE  # that box's long side as a fraction of the output (EMNIST median)
MIN_STROKE = 1.2  # thinner strokes (in output pixels) are thickened, as with a fine pen on a big canvas
TARGET_STROKE = 1.8


# ---------------------------------------------------------------- public API


def to_model_input(image: Any) -> np.ndarray:
    """A (28, 28) float32 image in [0, 1], upright, bright ink on black, framed like EMNIST.

    Accepts a Gradio Sketchpad/ImageEditor value dict, a numpy array (HxW, HxWx1/2/3/4), a PIL
    image, a file path or encoded image bytes. Raises ``NothingDrawn`` for blank or filled input
    and ``BadImage`` for anything that is not an image.
    """
    ink = _ink_levels(image)
    return frame(ink, _mask_box(ink.mask()))


def from_idx(images: np.ndarray) -> np.ndarray:
    """Dataset images as stored in IDX files (transposed uint8) -> float32 upright in [0, 1].

    Takes one (28, 28) image or a batch (N, 28, 28).
    """
    a = np.asarray(images)
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or a.shape[-2:] != (SIZE, SIZE):
        raise BadImage(f"expected uint8 (28, 28) or (N, 28, 28) IDX images, got {a.dtype} {a.shape}")
    return upright(a).astype(np.float32) / 255.0


def frame(ink: np.ndarray | _Ink, box: tuple[int, int, int, int]) -> np.ndarray:
    """Crop, blur, reframe and downscale the ink inside ``box`` to the EMNIST layout."""
    work = _to_working_frame(ink, box)
    work = _thicken(work)
    work = gaussian_blur(work, BLUR_SIGMA)
    out = _reframe(work)
    peak = float(out.max())
    if peak <= 0:
        raise NothingDrawn("no ink found")
    return (out / peak).astype(np.float32)


def gaussian_blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with zero padding (Pillow's blur does not take float images).

    Shifted slices summed in place: no index arrays and no temporaries the size of the image.
    """
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    h, w = a.shape
    padded = np.zeros((h + 2 * radius, w), np.float32)
    padded[radius : radius + h] = a
    rows = np.zeros((h, w + 2 * radius), np.float32)  # the vertical pass, padded for the horizontal one
    middle = rows[:, radius : radius + w]
    for i, weight in enumerate(kernel):
        middle += weight * padded[i : i + h]
    out = np.zeros((h, w), np.float32)
    for i, weight in enumerate(kernel):
        out += weight * rows[:, i : i + w]
    return out


# ---------------------------------------------------------------- framing


def _to_working_frame(ink: np.ndarray | _Ink, box: tuple[int, int, int, int]) -> np.ndarray:
    """The ink around ``box`` as a WORK x WORK image whose half-ink box is WORK_INNER long."""
    top, left, bottom, right = box
    longest = max(bottom - top, right - left)
    # Keep only the ink in the box (plus its anti-aliased rim): specks outside it are noise.
    rim = int(np.ceil(max(2.0, 0.03 * longest)))
    y0, x0 = max(0, top - rim), max(0, left - rim)
    rows, cols = slice(y0, bottom + rim), slice(x0, right + rim)
    kept = ink.region(rows, cols) if isinstance(ink, _Ink) else ink[rows, cols]
    centre = ((top + bottom) / 2 - y0, (left + right) / 2 - x0)
    work = _resample_square(kept, centre, longest * WORK / WORK_INNER, WORK)
    peak = float(work.max())
    if peak <= 0:
        raise NothingDrawn("no ink found")
    return work / peak  # strokes much finer than a working pixel come back to full ink


def _resample_square(a: np.ndarray, centre: tuple[float, float], side: float, size: int) -> np.ndarray:
    """The square of ``side`` pixels centred on ``centre`` (y, x) of ``a``, zero outside it, at size x size.

    Bicubic; Pillow widens the kernel when shrinking, so this also antialiases.
    """
    cy, cx = centre
    y0, x0 = int(np.floor(cy - side / 2)) - 2, int(np.floor(cx - side / 2)) - 2
    y1, x1 = int(np.ceil(cy + side / 2)) + 2, int(np.ceil(cx + side / 2)) + 2
    canvas = np.zeros((y1 - y0, x1 - x0), np.float32)
    sy, sx = slice(max(0, y0), min(a.shape[0], y1)), slice(max(0, x0), min(a.shape[1], x1))
    canvas[sy.start - y0 : sy.stop - y0, sx.start - x0 : sx.stop - x0] = a[sy, sx]
    region = (cx - side / 2 - x0, cy - side / 2 - y0, cx + side / 2 - x0, cy + side / 2 - y0)
    out = np.asarray(Image.fromarray(canvas, "F").resize((size, size), Image.Resampling.BICUBIC, box=region))
    return np.clip(out, 0.0, None)


def stroke_width(ink: np.ndarray, level: float = 0.5) -> float:
    """Mean stroke width in pixels: twice the inked area over its outline length."""
    mask = ink >= level
    edges = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
    edges += np.count_nonzero(mask[[0, -1]]) + np.count_nonzero(mask[:, [0, -1]])
    return 2.0 * np.count_nonzero(mask) / max(edges, 1)


def _thicken(work: np.ndarray) -> np.ndarray:
    """Widen strokes drawn with a pen much finer than EMNIST's (a round brush, via shifted maxima)."""
    to_output = SIZE * FRAME_EXTENT / WORK_INNER  # output pixels per working pixel, roughly
    width = stroke_width(work) * to_output
    if width >= MIN_STROKE:
        return work
    radius = (TARGET_STROKE - width) / to_output / 2
    r = int(np.ceil(radius))
    padded = np.pad(work, r)
    out = work.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx <= radius * radius:
                np.maximum(out, padded[r + dy : r + dy + WORK, r + dx : r + dx + WORK], out=out)
    return out


def _reframe(work: np.ndarray) -> np.ndarray:
    """NIST's crop of the blurred image: centre its faint-ink box in a square, then bicubic to 28."""
    mask = work >= FRAME_LEVEL * float(work.max())
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    side = max(bottom - top, right - left) / FRAME_EXTENT
    return _resample_square(work, ((top + bottom) / 2, (left + right) / 2), side, SIZE)
