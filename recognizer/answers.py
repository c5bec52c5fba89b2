"""What a model answers under "What are you drawing?": the mode, the prior, the calibrated set.

    shaped = shape(entry, prediction, mode="digits", level=0.9)   # top-k and set within the mode

A person may say what they are drawing: ``anything`` (the default), ``digits`` or ``letters``. The mode restricts
every answer to that kind (``mode_mask``; letters keep each split's case rule: byclass reads 'a' and 'A', bymerge
'a' and 'C/c'), renormalising the probabilities over what is left. Before that the probabilities move towards the
prior the manifest names (``recognizer.manifest.AnswerRules``: ``logits - tau * log prior``; tau 0, the default,
changes nothing). The set is split conformal's (``recognizer.conformal``), over the mode's merged classes, at the
level the app states, with the threshold the manifest holds for that model, mode and level.

``set_figures`` scores sets and top-1 on a batch (the kept drawings, live in the app) the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .conformal import DEFAULT_LEVEL, answer_set, coverage_and_size, fold
from .inference import Prediction, softmax
from .labels import MERGED_CHARS, display, merge_key
from .manifest import AnswerRules, ModelEntry

MODES = ("anything", "digits", "letters")
MODE_TITLES = {"anything": "Anything", "digits": "Digits", "letters": "Letters"}
ALIASES = {"": "anything", "any": "anything", "all": "anything", "digit": "digits", "letter": "letters"}


class ModeError(ValueError):
    """A mode the app does not know; the message lists those it does."""


def parse_mode(value: str | None) -> str:
    """'digits', 'Letters', '' (anything) ... -> one of MODES; ``ModeError`` otherwise."""
    text = str(value or "").strip().lower()
    text = ALIASES.get(text, text)
    if text not in MODES:
        raise ModeError(f"only={value!r} is not a mode: use digits or letters (or leave it out for anything)")
    return text


def in_mode(char: str, mode: str) -> bool:
    """Whether a character (or a merged class name) belongs to a mode."""
    return mode == "anything" or (char.isdigit() if mode == "digits" else char.isalpha())


def mode_mask(labels: Sequence[str], mode: str) -> np.ndarray:
    """Which of a model's labels a mode keeps."""
    return np.array([in_mode(c, mode) for c in labels], bool)


def restrict(probs: np.ndarray, labels: Sequence[str], mode: str) -> np.ndarray:
    """Probabilities (N, C) or (C,) renormalised over the mode's labels (zero elsewhere); all zero if it has none."""
    kept = np.asarray(probs, np.float64) * mode_mask(labels, mode)
    total = kept.sum(-1, keepdims=True)
    return (kept / np.where(total > 0, total, 1.0)).astype(np.float32)


def adjust(probs: np.ndarray, rules: AnswerRules | None, tau: float | None = None) -> np.ndarray:
    """Logit adjustment (Menon et al. 2021): ``log p - tau * (log training prior - log target prior)``, the target
    being the rules' ``prior``: uniform, or the kept drawings' frequencies ("kept"). Unchanged at tau 0 (the
    default: the model as trained) or without a training prior."""
    tau = (rules.tau if rules else None) if tau is None else tau
    if not tau or rules is None or not rules.training_prior:
        return np.asarray(probs, np.float32)
    shift = np.log(np.asarray(rules.training_prior, np.float64) + 1e-12)
    if rules.prior == "kept" and rules.kept_prior:
        shift = shift - np.log(np.asarray(rules.kept_prior, np.float64) + 1e-12)
    return softmax(np.log(np.clip(np.asarray(probs, np.float64), 1e-12, None)) - tau * shift)


@dataclass(frozen=True)
class AnswerSet:
    """A calibrated set: its members (a display and a folded probability, best first) at ``level``."""

    members: tuple[tuple[str, float], ...]
    level: float

    @property
    def chars(self) -> list[str]:
        return [d for d, _ in self.members]


def folded_display(merged: str, labels: Sequence[str], probs: np.ndarray, merged_split: bool) -> str:
    """How one merged class of a set is shown: the model's own most probable label of it ('o' for byclass, 'O/o'
    for bymerge)."""
    group = [i for i, c in enumerate(labels) if merge_key(c) == merged]
    if not group:
        return display(merged, True)
    best = max(group, key=lambda i: probs[i])
    return display(labels[best], merged_split)


def shape(entry: ModelEntry, prediction: Prediction, mode: str = "anything", level: float = DEFAULT_LEVEL,
          k: int = 5) -> Prediction:
    """The prediction under a mode: the adjusted, restricted top-k and the calibrated set (None where the manifest
    holds no threshold for this model, mode and level). ``ValueError`` where the model reads nothing of the mode."""
    labels = list(entry.labels)
    probs = restrict(adjust(prediction.probabilities, entry.answers), labels, mode)
    if not probs.any():
        raise ValueError(f"{entry.name} reads no {mode}")
    order = np.argsort(-probs, kind="stable")[: max(1, min(k, int((probs > 0).sum())))]
    top = [(labels[i], entry.displays[i], float(probs[i])) for i in order]
    threshold = entry.answers.threshold(mode, level) if entry.answers else None
    chosen = None
    if threshold is not None:
        folded = fold(probs, labels)
        members = tuple((folded_display(MERGED_CHARS[j], labels, probs, entry.merged), float(folded[j]))
                        for j in answer_set(folded, threshold))  # fmt: skip
        chosen = AnswerSet(members, level)
    return replace(prediction, top=top, probabilities=probs, mode=mode, answer_set=chosen)


def set_figures(entry: ModelEntry, probs: np.ndarray, truth: np.ndarray, level: float = DEFAULT_LEVEL) -> dict:
    """Per mode: top-1 (folded), coverage and mean set size of a model's probabilities on the inputs whose merged
    truth belongs to the mode, and how many those are (None where there are none or no threshold). ``lac_coverage``
    is LAC's own, where a set may be empty (the app shows the answer alone there): what the guarantee is about."""
    out = {}
    merged_truth = [MERGED_CHARS[t] for t in truth]
    for mode in MODES:
        keep = np.array([in_mode(c, mode) for c in merged_truth], bool)
        p = fold(restrict(adjust(probs[keep], entry.answers), entry.labels, mode), entry.labels)
        t = np.asarray(truth)[keep]
        threshold = entry.answers.threshold(mode, level) if entry.answers else None
        cov, size = coverage_and_size(p, t, threshold) if threshold is not None and len(t) else (None, None)
        lac = float((p[np.arange(len(t)), t] >= threshold).mean()) if cov is not None else None
        top1 = float((p.argmax(1) == t).mean()) if len(t) else None
        out[mode] = {"n": int(len(t)), "top1": top1, "coverage": cov, "set_size": size, "lac_coverage": lac}
    return out


def together_set(entries: Sequence[ModelEntry], predictions: Sequence[Prediction], mode: str,
                 level: float) -> AnswerSet | None:
    """The slots' answer together (their folded, shaped probabilities averaged), only where the models' ``together``
    record names exactly these models and says it beat each of them in this mode; its calibrated set."""
    record = entries[0].answers.together if entries and entries[0].answers else None
    if not record or [e.name for e in entries] != record.get("models"):
        return None
    rule = (record.get("modes") or {}).get(mode) or {}
    threshold = (rule.get("thresholds") or {}).get(f"{level:g}")
    if not rule.get("shown") or threshold is None:
        return None
    mean = np.mean([fold(p.probabilities, e.labels) for e, p in zip(entries, predictions, strict=True)], 0)
    return AnswerSet(tuple((display(MERGED_CHARS[j], True), float(mean[j])) for j in answer_set(mean, threshold)),
                     level)  # fmt: skip
