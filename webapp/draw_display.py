"""What the Draw tab shows for one reading (``Analysis``), as plain values testable without a page: the preview of
the model input, the status and agreement lines, and per slot its top 5 and a line of its answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from recognizer.labels import same_character
from recognizer.manifest import SLOTS

from .analysis_records import EMPTY_MESSAGE, PREVIEW_SIZE, Analysis
from .answer_words import AGREES, DIFFERS, said, set_words, together_words

READY = Analysis(None, EMPTY_MESSAGE, "empty")  # an empty canvas: what the page shows at start and after Clear


@dataclass
class Shown:
    """The tab's values for one analysis: the state, the preview, two lines of text, per slot a label and a line."""

    x28: np.ndarray | None
    preview: np.ndarray | None
    status: str
    agreement: str
    labels: list[dict[str, float] | None]
    infos: list[str]
    line: str  # the compact answer line under the canvas (phones and tablets)


def shown(analysis: Analysis) -> Shown:
    slots = range(len(SLOTS))
    return Shown(
        x28=analysis.x28,
        preview=enlarge(analysis.x28) if analysis.x28 is not None else None,
        status=status(analysis),
        agreement=agreement(analysis),
        labels=[label_value(analysis, i) for i in slots],
        infos=[slot_info(analysis, i) for i in slots],
        line=answer_line(analysis),
    )


def enlarge(x28: np.ndarray, size: int = PREVIEW_SIZE) -> np.ndarray:
    """The model's input as it sees it (bright ink on black), enlarged with visible pixels."""
    grey = np.round(np.clip(np.asarray(x28, np.float32).reshape(28, 28), 0, 1) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(grey).resize((size, size), Image.Resampling.NEAREST))


def label_value(analysis: Analysis, i: int) -> dict[str, float] | None:
    r = analysis.slots[i] if i < len(analysis.slots) else None
    if r is None or r.prediction is None:
        return None
    return {display: probability for _, display, probability in r.prediction.top}


def slot_info(analysis: Analysis, i: int) -> str:
    """'✓ **A** 93% · agrees with the others · 0.41 ms' (or '**o** 48% or **0** 41%' and what that means): its answer
    or set, whether this slot reads what the others read, in words, and its latency."""
    r = analysis.slots[i] if i < len(analysis.slots) else None
    if r is None or analysis.message:
        return ""
    if r.prediction is None:
        return f"⚠ {r.error}" if r.error else ""
    p = r.prediction
    others = [s.prediction.char for j, s in enumerate(analysis.slots) if j != i and s.prediction is not None]
    mark, words = ("", "") if not others else (
        ("✓", f" · {AGREES}") if all(same_character(p.char, c) for c in others) else ("✗", f" · {DIFFERS}"))
    return f"{mark} {said(p)}{set_words(p.answer_set)}{words} · {p.latency_ms:.2f} ms"


def agreement(analysis: Analysis) -> str:
    if analysis.message:
        return ""
    answered = [r for r in analysis.slots if r.prediction is not None]
    if not answered:
        return "⚠ No model could answer."
    reads = " · ".join(f"{r.model}: {said(r.prediction)}" for r in answered)
    both = together_words(analysis.together)
    reads += f" · {both}" if both else ""
    if analysis.agree is None:
        return f"Only one model answered: {reads}"
    if analysis.agree:
        return ("✓ **They agree** on the most likely character (upper and lower case of merged letters count as one): "
                + reads)
    return f"⚠ **They disagree** on the most likely character: {reads}"


def answer_line(analysis: Analysis) -> str:
    """'✓ **7** 100% · **7** 100% · **0** 87% or **O** 13%': each slot's answer or set, and whether they agree."""
    if analysis.message:
        return status(analysis)
    answered = [r.prediction for r in analysis.slots if r.prediction is not None]
    if not answered:
        return "⚠ No model could answer."
    mark = {True: "✓", False: "⚠", None: ""}[analysis.agree]
    verdict = {True: "they agree", False: "they disagree", None: "one answer"}[analysis.agree]
    reads = " · ".join(said(p) for p in answered)
    return f"{mark} {reads} — {verdict}".strip()


def status(analysis: Analysis) -> str:
    if analysis.message is None:
        kind = "" if analysis.mode == "anything" else f" Reading {analysis.mode} only."
        return ("Each model's answer is below. Where a model cannot tell look-alikes apart it names each (\"O or 0\"): "
                "on drawings like those it was calibrated on, the right character is among those named "
                f"{analysis.level:.0%} of the time.{kind} The heat maps show which parts of the input mattered most.")
    return ("✎ " if analysis.kind == "empty" else "⚠ ") + analysis.message
