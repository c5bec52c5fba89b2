"""Turn a drawing, photo or dataset image into the model's input, the way NIST made EMNIST.

NIST's conversion (Cohen et al., 2017): Gaussian blur (sigma 1 at 128x128), crop to the ink's
bounding box, centre in a square keeping the aspect ratio, add a small border, bicubic down to
28x28, scale so the brightest pixel is full ink. ``to_model_input`` redoes that for anything a
person can hand the app, so a drawing reaches the model looking like the training data.

The framing constants are calibrated on EMNIST itself: in the byclass test set the long side of
the ink's bounding box at 12% of full ink is 24 of 28 pixels in most images, and strokes are
about 2.3 pixels wide (5th percentile 1.5).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from .idx import upright

SIZE = 28
WORK = 128  # NIST's working resolution: the blur's sigma is given at this scale
WORK_INNER = 100  # long side of the half-ink box in the working frame (room for blur and reframing)
BLUR_SIGMA = 1.0
FRAME_LEVEL = 0.12  # ink level whose bounding box frames the character, as NIST's blurred crop did
FRAME_EXTENT = 24.0 / SIZE  # that box's long side as a fraction of the output (EMNIST median)
MIN_STROKE = 1.2  # thinner strokes (in output pixels) are thickened, as with a fine pen on a big canvas
TARGET_STROKE = 1.8
MAX_SIDE = 1024  # larger inputs are area-downscaled first: plenty for a 28x28 result
MAX_PIXELS = 50_000_000  # larger inputs are refused outright
MIN_CONTRAST = 0.08  # ink must differ from the paper by this much (0..1 grey scale)
MIN_EXTENT = 0.015  # ink whose box is smaller than this fraction of the image is noise
FILLED = 0.6  # ink covering more of the image than this is a filled canvas, not a character


class InputError(ValueError):
    """Something the app should show to the person rather than crash on."""


class NothingDrawn(InputError):
    """Blank, nearly blank or completely filled input: there is no character to read."""

    message = "Nothing drawn yet: draw a character"

    def __init__(self, detail: str = "") -> None:
        self.detail = detail  # why, for logs; ``message`` is what a person needs to read
        super().__init__(f"{self.message} ({detail})" if detail else self.message)


class BadImage(InputError):
    """The input is not an image this module can read."""


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


# ---------------------------------------------------------------- reading inputs


def _to_grey(image: Any) -> np.ndarray:
    """Any accepted input -> HxW grey (transparent parts made into paper).

    Float32 in [0, 1], except an opaque 8-bit array (every canvas drawing) which stays uint8 in 0..255:
    a quarter of the bytes to scan for the paper and the ink's extremes, and no float copy of 4 channels.
    """
    if image is None:
        raise NothingDrawn()
    if isinstance(image, Mapping):
        return _to_grey(_from_editor_value(image))
    if isinstance(image, (str, os.PathLike, bytes, bytearray)):
        image = _open_image(image)
    if isinstance(image, Image.Image):
        return _pil_grey8(image) if _pil_opaque8(image) else _channels_to_grey(_pil_to_channels(image))
    if isinstance(image, np.ndarray):
        return _grey8(image) if _opaque8(image) else _channels_to_grey(_array_to_channels(image))
    raise BadImage(
        f"expected an image (numpy array, PIL image, path or Sketchpad value), got {type(image).__name__}"
    )


def sketchpad_value(rgb: np.ndarray) -> dict:
    """What ``gr.Sketchpad(type="numpy")`` hands a callback for an RGB picture of dark strokes on white (uint8):
    the opaque composite, and the ink in the one layer's alpha (the drawing benchmark's canvases, the tests)."""
    alpha = (255 - rgb.min(axis=-1)).astype(np.uint8)
    layer = np.zeros((*rgb.shape[:2], 4), np.uint8)
    layer[..., 3] = alpha
    composite = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    return {"background": np.full_like(composite, 255), "layers": [layer], "composite": composite}


def _from_editor_value(value: Mapping) -> Any:
    """The picture inside a Gradio Sketchpad/ImageEditor value ({background, layers, composite})."""
    if "path" in value and "composite" not in value:  # Gradio FileData-like dict
        return value["path"]
    if not {"composite", "layers", "background"} & set(value):
        raise BadImage(f"a dict input must be a Sketchpad value with 'composite'; got keys {sorted(value)}")
    if value.get("composite") is not None:
        return value["composite"]
    layers = [layer for layer in value.get("layers") or [] if layer is not None]
    if not layers:
        raise NothingDrawn()
    # No composite yet: the strokes are wherever any layer is opaque.
    inks = [_layer_ink(_array_to_channels(np.asarray(_pil_or_array(layer)))) for layer in layers]
    if len({a.shape for a in inks}) != 1:
        raise BadImage("Sketchpad layers differ in size")
    return np.round(255 - np.max(inks, axis=0) * 255).astype(np.uint8)


def _layer_ink(channels: np.ndarray) -> np.ndarray:
    """A layer's alpha marks its strokes; a layer without alpha is read as dark ink on white."""
    if channels.shape[-1] in (2, 4):
        return channels[..., -1]
    return 1.0 - _channels_to_grey(channels)


def _pil_or_array(layer: Any) -> Any:
    if isinstance(layer, (str, os.PathLike, bytes, bytearray)):
        layer = _open_image(layer)
    if isinstance(layer, Image.Image):
        return layer.convert("RGBA")
    if isinstance(layer, np.ndarray):
        return layer
    raise BadImage(f"unreadable Sketchpad layer of type {type(layer).__name__}")


def _open_image(source: str | os.PathLike | bytes | bytearray) -> Image.Image:
    try:
        handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
        image = Image.open(handle)
        _check_pixels(image.width, image.height)
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # phone photos are stored sideways with an EXIF tag
    except InputError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise BadImage(f"cannot read image {_describe(source)}: {err}") from err
    return image


def _describe(source: Any) -> str:
    return f"{len(source)} bytes" if isinstance(source, (bytes, bytearray)) else repr(os.fspath(source))


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise BadImage(
            f"image too large: {width}x{height} is {width * height / 1e6:.1f} megapixels "
            f"(limit {MAX_PIXELS / 1e6:.0f})"
        )
    if width < 1 or height < 1:
        raise BadImage(f"empty image ({width}x{height})")


def _pil_to_channels(image: Image.Image) -> np.ndarray:
    _check_pixels(image.width, image.height)
    if max(image.size) > MAX_SIDE:
        scale = MAX_SIDE / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BOX)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(image, dtype=np.float32)
        span = float(a.max() - a.min())
        return ((a - a.min()) / span if span > 0 else np.zeros_like(a))[..., None]
    converted = image.convert("RGBA" if has_alpha else "RGB")
    return np.asarray(converted, dtype=np.float32) / 255.0


def _array_to_channels(a: np.ndarray) -> np.ndarray:
    """Validate a numpy image and return float32 HxWxC in [0, 1], at most MAX_SIDE on a side."""
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (2, 3, 4)):
        raise BadImage(f"expected an HxW, HxWx3 or HxWx4 image array, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise BadImage(f"empty image array of shape {a.shape}")
    _check_pixels(a.shape[1], a.shape[0])
    if a.dtype == np.uint8 and max(a.shape[:2]) > MAX_SIDE:  # shrink while still 1 byte a value
        return _pil_to_channels(Image.fromarray(np.ascontiguousarray(a)))  # mode L, LA, RGB or RGBA
    a = _scale_values(a)
    if a.ndim == 2:
        a = a[..., None]
    if max(a.shape[:2]) > MAX_SIDE:
        a = _downscale(a)
    return a


def _opaque8(a: np.ndarray) -> bool:
    """An 8-bit L, LA, RGB or RGBA array of at most MAX_SIDE a side whose alpha ``_channels_to_grey`` would ignore."""
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or not 0 < min(a.shape[:2]) <= max(a.shape[:2]) <= MAX_SIDE:
        return False
    if a.ndim == 2 or a.shape[-1] in (1, 3):
        return True
    if a.shape[-1] in (2, 4) and a.flags.c_contiguous:  # alpha is each pixel's high byte: one min over words
        return int(a.view(f"<u{a.shape[-1]}").min()) >= _OPAQUE8 << (8 * a.shape[-1] - 8)
    return a.shape[-1] in (2, 4) and int(a[..., -1].min()) >= _OPAQUE8


_OPAQUE8 = int(0.98 * 255) + 1  # 250: the least 8-bit alpha that ``_channels_to_grey`` reads as opaque (> 0.98)


def _pil_opaque8(image: Image.Image) -> bool:
    """An 8-bit L, LA, RGB or RGBA image (an upload is a PNG: mostly RGB) that ``_opaque8`` would pass as an array."""
    if image.mode not in ("L", "LA", "RGB", "RGBA") or "transparency" in image.info:
        return False
    if not 0 < min(image.size) <= max(image.size) <= MAX_SIDE:
        return False
    return image.mode in ("L", "RGB") or image.getextrema()[-1][0] >= _OPAQUE8


def _pil_grey8(image: Image.Image) -> np.ndarray:
    """``_grey8`` of the image's pixels, converted by Pillow directly (LA -> L keeps L, RGB(A) -> L is the luma)."""
    return np.asarray(image if image.mode == "L" else image.convert("L"))


def _grey8(a: np.ndarray) -> np.ndarray:
    """Uint8 grey of an opaque 8-bit image: Pillow's integer luma, the same 0.299/0.587/0.114 weights as
    ``_channels_to_grey`` rounded to whole steps (at most 0.002 off), at a tenth of the float version's cost."""
    if a.ndim == 2:
        return a
    if a.shape[-1] <= 2:
        return a[..., 0]
    return np.asarray(Image.fromarray(np.ascontiguousarray(a)).convert("L"))  # RGB(A) -> L ignores alpha


def _scale_values(a: np.ndarray) -> np.ndarray:
    """Pixel values of any sensible dtype -> float32 in [0, 1]."""
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise BadImage(f"integer image values must lie in 0..255, got {lo}..{hi}")
        return a.astype(np.float32) / 255.0
    if np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise BadImage("image array holds NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 255:
            raise BadImage(f"float image values must lie in [0, 1] (or 0..255), got {lo:g}..{hi:g}")
        return a / 255.0 if hi > 1.0 else a
    raise BadImage(f"unsupported image dtype {a.dtype}")


def _downscale(a: np.ndarray) -> np.ndarray:
    """Area-average a float HxWxC array so its long side is MAX_SIDE."""
    h, w = a.shape[:2]
    scale = MAX_SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(a[..., c]), "F").resize(size, Image.Resampling.BOX))
        for c in range(a.shape[2])
    ]
    return np.stack(channels, axis=-1)


def _channels_to_grey(a: np.ndarray) -> np.ndarray:
    """HxWxC float -> HxW grey; transparent pixels become paper that contrasts with the ink."""
    colour, alpha = (a[..., :-1], a[..., -1]) if a.shape[-1] in (2, 4) else (a, None)
    grey = colour[..., 0] if colour.shape[-1] == 1 else colour @ np.array([0.299, 0.587, 0.114], np.float32)
    if alpha is None or alpha.min() > 0.98:
        return grey.astype(np.float32)
    opaque = alpha > 0.5
    if not opaque.any():
        raise NothingDrawn("the image is fully transparent")
    # Strokes on a transparent layer: lay them on paper of the opposite brightness.
    paper = 1.0 if float(np.median(grey[opaque])) < 0.5 else 0.0
    return (grey * alpha + paper * (1.0 - alpha)).astype(np.float32)


# ---------------------------------------------------------------- finding the ink


def _border(a: np.ndarray) -> np.ndarray:
    width = max(1, round(0.02 * min(a.shape)))
    return np.concatenate(
        [a[:width].ravel(), a[-width:].ravel(), a[:, :width].ravel(), a[:, -width:].ravel()]
    )


def _paper_level(grey: np.ndarray) -> tuple[float, tuple[float, float], bool]:
    """The paper's grey level, the image's robust extremes (both in grey's units) and whether the paper is unevenly lit.

    The paper is the border's median, or the whole image's where the border is mixed (a drawing
    that touches the edge); ink lies on whichever side of it the image reaches further. The lighting
    is uneven when the border's 10th and 90th percentiles differ by 0.1 or more (``_flatten_lighting``).
    """
    unit = 255.0 if grey.dtype == np.uint8 else 1.0
    ring = _border(grey)
    percentiles = _percentiles8 if grey.dtype == np.uint8 else np.percentile
    if ring.min() == ring.max():  # a clean canvas's even border: every percentile is that level
        lo_ring = mid_ring = hi_ring = float(ring[0])
    else:
        lo_ring, mid_ring, hi_ring = percentiles(ring, [10, 50, 90])
    paper = float(mid_ring if hi_ring - lo_ring < 0.5 * unit else percentiles(grey, [50])[0])
    uneven = hi_ring - lo_ring >= 0.1 * unit and min(grey.shape) >= 16
    return paper, _robust_extremes(grey), bool(uneven)


def _percentiles8(values: np.ndarray, qs: list[float]) -> list[float]:
    """``np.percentile(values, qs)`` of uint8 values (its default, linear method, so also ``np.median`` for
    [50]) from their histogram instead of a sort: the same order statistics and numpy's own arithmetic."""
    n = values.size
    ends = np.cumsum(np.bincount(values.ravel(), minlength=256))  # ends[v]: how many values are <= v
    out = []
    for q in qs:
        virtual = (n - 1) * (q / 100)  # numpy's virtual index for the linear method
        below = int(virtual)  # 0 <= virtual <= n - 1
        above, t = min(below + 1, n - 1), virtual - below
        a, b = (int(v) for v in np.searchsorted(ends, [below, above], side="right"))
        diff = b - a  # numpy's _lerp: from the nearer end
        out.append(b - diff * (1 - t) if t >= 0.5 else a + diff * t)
    return out


def _robust_extremes(grey: np.ndarray) -> tuple[float, float]:
    """Min and max over 2x2 neighbourhoods, so single noisy pixels do not count as ink.

    Separable: the 2x1 extremes of neighbouring rows, then of neighbouring columns of those.
    """
    if min(grey.shape) < 2:
        return float(grey.min()), float(grey.max())
    high = np.maximum(grey[:-1], grey[1:])
    low = np.minimum(grey[:-1], grey[1:])
    return float(np.maximum(high[:, :-1], high[:, 1:]).min()), float(np.minimum(low[:, :-1], low[:, 1:]).max())


def _robust_peak(ink: np.ndarray) -> float:
    return _robust_extremes(ink)[1]


def _flatten_lighting(grey: np.ndarray, paper: float) -> np.ndarray:
    """Even out uneven paper (a photo): subtract a smooth estimate of the paper's brightness.

    Only called when the border itself is uneven (``_paper_level``), so clean canvases are left untouched.
    """
    # grey has bright ink here, so the paper is the local minimum over a window wider than a stroke.
    small = Image.fromarray(np.ascontiguousarray(grey), "F")
    small = small.resize((64, max(1, round(64 * grey.shape[0] / grey.shape[1]))), Image.Resampling.BOX)
    background = small.filter(ImageFilter.MinFilter(9)).filter(ImageFilter.MaxFilter(5))
    background = background.resize(grey.shape[::-1], Image.Resampling.BILINEAR)
    return grey - np.asarray(background) + paper


def _noise_floor(sample: np.ndarray) -> float | None:
    """The paper's texture in a sample of the ink map: the background's median + 4 robust sigmas (None: clean)."""
    if 2 * np.count_nonzero(sample) < sample.size:  # mostly clean paper: median and spread are 0
        return None
    median = float(np.median(sample))
    spread = 1.4826 * float(np.median(np.abs(sample - median)))
    floor = min(median + 4 * spread, 0.45)
    return floor if floor > 0 else None


def _above_floor(ink: np.ndarray, floor: float | None) -> np.ndarray:
    """Drop everything up to ``floor`` and stretch the rest back to [0, 1]."""
    if floor is None:
        return ink
    return np.clip((ink - floor) / (1.0 - floor), 0.0, 1.0).astype(np.float32)


def _noise_sample(a: np.ndarray) -> np.ndarray:
    return a[:: max(1, a.shape[0] // 256), :: max(1, a.shape[1] // 256)]


@dataclass(frozen=True)
class _Ink:
    """An image's ink map, kept as the 8-bit grey it comes from and the rule that turns a grey level into ink
    when it can be (``grey`` set), else as the float map itself (``levels``).

    The rule is elementwise, so the half-ink mask is a comparison of bytes against the first grey level
    that reaches half ink, and floats are made only for the region around the character that ``frame``
    reads: most of a canvas is paper. Every pixel gets the same float operations as the full map would.
    """

    levels: np.ndarray | None = None  # the float ink map; None when ``grey`` and ``rule`` stand for it
    grey: np.ndarray | None = None  # uint8 HxW
    rule: tuple[float, bool, float, float | None] = (0.0, True, 1.0, None)  # paper, dark ink, peak, noise floor

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.levels if self.grey is None else self.grey).shape

    def ink(self, grey: np.ndarray) -> np.ndarray:
        """Float32 ink of 8-bit grey values, by the rule."""
        paper, dark_ink, peak, floor = self.rule
        ink = np.subtract(paper, grey, dtype=np.float32) if dark_ink else np.subtract(grey, paper, dtype=np.float32)
        np.maximum(ink, 0.0, out=ink)
        ink *= np.float32(1.0 / peak)
        np.minimum(ink, 1.0, out=ink)
        return _above_floor(ink, floor)

    def region(self, rows: slice, cols: slice) -> np.ndarray:
        return self.levels[rows, cols] if self.grey is None else self.ink(self.grey[rows, cols])

    def full(self) -> np.ndarray:
        return self.levels if self.grey is None else self.ink(self.grey)

    def mask(self) -> np.ndarray:
        """Pixels holding at least half ink."""
        if self.grey is None:
            return self.levels >= 0.5
        return _grey_where(self.grey, self.ink(np.arange(256, dtype=np.uint8)) >= 0.5)


def _grey_where(grey: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Pixels of 8-bit ``grey`` whose level is flagged (``flags``: 256 bools). The rule is monotonic in the
    grey level, so the flags are one run from 0 or up to 255: one comparison, not a lookup per pixel."""
    on = np.flatnonzero(flags)
    if on.size == 0:
        return np.zeros(grey.shape, bool)
    first, last = int(on[0]), int(on[-1])  # Python ints: a numpy int64 would widen every pixel to compare
    if last - first + 1 == on.size and first == 0:
        return grey <= last
    if last - first + 1 == on.size and last == 255:
        return grey >= first
    return flags[grey]


def _ink_levels(image: Any) -> _Ink:
    """How much ink each pixel of ``image`` holds (0 paper .. 1 full ink), noise removed; see ``_Ink``."""
    grey = _to_grey(image)
    unit = 255.0 if grey.dtype == np.uint8 else 1.0  # paper, lo, hi and peak are in grey's own units
    paper, (lo, hi), uneven = _paper_level(grey)
    dark_ink = (paper - lo) >= (hi - paper)
    if uneven or grey.dtype != np.uint8:
        return _float_ink(grey, unit, paper, (lo, hi), uneven)
    peak = (paper - lo) if dark_ink else (hi - paper)  # clipping and subtracting commute with the 2x2 min/max
    if peak < MIN_CONTRAST * unit:
        raise NothingDrawn("the image is blank")
    clean = _Ink(grey=grey, rule=(paper, dark_ink, peak, None))
    sample = _noise_sample(grey)
    if 2 * np.count_nonzero(_grey_where(sample, clean.ink(np.arange(256, dtype=np.uint8)) != 0)) < sample.size:
        return clean  # mostly clean paper: nothing to remove (``_noise_floor`` would say so from the floats)
    return _Ink(grey=grey, rule=(paper, dark_ink, peak, _noise_floor(clean.ink(sample))))


def _float_ink(grey: np.ndarray, unit: float, paper: float, extremes: tuple[float, float], uneven: bool) -> _Ink:
    """The ink map of float grey, or of a photo whose lighting must be flattened first."""
    lo, hi = extremes
    dark_ink = (paper - lo) >= (hi - paper)
    if uneven:  # a photo: flatten its lighting, then measure the ink's peak on the result
        grey, paper, unit = np.divide(grey, unit, dtype=np.float32), paper / unit, 1.0
        if dark_ink:
            grey, paper = 1.0 - grey, 1.0 - paper
        ink = np.clip(_flatten_lighting(grey, paper) - paper, 0.0, None)
        peak = _robust_peak(ink)
    else:
        ink = np.subtract(paper, grey, dtype=np.float32) if dark_ink else np.subtract(grey, paper, dtype=np.float32)
        np.maximum(ink, 0.0, out=ink)
        peak = (paper - lo) if dark_ink else (hi - paper)
    if peak < MIN_CONTRAST * unit:
        raise NothingDrawn("the image is blank")
    ink *= np.float32(1.0 / peak)
    np.minimum(ink, 1.0, out=ink)
    return _Ink(levels=_above_floor(ink, _noise_floor(_noise_sample(ink))))


def _mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the half-ink ``mask`` after despeckling, bottom/right exclusive."""
    if np.count_nonzero(mask) > FILLED * mask.size:
        raise NothingDrawn("the canvas is filled: clear it and draw one character")
    factor = max(1, int(np.ceil(max(mask.shape) / 256)))
    blocks = _block_any(mask, factor)
    rows, cols = np.nonzero(blocks.any(1))[0], np.nonzero(blocks.any(0))[0]
    if rows.size == 0:
        raise NothingDrawn("no ink found")
    # Despeckled on the inked blocks' bounding box and one block around it: the same opening, since each
    # block's fate depends only on its 3x3 neighbours, all inside that frame (and the array's edges stay edges).
    y0, x0 = max(0, int(rows[0]) - 1), max(0, int(cols[0]) - 1)
    kept = _despeckle(blocks[y0 : rows[-1] + 2, x0 : cols[-1] + 2])
    if not kept.any():
        raise NothingDrawn("no ink found")
    region = mask[y0 * factor : (y0 + kept.shape[0]) * factor, x0 * factor : (x0 + kept.shape[1]) * factor]
    # Despeckling only removes blocks, so every kept block holds ink: the box's edges lie in its edge blocks.
    top, bottom = (y0 * factor + edge for edge in _kept_rows(region, kept, factor))
    left, right = (x0 * factor + edge for edge in _kept_rows(region.T, kept.T, factor))
    if max(bottom - top, right - left) < max(3, MIN_EXTENT * max(mask.shape)):
        raise NothingDrawn("the ink is too small to be a character")
    return int(top), int(left), int(bottom), int(right)


def _kept_rows(mask: np.ndarray, blocks: np.ndarray, factor: int) -> tuple[int, int]:
    """First and last+1 row of ``mask`` inside the kept ``blocks`` (factor x factor pixels each), reading only
    the first and last block rows (no full-size copy of the blocks)."""
    rows = np.flatnonzero(blocks.any(1))
    edges = []
    for block, pick in ((rows[0], 0), (rows[-1], -1)):
        keep = np.repeat(blocks[block], factor)[: mask.shape[1]]
        hits = np.flatnonzero((mask[block * factor : (block + 1) * factor] & keep).any(1))
        edges.append(block * factor + int(hits[pick]))
    return edges[0], edges[1] + 1


def _block_any(mask: np.ndarray, factor: int) -> np.ndarray:
    """Whether any pixel of each factor x factor block is set: ORs of strided views (a 4-D .any is slow)."""
    if factor == 1:
        return mask
    h, w = mask.shape
    padded = mask
    if h % factor or w % factor:  # np.pad costs more than the ORs
        padded = np.zeros((h + -h % factor, w + -w % factor), bool)
        padded[:h, :w] = mask
    if factor in _WIDE:  # each row's blocks read as one 2/4/8-byte integer: nonzero where any byte is
        words = np.ascontiguousarray(padded).view(_WIDE[factor])
        out = words[::factor].copy()
        for dy in range(1, factor):
            out |= words[dy::factor]
        return out != 0
    out = padded[::factor, ::factor].copy()
    for dy in range(factor):
        for dx in range(factor):
            out |= padded[dy::factor, dx::factor]
    return out


_WIDE = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _despeckle(blocks: np.ndarray) -> np.ndarray:
    """Morphological opening (3x3), unless it would erase most of the ink (very thin strokes)."""
    opened = _dilate3(~_dilate3(~blocks))
    return opened if np.count_nonzero(opened) >= 0.5 * np.count_nonzero(blocks) else blocks


def _dilate3(mask: np.ndarray) -> np.ndarray:
    """3x3 binary dilation with numpy (Pillow's rank filters are slow): a 3x1 then a 1x3 pass."""
    rows = mask.copy()
    rows[1:] |= mask[:-1]
    rows[:-1] |= mask[1:]
    out = rows.copy()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
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
