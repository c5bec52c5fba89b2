"""How the app words an answer: one character, or "O or 0" with each one's probability; the marks in words.

A model's calibrated set (``recognizer.answers.shape``) with one member reads as that character; with several it
reads "**o** 48% or **0** 41%", the characters it cannot tell apart at the stated level. The three default slots
together (``recognizer.answers.together_set``) are worded the same way.
"""

from __future__ import annotations

from recognizer.answers import MODE_TITLES, MODES, AnswerSet
from recognizer.inference import Prediction

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
