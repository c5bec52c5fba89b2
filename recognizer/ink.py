"""Finding the ink in grey pixels (recognizer/inputs.py): the paper's level, which way the ink goes, the lighting
of a photo flattened, noise removed, and the box of the half-ink pixels after despeckling. ``_ink_levels`` keeps a
canvas's 8-bit grey with its per-level rule (``_Ink``) rather than a float map: most of a canvas is paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from .inputs import NothingDrawn, _to_grey

MIN_CONTRAST = 0.08  # ink must differ from the paper by this much (0..1 grey scale)
MIN_EXTENT = 0.015  # ink whose box is smaller than this fraction of the image is noise
FILLED = 0.6  # ink covering more of the image than this is a filled canvas, not a character


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
