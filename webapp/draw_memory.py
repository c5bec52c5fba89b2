"""What the Draw tab remembers per visitor (a ``gr.State``): the drawings read since the last Clear and those Clear
wiped, as digests; which heat maps the page shows; the drawing read last with what the slots said of it, for keeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recognizer.files import sha256_bytes

from .analysis_records import Analysis
from .canvas import CanvasDrawing


@dataclass
class CanvasMemory:
    """Per visitor, as digests: the states of the drawing read since the last Clear, and those Clear wiped.

    A change raised just before Clear can reach the server after it (Gradio's ``always_last`` holds a trigger
    while the previous one runs), carrying the drawing that was cleared; the server recognises it (the same
    pixels) and ignores it, so the page stays cleared.
    """

    current: list[str] = field(default_factory=list)
    cleared: frozenset[str] = frozenset()
    mapped: str | None = None  # the input and models whose heat maps the page shows
    png: bytes | None = None  # the drawing read last, as drawn (the canvas PNG or the uploaded file): for keeping
    strokes: tuple[dict, ...] | None = None  # its strokes (the canvas's; None for an upload)
    source: str = "canvas"  # canvas | upload: where ``png`` came from
    analysis: Analysis | None = None  # what the slots said of it (kept beside it)
    kept_id: str | None = None  # the drawing this visitor kept last: the only one their Undo may delete
    mode: str = "anything"  # "What are you drawing?" (recognizer.answers.MODES), set by DrawTab.on_mode
    answerer: str = "server"  # who answered the drawing shown: "page" (webapp/canvas.js) or "server"
    x28: np.ndarray | None = None  # the server's model input of ``png``: a keep answers it where the page answered
    names: tuple[str | None, ...] = ()  # the slots' models when it was read


def maps_key(x28: np.ndarray | None, names: tuple[str | None, ...]) -> str | None:
    """Which heat maps these are: the model input and the slots' models (None: no maps)."""
    if x28 is None:
        return None
    digest = sha256_bytes(np.ascontiguousarray(x28, np.float32).tobytes())
    return f"{digest}:{'|'.join(str(n) for n in names)}"


def canvas_digest(value: CanvasDrawing | None) -> str | None:
    """A digest of the canvas's pixels (None when nothing is drawn), to recognise a drawing that comes back."""
    return value.digest() if value is not None else None
