"""training.stats on hand-made cases: ties, clear wins, reversals, seeds, the unpaired fallback."""

from __future__ import annotations

import numpy as np
import pytest

from training.stats import (
    HOLDS,
    REVERSED,
    TIE,
    Difference,
    judge,
    mcnemar_p,
    paired_difference,
    unpaired_difference,
)

RNG = np.random.default_rng(0)
TRUTH = RNG.integers(0, 10, 5000)


def with_accuracy(accuracy: float, seed: int = 1) -> np.ndarray:
    """Predictions right on a random ``accuracy`` share of the images."""
    rng = np.random.default_rng(seed)
    preds = TRUTH.copy()
    wrong = rng.random(len(TRUTH)) >= accuracy
    preds[wrong] = (TRUTH[wrong] + 1) % 10
    return preds


def test_identical_predictions_are_a_tie_with_zero_width():
    preds = with_accuracy(0.8)
    d = paired_difference(preds, preds, TRUTH)
    assert (d.diff, d.low, d.high) == (0.0, 0.0, 0.0)
    assert d.verdict == TIE and d.mcnemar_p == 1.0


def test_a_clearly_better_model_holds_and_the_reverse_is_reversed():
    good, bad = with_accuracy(0.9, seed=1), with_accuracy(0.8, seed=2)
    d = paired_difference(good, bad, TRUTH)
    assert d.verdict == HOLDS and 0.07 < d.diff < 0.13 and d.low > 0
    assert d.mcnemar_p < 1e-6
    assert paired_difference(bad, good, TRUTH).verdict == REVERSED


def test_a_tiny_difference_is_a_tie():
    a = with_accuracy(0.85, seed=3)
    b = a.copy()
    flip = np.flatnonzero(a == TRUTH)[:3]  # B misses 3 images of 5,000 that A gets
    b[flip] = (TRUTH[flip] + 1) % 10
    d = paired_difference(a, b, TRUTH)
    assert d.diff == pytest.approx(3 / 5000)
    assert d.verdict == TIE and d.low <= 0 <= d.high


def test_paired_interval_is_narrower_than_unpaired_for_correlated_models():
    a = with_accuracy(0.85, seed=4)
    b = a.copy()
    flip = np.flatnonzero(a == TRUTH)[:60]
    b[flip] = (TRUTH[flip] + 1) % 10
    paired = paired_difference(a, b, TRUTH)
    unpaired = unpaired_difference(float((a == TRUTH).mean()), len(TRUTH), float((b == TRUTH).mean()), len(TRUTH))
    assert paired.diff == pytest.approx(unpaired.diff)
    assert paired.high - paired.low < (unpaired.high - unpaired.low) / 2
    assert paired.verdict == HOLDS and unpaired.verdict == TIE and unpaired.method == "unpaired normal"


def test_seeds_give_a_spread_and_no_mcnemar():
    a = np.stack([with_accuracy(0.9, seed=s) for s in (10, 11, 12)])
    b = np.stack([with_accuracy(0.8, seed=s) for s in (20, 21, 22)])
    d = paired_difference(a, b, TRUTH)
    assert d.verdict == HOLDS and d.mcnemar_p is None and d.seed_std is not None and d.seed_std < 0.02


def test_mcnemar_counts_only_disagreements():
    right_a = np.array([True] * 10 + [False] * 0 + [True] * 5)
    right_b = np.array([False] * 10 + [True] * 5)
    assert mcnemar_p(right_a, right_b) < 0.01
    assert mcnemar_p(right_a, right_a) == 1.0


def test_judge_against_every_row():
    win = Difference(0.02, 0.01, 0.03, 1000, "paired bootstrap")
    tie = Difference(0.001, -0.004, 0.006, 1000, "paired bootstrap")
    lose = Difference(-0.02, -0.03, -0.01, 1000, "paired bootstrap")
    assert judge("e", {"a": win, "b": win}) == (HOLDS, "a")
    assert judge("e", {"a": win, "b": tie}) == (TIE, "b")
    assert judge("e", {"a": tie, "b": lose}) == (REVERSED, "b")
    assert Difference.from_dict(tie.to_dict()) == tie


def test_mismatched_lengths_fail():
    with pytest.raises(ValueError):
        paired_difference(TRUTH[:10], TRUTH[:10], TRUTH)


def test_seed_spread_widens_the_interval():
    """Two rows whose seeds disagree more than the test images can show: the image-only interval would exclude
    zero, the two-level one (images and seeds) must not."""
    a = np.stack([with_accuracy(acc, seed=s) for acc, s in ((0.86, 30), (0.80, 31), (0.84, 32))])
    b = np.stack([with_accuracy(acc, seed=s) for acc, s in ((0.85, 40), (0.77, 41), (0.82, 42))])
    d = paired_difference(a, b, TRUTH)
    image_only = paired_difference(a.reshape(1, -1), b.reshape(1, -1), np.tile(TRUTH, 3))
    assert d.method == "paired bootstrap (seeds resampled too)" and image_only.method == "paired bootstrap"
    assert d.high - d.low > image_only.high - image_only.low
    assert d.seed_std is not None and d.seed_std > 0.005


def test_identical_seeded_rows_tie_with_zero_width():
    a = np.stack([with_accuracy(0.85, seed=s) for s in (50, 51, 52)])
    d = paired_difference(a, a.copy(), TRUTH)
    assert (d.diff, d.low, d.high, d.verdict) == (0.0, 0.0, 0.0, TIE)
