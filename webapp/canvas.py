"""The drawing canvas: a plain HTML canvas (``gr.HTML``) whose script is webapp/canvas.js, in place of Gradio's
Sketchpad (which took most of a second between a stroke and its request: README, assets/benchmarks/).

Its toolbar: Brush, Erase, Undo and "Clear canvas" (the trash icon). Pointer events make the mouse, a finger and a
pen draw alike; ``touch-action: none`` keeps a finger's stroke from scrolling the page. Its value after every stroke
is JSON text: the PNG as a data URL and the strokes as drawn (``None`` once nothing is drawn; a bare data URL is read
too); ``canvas_value`` decodes it once into a ``CanvasDrawing``: the PNG bytes and strokes that keeping stores, and the
pixels ``webapp.analysis`` hands to preprocessing.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from recognizer.drawings import StrokeError, parse_strokes
from recognizer.drawings.strokes import MAX_POINTS
from recognizer.files import sha256_bytes

CANVAS = 400  # the drawing's pixels (the page may show it smaller, e.g. on a phone)
BRUSH = 12  # brush radius: ~24 px strokes, about 2 of 28 pixels for a character 300 px tall (EMNIST: about 2.3)
MAX_PNG_BYTES = 2_000_000  # a 400x400 drawing is 5-20 kB as PNG; anything this big did not come from the canvas
PREFIX = "data:image/png;base64,"
MAX_VALUE_CHARS = MAX_PNG_BYTES * 4 // 3 + 64 * MAX_POINTS  # the PNG as base64 and the strokes as JSON text


class CanvasValueError(ValueError):
    """A canvas value that is not a drawing from this canvas (the message is for the person)."""


# Icons as inline SVG (stroke-drawn), so they show without any icon font.
ICONS = {
    "brush": '<path d="M4 20l4-1 11-11-3-3L5 16z"/><path d="M14 6l3 3"/>',
    "eraser": '<path d="M8 20h12"/><path d="M4 15l9-9 6 6-8 8H8z"/><path d="M9 10l6 6"/>',
    "undo": '<path d="M9 14L4 9l5-5"/><path d="M4 9h11a5 5 0 0 1 0 10h-3"/>',
    "trash": '<path d="M4 7h16"/><path d="M9 7V4h6v3"/><path d="M6 7l1 13h10l1-13"/>',
}


def icon(name: str) -> str:
    return (f'<svg viewBox="0 0 24 24" width="22" height="22" fill="none" stroke="currentColor" stroke-width="2" '
            f'stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">{ICONS[name]}</svg>')


HTML = f"""
<div class="drawing">
  <div class="drawing-tools" role="toolbar" aria-label="Drawing tools">
    <button type="button" class="tool brush active" aria-label="Brush" aria-pressed="true"
            title="Brush">{icon("brush")}</button>
    <button type="button" class="tool eraser" aria-label="Erase" aria-pressed="false"
            title="Eraser">{icon("eraser")}</button>
    <button type="button" class="undo" aria-label="Undo" title="Undo the last stroke">{icon("undo")}</button>
    <button type="button" class="trash" aria-label="Clear canvas" title="Clear the canvas">{icon("trash")}</button>
    <p class="answerer" aria-live="polite"></p>
  </div>
  <canvas width="{CANVAS}" height="{CANVAS}" data-brush="{BRUSH}"
          aria-label="Drawing canvas: draw one character"></canvas>
</div>
"""

CSS = """
.drawing { display: flex; flex-direction: column; align-items: center; gap: 6px; width: 100%; }
.drawing-tools { display: flex; gap: 6px; }
.drawing-tools button { min-width: 44px; min-height: 40px; border-radius: 8px; color: var(--body-text-color);
  display: flex; align-items: center; justify-content: center;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary); cursor: pointer; }
.drawing-tools button.active { border-color: var(--color-accent); background: var(--color-accent-soft); }
.drawing-tools { width: min(100%, 400px); align-items: center; }
.drawing .answerer { flex: 1; margin: 0; max-height: 40px; overflow: hidden; font-size: 0.75em; line-height: 1.25;
  color: var(--body-text-color-subdued); }
.drawing canvas { width: min(100%, 400px); aspect-ratio: 1; background: #fff; border-radius: 8px;
  border: 1px solid var(--border-color-primary); touch-action: none; cursor: crosshair; }
"""

JS = Path(__file__).with_name("canvas.js").read_text(encoding="utf-8")  # the canvas's script, run by Gradio


def drawing_canvas(elem_id: str = "sketch") -> gr.HTML:
    """The canvas component (inside a Blocks); its ``change`` event carries the PNG data URL."""
    return gr.HTML(value=None, html_template=HTML, css_template=CSS, js_on_load=JS, elem_id=elem_id,
                   apply_default_css=False)


@dataclass(frozen=True, eq=False)  # eq=False: array fields have no plain ==
class CanvasDrawing:
    """One canvas value, decoded once: the PNG as drawn (what keeping stores), its RGBA pixels (alpha: where the
    person drew, which tells a filled canvas) and those pixels over white (what preprocessing reads)."""

    png: bytes
    layer: np.ndarray  # (CANVAS, CANVAS, 4) uint8
    composite: np.ndarray  # (CANVAS, CANVAS, 4) uint8, opaque
    strokes: tuple[dict, ...] | None = None  # as drawn (recognizer.drawings.strokes); None: not sent or not valid

    def digest(self) -> str:
        """The drawing's pixels as a digest: a drawing that comes back (cleared, then delivered late) is known."""
        return sha256_bytes(np.ascontiguousarray(self.composite).tobytes())


def canvas_value(value: Any) -> CanvasDrawing | None:
    """The canvas's PNG data URL, decoded once: ``layer`` the RGBA ink, ``composite`` it over white.

    ``None`` (nothing drawn) stays ``None``. Raises ``CanvasValueError`` for anything this canvas does not send.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        raise CanvasValueError(f"The drawing is too large (over {MAX_PNG_BYTES / 1e6:g} MB).")
    value, strokes = _png_and_strokes(value)
    if not isinstance(value, str) or not value.startswith(PREFIX):
        raise CanvasValueError("The drawing did not arrive as a PNG from the canvas.")
    if len(value) > MAX_PNG_BYTES * 4 // 3 + len(PREFIX) + 4:
        raise CanvasValueError(f"The drawing is too large (over {MAX_PNG_BYTES / 1e6:g} MB).")
    try:
        data = base64.b64decode(value[len(PREFIX):], validate=True)
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or image.size != (CANVAS, CANVAS):
                raise CanvasValueError(f"The drawing is not a {CANVAS}x{CANVAS} PNG from the canvas.")
            layer = np.asarray(image.convert("RGBA"))
    except (binascii.Error, OSError, ValueError) as err:
        if isinstance(err, CanvasValueError):
            raise
        raise CanvasValueError("The drawing could not be decoded.") from err
    alpha = layer[..., 3:4].astype(np.float32) / 255.0
    over_white = layer[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    composite = np.concatenate([np.round(over_white).astype(np.uint8), np.full_like(layer[..., 3:4], 255)], axis=-1)
    return CanvasDrawing(data, layer, composite, strokes)


def _png_and_strokes(value: Any) -> tuple[Any, tuple[dict, ...] | None]:
    """The canvas's JSON value split into its PNG data URL and its strokes (None when absent or not valid: the
    drawing is still read, and kept without strokes)."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            raise CanvasValueError("The drawing could not be decoded.") from None
    if not isinstance(value, dict):
        return value, None
    try:
        strokes = parse_strokes(value.get("strokes"))
    except StrokeError:
        strokes = None
    return value.get("png"), strokes


def canvas_json(layer: np.ndarray, strokes: list[dict] | None) -> str:
    """An RGBA layer and its strokes as the canvas sends them: for tests and benchmarks."""
    return json.dumps({"png": png_data_url(layer), "strokes": strokes or []})


def png_data_url(layer: np.ndarray) -> str:
    """An RGBA layer (alpha = ink) as the canvas sends it: for tests and benchmarks."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(layer, np.uint8), "RGBA").save(buffer, format="PNG")
    return PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")
