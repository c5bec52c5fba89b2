"""How the app words an answer: one character, or "O or 0" with each one's probability; the marks in words.

A model's calibrated set (``recognizer.answers.shape``) with one member reads as that character; with several it
reads "**o** 48% or **0** 41%", the characters it cannot tell apart at the stated level. The three default slots
together (``recognizer.answers.together_set``) are worded the same way. ``sets_table`` is the Kept drawings tab's live
figures: each model's coverage and mean set size per mode on the kept drawings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recognizer.answers import MODE_TITLES, MODES, AnswerSet, set_figures
from recognizer.drawings import Drawing, merged_label
from recognizer.inference import Prediction

from .served import ServedModels

MODE_CHOICES = [MODE_TITLES[m] for m in MODES]
AGREES = "agrees with the others"  # what the slot card's ✓ means
DIFFERS = "reads another character than the others"  # and its ✗


def mode_of(title: str | None) -> str:
    """The mode of a radio choice ('Digits' -> 'digits'); anything for none."""
    return {v: k for k, v in MODE_TITLES.items()}.get(str(title or ""), "anything")


def said(p: Prediction, digits: int = 0) -> str:
    """'**7** 99%', or '**o** 48% or **0** 41%' where the set holds several characters."""
    members = p.answer_set.members if p.answer_set is not None else ((p.top[0][1], p.top[0][2]),)
    return " or ".join(f"**{d}** {q:.{digits}%}" for d, q in members)


def set_words(s: AnswerSet | None) -> str:
    """What the set means, in words, where it holds several characters."""
    if s is None or len(s.members) < 2:
        return ""
    return f" (not sure which: the right one is among these {s.level:.0%} of the time)"


def together_words(s: AnswerSet | None) -> str:
    if s is None:
        return ""
    return "All three together: " + " or ".join(f"**{d}** {q:.0%}" for d, q in s.members)


def sets_table(lab: ServedModels, drawings: Sequence[Drawing]) -> str:
    """Each served model with sets, per mode, on the kept drawings: top-1, coverage and mean set size at the app's
    level (the same figures as ``python -m training answers`` gives for the kept test part)."""
    if lab.recognizer is None or not drawings:
        return "*No kept drawings to measure the answer sets on yet.*"
    x = np.stack([d.x28 for d in drawings])
    truth = np.array([merged_label(d.character) for d in drawings], np.int64)
    rows = [f"| model | mode | drawings | top-1 | set holds the truth (stated {lab.level:.0%}) | mean set size |",
            "|---|---|---|---|---|---|"]
    for entry in lab.models:
        if entry.answers is None:
            continue
        figures = set_figures(entry, lab.recognizer.predict_batch(entry.name, x)[0], truth, lab.level)
        for mode, f in figures.items():
            size = "n/a" if f["set_size"] is None else f"{f['set_size']:.2f}"
            rows.append(f"| {entry.name} | {MODE_TITLES[mode]} | {f['n']} | {_pct(f['top1'])} | {_pct(f['coverage'])} "
                        f"| {size} |")
    return "\n".join(rows)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
