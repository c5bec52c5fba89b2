"""Keeping a drawing: the one path the Draw tab, the ``/keep`` endpoint and ``POST /api/keep`` share.

``keep_drawing(lab, png, analysis, character)`` checks that keeping is on, the character, that there is a drawing,
then stores a ``recognizer.drawings.Drawing`` in the app's store (``ServedModels.store``) and returns its id.
Every refusal is a ``KeepRefused`` with a message for the person and the HTTP status the plain route answers with.
No Gradio here: testable without a page.
"""

from __future__ import annotations

from typing import Any

from recognizer.drawings import (
    CHARACTERS,
    MAX_PNG_BYTES,
    OPEN_CASE,
    Drawing,
    InvalidDrawing,
    StoreFull,
    StoreUnavailable,
    app_version,
    normalise_png,
    parse_character,
)
from recognizer.manifest import SLOTS

from .analysis_records import Analysis
from .limits import RateLimited
from .served import ServedModels

# The one line the page shows beside "Keep this drawing": exactly what a kept record holds.
STORED = ("Kept: the canvas as a grey PNG, your strokes as drawn (points, times, pressure, mouse/finger/pen), the "
          "28×28 input the models saw, the character you chose, each slot's model (name and sha256) and its top 5, "
          "the app's version, the time and a random id. Nothing about you.")  # fmt: skip


class KeepRefused(Exception):
    """Why a drawing was not kept (``message``, for the person) and the HTTP status that says so."""

    def __init__(self, message: str, status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after  # seconds, for a 429


def take_keep(lab: ServedModels, client: tuple[str | None, ...]) -> None:
    """Charge one keep to the client (address, session); ``KeepRefused`` 429 past the rate."""
    try:
        lab.limits.keeps.take(*client)
    except RateLimited as err:
        raise KeepRefused(f"Not kept: {err.message}", 429, err.retry_after) from None


def character_choices() -> list[tuple[str, str]]:
    """(label, value) for "What did you mean?": the 62 characters, then the 15 letters with the case left open."""
    return [(f"{c} (either case)" if c in OPEN_CASE else c, c) for c in CHARACTERS]


def slot_answers(lab: ServedModels, analysis: Analysis) -> list[dict]:
    """Each answering slot's model, its file's sha256, its top 5, the mode it answered under and its set."""
    answers = []
    for i, r in enumerate(analysis.slots):
        entry = lab.entry(r.model)
        if r.prediction is None or entry is None:
            continue
        answers.append({"slot": SLOTS[i] if i < len(SLOTS) else f"slot{i + 1}", "model": r.model,
                        "sha256": entry.sha256, "top": r.prediction.top, "mode": r.prediction.mode,
                        "set": r.prediction.answer_set.chars if r.prediction.answer_set else None})  # fmt: skip
    return answers


def as_png(data: bytes) -> bytes:
    """The drawing's bytes as the store keeps them: grey, at most the canvas's 400x400 (``normalise_png``), so a
    record stays a few KB whatever was sent."""
    try:
        return normalise_png(data)
    except InvalidDrawing as err:
        raise KeepRefused(f"The image could not be read: {err}", 422) from None


def keep_drawing(lab: ServedModels, png: bytes | None, analysis: Analysis | None, character: str | None,
                 strokes: Any = None, source: str = "api", client: tuple[str | None, ...] | None = None) -> str:
    """Store one drawing as ``character`` (with its ``strokes`` from the canvas, if any); its id. ``client``
    (address, session) is charged one keep first. ``KeepRefused`` (nothing stored) says why not."""
    if lab.store is None or lab.keep_off:
        raise KeepRefused(f"Keeping drawings is off: {lab.keep_off or 'no store'}.", 403)
    if client is not None:
        take_keep(lab, client)
    if not character:
        raise KeepRefused("Say what you meant first: pick the character you drew.", 400)
    try:
        character = parse_character(character)
    except InvalidDrawing as err:
        raise KeepRefused(str(err), 400) from None
    if analysis is None or analysis.x28 is None or not png:
        message = analysis.message if analysis is not None and analysis.message else "Nothing drawn to keep."
        raise KeepRefused(f"Not kept: {message}", 422)
    if len(png) > MAX_PNG_BYTES:
        raise KeepRefused(f"Not kept: the image is over {MAX_PNG_BYTES / 1e6:g} MB.", 413)
    try:
        drawing = Drawing.make(as_png(png), analysis.x28, character, slot_answers(lab, analysis), app_version(),
                               strokes, source)  # fmt: skip
        return lab.store.keep(drawing)
    except InvalidDrawing as err:
        raise KeepRefused(f"Not kept: {err}", 413 if "over" in str(err) else 422) from None
    except StoreFull as err:
        raise KeepRefused(f"Not kept: this app's store of drawings is full ({lab.shown_reason(err)}). The "
                          "operator can make room; drawings you kept before are safe.", 507) from None  # fmt: skip
    except StoreUnavailable as err:
        raise KeepRefused(f"Not kept: the store failed ({lab.shown_reason(err)}).", 503) from None


def undo_keep(lab: ServedModels, drawing_id: str | None) -> bool:
    """Delete the one drawing this visitor just kept (its id from their session); False when there was none."""
    if not drawing_id or lab.store is None or lab.keep_off:
        return False
    try:
        return lab.store.undo(drawing_id)
    except StoreUnavailable:
        return False
