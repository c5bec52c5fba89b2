"""Split conformal prediction: answer sets that hold the true character at a stated rate.

    threshold = calibrate(cal_probs, cal_truth, level=0.9)     # LAC: the smallest kept probability
    members = answer_set(probs, threshold)                      # classes with probability >= threshold

The score is LAC's (Sadinle, Lei and Wasserman 2019; Angelopoulos and Bates, "A Gentle Introduction to Conformal
Prediction", section 1): ``1 - p(true class)``. Its quantile ``q`` at rank ``ceil((n + 1) * level)`` of the ``n``
calibration scores gives the set ``{y : p(y) >= 1 - q}``; for a new input exchangeable with the calibration inputs
the set holds the truth with probability at least ``level`` and, without ties, at most
``level + 1 / (n + 1)`` (``coverage_bounds``). LAC rather than APS or RAPS: among sets with the same marginal
guarantee it gives the smallest on average, so a clear drawing gets one character and only the real look-alikes
(O/0, I/l/1) get several; APS and RAPS buy better per-class coverage with larger sets (``aps_scores`` is here to
measure that). An empty LAC set (no class that probable) shows the most probable class alone: that only adds
coverage. The guarantee is for inputs like the calibration set: sets calibrated on scans under-cover drawings.

Everything works on probabilities folded to the 47 merged classes (``fold``): the drawing benchmark's truth has no
case for the 15 merged letters, so a byclass model's 'o' and 'O' are one member, 'O/o'.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from .labels import MERGED_CHARS, merge_key

METHOD = "LAC"
LEVELS = (0.8, 0.85, 0.9, 0.95, 0.98, 0.99)  # the levels calibrated; the app states one (90% by default)
DEFAULT_LEVEL = 0.9


def fold_matrix(labels: Sequence[str]) -> np.ndarray:
    """(C, 47) 0/1 matrix summing a model's class probabilities into the merged classes (made once per label list:
    the app folds every answer)."""
    return _fold_matrix(tuple(labels))


@functools.lru_cache(maxsize=32)
def _fold_matrix(labels: tuple[str, ...]) -> np.ndarray:
    out = np.zeros((len(labels), len(MERGED_CHARS)), np.float32)
    for i, c in enumerate(labels):
        out[i, MERGED_CHARS.index(merge_key(c))] = 1.0
    out.setflags(write=False)
    return out


def fold(probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Probabilities (N, C) or (C,) of a model's labels summed into the 47 merged classes."""
    return np.asarray(probs, np.float32) @ fold_matrix(labels)


def lac_scores(probs: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """LAC non-conformity: 1 - the probability given to the true class."""
    return 1.0 - np.asarray(probs)[np.arange(len(truth)), truth]


def quantile(scores: np.ndarray, level: float) -> float:
    """The conformal quantile: the ceil((n + 1) * level)-th smallest score (inf when n is too small)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie between 0 and 1, got {level}")
    n = len(scores)
    rank = math.ceil((n + 1) * level)
    if rank > n:
        return math.inf
    return float(np.sort(np.asarray(scores, np.float64))[rank - 1])


def calibrate(probs: np.ndarray, truth: np.ndarray, level: float) -> float:
    """LAC threshold: the least probability a class needs to be in the set (0 when n is too small: every class)."""
    q = quantile(lac_scores(probs, truth), level)
    return max(0.0, 1.0 - q) if math.isfinite(q) else 0.0


def set_masks(probs: np.ndarray, threshold: float) -> np.ndarray:
    """(N, K) membership: every class at or above ``threshold``, and the most probable class always."""
    probs = np.atleast_2d(np.asarray(probs))
    members = probs >= threshold
    members[np.arange(len(probs)), probs.argmax(1)] = True
    return members


def answer_set(probs: np.ndarray, threshold: float) -> list[int]:
    """One input's set as class indices, most probable first."""
    probs = np.asarray(probs).ravel()
    members = np.flatnonzero(set_masks(probs, threshold)[0])
    return [int(i) for i in members[np.argsort(-probs[members], kind="stable")]]


def coverage_and_size(probs: np.ndarray, truth: np.ndarray, threshold: float) -> tuple[float, float]:
    """Share of inputs whose set holds the truth, and the mean set size (nan, nan for no inputs)."""
    if len(truth) == 0:
        return math.nan, math.nan
    members = set_masks(probs, threshold)
    return float(members[np.arange(len(truth)), truth].mean()), float(members.sum(1).mean())


def coverage_bounds(n: int, level: float) -> tuple[float, float]:
    """Split conformal's coverage, in expectation over calibration sets of ``n``: at least ``level`` and, for
    scores without ties, below ``level + 1 / (n + 1)``."""
    return level, min(1.0, level + 1.0 / (n + 1))


def aps_scores(probs: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """APS non-conformity (non-randomised): the probability mass of every class at least as probable as the truth."""
    probs = np.asarray(probs)
    true_p = probs[np.arange(len(truth)), truth]
    return (probs * (probs >= true_p[:, None])).sum(1)


def aps_coverage_and_size(probs: np.ndarray, truth: np.ndarray, q: float) -> tuple[float, float]:
    """APS sets at quantile ``q``: the most probable classes until their mass reaches ``q`` (the class that
    crosses included)."""
    probs = np.asarray(probs)
    order = np.argsort(-probs, axis=1, kind="stable")
    sorted_p = np.take_along_axis(probs, order, 1)
    before = np.cumsum(sorted_p, 1) - sorted_p  # mass of the classes ranked above each
    members_sorted = before < q
    members = np.zeros_like(members_sorted)
    np.put_along_axis(members, order, members_sorted, 1)
    return float(members[np.arange(len(truth)), truth].mean()), float(members.sum(1).mean())
