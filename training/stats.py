"""How sure a comparison is: paired intervals over test images, McNemar's test, and holds / tie / reversed.

Two models scored on the same test images are compared image by image (paired): the difference in accuracy
is the mean of ``correct_a - correct_b``, and its 95% interval comes from resampling the test images
(a paired bootstrap). With several seeds the bootstrap resamples the seeds as well as the images (two
levels: a claim about a method should hold for other training runs, not only for these), pairing seed i of A
with seed i of B when both have the same seeds; the seed-to-seed spread is reported beside it. Runs recorded before
per-image predictions were kept fall back to an unpaired normal interval (wider: it ignores that both models
find the same images hard), and say so.

A claim "E is best among these rows" is judged against every other row:
- ``holds`` when E beats each of them with an interval above zero,
- ``reversed`` when some row beats E with an interval below zero (only then: the data are against the claim),
- ``tie`` otherwise: the test images cannot tell them apart.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import binomtest

from recognizer.verdicts import HOLDS, REVERSED, TIE
from training.records import Difference

CONFIDENCE = 0.95
BOOTSTRAP_SAMPLES = 2000
SEED = 42


def correctness(preds: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-image correctness; ``preds`` may be one run (n,) or several seeds (s, n): then the mean over seeds."""
    right = np.asarray(preds) == np.asarray(truth)
    return right.astype(np.float64) if right.ndim == 1 else right.mean(axis=0)


def percentile_interval(means: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central ``confidence`` share of bootstrap means."""
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_interval(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = SEED,
                       confidence: float = CONFIDENCE) -> tuple[float, float]:  # fmt: skip
    """Percentile interval of the mean of ``values`` over resampled positions (chunked: n x samples is large)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return math.nan, math.nan
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])  # nothing varies: a zero-width interval, no resampling noise
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    chunk = max(1, 4_000_000 // len(values))
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        means[start:stop] = values[rng.integers(0, len(values), size=(stop - start, len(values)))].mean(axis=1)
    return percentile_interval(means, confidence)


def mcnemar_p(right_a: np.ndarray, right_b: np.ndarray) -> float:
    """Two-sided exact McNemar test on the images exactly one of two models gets right."""
    a_only = int(np.sum(right_a & ~right_b))
    b_only = int(np.sum(~right_a & right_b))
    if a_only + b_only == 0:
        return 1.0
    return float(binomtest(a_only, a_only + b_only, 0.5).pvalue)


def paired_difference(preds_a: np.ndarray, preds_b: np.ndarray, truth: np.ndarray) -> Difference:
    """A minus B on the same test images; each ``preds`` is (n,) for one run or (seeds, n)."""
    preds_a, preds_b = np.atleast_2d(preds_a), np.atleast_2d(preds_b)
    if preds_a.shape[1] != len(truth) or preds_b.shape[1] != len(truth):
        raise ValueError(f"predictions for {preds_a.shape[1]} and {preds_b.shape[1]} images, truth for {len(truth)}")
    right_a, right_b = (preds_a == truth).astype(np.float64), (preds_b == truth).astype(np.float64)
    diff = float(right_a.mean() - right_b.mean())
    p, seed_std, method = None, None, "paired bootstrap"
    if len(preds_a) == 1 and len(preds_b) == 1:
        low, high = bootstrap_interval(right_a[0] - right_b[0])
        p = mcnemar_p(right_a[0] > 0, right_b[0] > 0)
    else:
        low, high = seeds_bootstrap_interval(right_a, right_b)
        method = "paired bootstrap (seeds resampled too)"
        if len(preds_a) == len(preds_b):
            seed_std = float(np.std(right_a.mean(axis=1) - right_b.mean(axis=1), ddof=1))
    return Difference(diff, low, high, len(truth), method, p, seed_std)


def seeds_bootstrap_interval(right_a: np.ndarray, right_b: np.ndarray, samples: int = BOOTSTRAP_SAMPLES,
                             seed: int = SEED, confidence: float = CONFIDENCE) -> tuple[float, float]:  # fmt: skip
    """Interval of mean(A) - mean(B) over (seeds, images) correctness, resampling images and seeds.

    Each bootstrap draw is a weighting: multinomial counts over the images (shared by A and B: paired) and over
    each row's seeds (shared when both rows have as many seeds: seed i of A and of B share data order and
    initialisation). Identical rows give a zero-width interval at 0.
    """
    rng = np.random.default_rng(seed)
    n, sa, sb = right_a.shape[1], len(right_a), len(right_b)
    seeds_a = rng.multinomial(sa, np.full(sa, 1 / sa), size=samples) / sa
    seeds_b = seeds_a if sa == sb else rng.multinomial(sb, np.full(sb, 1 / sb), size=samples) / sb
    per_seed_a, per_seed_b = np.empty((samples, sa)), np.empty((samples, sb))  # each seed's resampled accuracy
    chunk = max(1, 4_000_000 // n)
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        images = rng.multinomial(n, np.full(n, 1 / n), size=stop - start) / n
        per_seed_a[start:stop], per_seed_b[start:stop] = images @ right_a.T, images @ right_b.T
    means = (per_seed_a * seeds_a).sum(axis=1) - (per_seed_b * seeds_b).sum(axis=1)
    return percentile_interval(means, confidence)


def unpaired_difference(acc_a: float, n_a: int, acc_b: float, n_b: int) -> Difference:
    """A minus B from accuracies alone (normal approximation), for runs without per-image predictions."""
    z = 1.959963984540054  # the 97.5% normal quantile
    se = math.sqrt(acc_a * (1 - acc_a) / n_a + acc_b * (1 - acc_b) / n_b)
    diff = acc_a - acc_b
    return Difference(diff, diff - z * se, diff + z * se, min(n_a, n_b), "unpaired normal")


def judge(expected: str, against: dict[str, Difference]) -> tuple[str, str | None]:
    """The verdict on "``expected`` beats every row in ``against``" (each value: expected minus that row),
    and the row that decides it: the one beating ``expected`` most clearly when reversed, else the closest."""
    if not against:
        return TIE, None
    reversed_by = [k for k, d in against.items() if d.verdict == REVERSED]
    if reversed_by:
        return REVERSED, min(reversed_by, key=lambda k: against[k].high)
    closest = min(against, key=lambda k: against[k].low)
    return (HOLDS if against[closest].verdict == HOLDS else TIE), closest
