"""A drawing's strokes as the canvas recorded them (online handwriting, which EMNIST does not have).

A stroke is ``{"pointer": "mouse" | "touch" | "pen", "mode": "brush" | "eraser", "points": [[x, y, t, p], ...]}``:
x and y in the canvas's pixels (0..400, y down), t in milliseconds since the drawing's first point, p the pen's
pressure in [0, 1] (a mouse reports 0.5 while a button is down). ``parse_strokes`` checks what a page sent and
returns it in that plain form, bounded (``MAX_STROKES``, ``MAX_POINTS``), or raises ``InvalidDrawing``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

POINTERS = ("mouse", "touch", "pen")
MODES = ("brush", "eraser")
MAX_STROKES = 200
MAX_POINTS = 20_000  # all strokes together: minutes of drawing at 60 points a second
MAX_COORD = 4096.0
MAX_TIME_MS = 3_600_000  # an hour


class StrokeError(ValueError):
    """Strokes that are not what the canvas records."""


Stroke = dict[str, Any]


def parse_strokes(value: Any) -> tuple[Stroke, ...]:
    """The strokes in their stored form (rounded: 0.1 px, 1 ms, 0.01 pressure); ``StrokeError`` says what is off."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise StrokeError("the strokes are not JSON") from None
    if not isinstance(value, list | tuple):
        raise StrokeError("the strokes must be a list")
    if len(value) > MAX_STROKES:
        raise StrokeError(f"{len(value)} strokes, over the {MAX_STROKES} a drawing may have")
    strokes = tuple(_stroke(s) for s in value)
    if sum(len(s["points"]) for s in strokes) > MAX_POINTS:
        raise StrokeError(f"over {MAX_POINTS:,} points in all")
    return strokes


def _stroke(value: Any) -> Stroke:
    if not isinstance(value, Mapping) or not isinstance(value.get("points"), list) or not value["points"]:
        raise StrokeError("each stroke needs a non-empty list of points")
    pointer = str(value.get("pointer") or "mouse")
    mode = str(value.get("mode") or "brush")
    if pointer not in POINTERS or mode not in MODES:
        raise StrokeError(f"a stroke's pointer must be one of {POINTERS} and its mode one of {MODES}")
    if len(value["points"]) > MAX_POINTS:
        raise StrokeError(f"over {MAX_POINTS:,} points in one stroke")
    return {"pointer": pointer, "mode": mode, "points": [_point(p) for p in value["points"]]}


def _point(value: Any) -> list[float]:
    try:
        x, y, t, p = (float(v) for v in value)
    except (TypeError, ValueError):
        raise StrokeError("each point is [x, y, time_ms, pressure]") from None
    if not all(math.isfinite(v) for v in (x, y, t, p)):
        raise StrokeError("a point holds a value that is not a finite number")
    if abs(x) > MAX_COORD or abs(y) > MAX_COORD or not 0 <= t <= MAX_TIME_MS or not 0 <= p <= 1:
        raise StrokeError("a point lies off the canvas, before the drawing began, or has pressure outside [0, 1]")
    return [round(x, 1), round(y, 1), int(round(t)), round(p, 2)]


def strokes_json(strokes: Iterable[Stroke] | None) -> str | None:
    """The stored text (None: no strokes)."""
    return None if strokes is None else json.dumps(list(strokes), separators=(",", ":"))


def point_count(strokes: Iterable[Stroke] | None) -> int:
    return sum(len(s["points"]) for s in strokes or ())
