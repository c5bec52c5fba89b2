"""Every input form preprocessing accepts, read as grey pixels: numpy arrays (HxW, HxWx1/2/3/4), PIL images,
file paths, encoded image bytes, and a Gradio Sketchpad/ImageEditor value dict (its ``composite``, or its layers'
ink); transparency becomes paper, huge images are refused or area-downscaled first. An opaque 8-bit array (every
canvas drawing) stays uint8: a quarter of the bytes to scan, and no float copy. ``sketchpad_value`` builds the dict
form from an RGB picture (the drawing benchmark's canvases and the tests use it).

Bad input raises ``InputError`` (``NothingDrawn``, ``BadImage``) with a message a person can read.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageOps

_OPAQUE8 = int(0.98 * 255) + 1  # 250: the least 8-bit alpha that ``_channels_to_grey`` reads as opaque (> 0.98)
MAX_SIDE = 1024  # larger inputs are area-downscaled first: plenty for a 28x28 result
MAX_PIXELS = 50_000_000  # larger inputs are refused outright


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
