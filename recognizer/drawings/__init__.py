"""Kept drawings: what a person drew, what they meant and what each model said, in a small SQLite store.

One concept per file: ``record`` (what a drawing is, and the checks it must pass), ``store`` (the store interface
and its SQLite implementation), ``dataset`` (the drawings as an EMNIST-style dataset), ``scores`` (the live
benchmark of every letter model on them), ``strokes`` and ``inkml`` (the strokes as drawn, and as W3C InkML),
``migrate`` (older stores opened by today's code) and ``cli``
(``python -m recognizer.drawings count | delete | export | review``).
The names below are the package's interface; import them from here.

Needs only the standard library, numpy and Pillow (never torch, Gradio or ``training``).
"""

from __future__ import annotations

from .cli import main
from .dataset import NO_LABEL, write_dataset, write_dataset_zip
from .record import (
    CHARACTERS,
    MAX_PNG_BYTES,
    OPEN_CASE,
    PNG_SIGNATURE,
    Drawing,
    InvalidDrawing,
    app_version,
    byclass_label,
    case_open,
    encode_png,
    merged_character,
    merged_label,
    normalise_png,
    parse_character,
)
from .scores import score_drawings, trusted
from .store import (
    DEFAULT_LIMITS,
    DEFAULT_PATH,
    SCHEMA_VERSION,
    DrawingStore,
    SQLiteStore,
    StoreFull,
    StoreLimits,
    StoreUnavailable,
    open_store,
)
from .strokes import StrokeError, parse_strokes

__all__ = [
    "CHARACTERS", "DEFAULT_LIMITS", "DEFAULT_PATH", "MAX_PNG_BYTES", "NO_LABEL", "OPEN_CASE", "PNG_SIGNATURE",
    "SCHEMA_VERSION", "Drawing", "DrawingStore", "InvalidDrawing", "SQLiteStore", "StoreFull", "StoreLimits",
    "StoreUnavailable", "StrokeError", "app_version", "byclass_label", "case_open", "encode_png", "main",
    "merged_character", "merged_label", "normalise_png", "open_store", "parse_character", "parse_strokes",
    "score_drawings", "trusted", "write_dataset", "write_dataset_zip",
]  # fmt: skip
