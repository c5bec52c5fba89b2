"""Judging the reports' claims on a table's rows (``evaluate_claims``, written to ``TableResult.claims``): does
the report's conclusion hold here? Winners are picked on validation metrics; tables without a validation part
(Study B) or without a choice (Table 8) use test figures and say so. Each verdict comes from 95% intervals of the
expected row minus every rival on the test images (``training.stats``), paired where the runs kept per-image
predictions (``Evidence``). How a verdict is worded: ``recognizer.verdicts``. No plotting here: ``collect`` loads
this module, ``report`` draws.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from training.experiments.spec import Claim
from training.records import ClaimResult, ResultRow
from training.runfolder import RunFolder
from training.stats import CONFIDENCE, Difference, judge, paired_difference, unpaired_difference

MNIST_TEST_SIZE = 10_000  # Study B's full MNIST test set: its size when no predictions say it
Z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)


class Evidence:
    """Runs' per-image test predictions, from the first of ``folders`` whose run folder has them (the runs
    folder, then the records copied beside the results); none for runs recorded before they were kept."""

    def __init__(self, *folders: Path | None) -> None:
        self.folders = [Path(f) for f in folders if f is not None]
        self._found: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}

    def predictions(self, run_id: str, part: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(predicted classes, true classes) of ``run_id`` on ``part``, or None."""
        if run_id not in self._found:
            kept = (RunFolder(folder / run_id).predictions() for folder in self.folders)
            self._found[run_id] = next((p for p in kept if p), {})
        return self._found[run_id].get(part)


def _part(metric: str) -> str:
    """The test part a claim's deciding metric speaks for: Study B's full MNIST test set, else the test part."""
    return "mnist_test" if metric.startswith("mnist_test") else "test"


def _stacked(row: ResultRow, part: str, evidence: Evidence | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Every seed's predictions on ``part`` as (seeds, n) and the true classes, when each run kept them on the
    same images and the first seed's agree with the row's recorded accuracy (else they belong to another run)."""
    found = [evidence.predictions(run_id, part) for run_id in row.run_ids] if evidence else []
    if not found or any(f is None for f in found) or any(not np.array_equal(f[1], found[0][1]) for f in found):
        return None
    preds, labels = found[0]
    recorded = getattr(row, f"{part}_accuracy")
    if recorded is not None and abs(float(np.mean(preds == labels)) - recorded) > 1e-6:
        return None
    return np.stack([f[0] for f in found]), labels


def _figure(row: ResultRow, part: str, stacked: tuple | None) -> tuple[float, int | None, float | None, int]:
    """The row's accuracy on ``part`` (the mean over seeds where there are seeds), its number of images (None:
    unknown), its seed-to-seed std and its number of seeds."""
    name = f"{part}_accuracy"
    mean = getattr(row, f"{name}_mean")
    n = stacked[1].size if stacked is not None else row.n_test if part == "test" else None
    if mean is None:
        return getattr(row, name), n, None, 1
    return mean, n, getattr(row, f"{name}_std"), row.seeds_done or 1


def _unpaired(a: ResultRow, b: ResultRow, part: str, stacked_a: tuple | None,
              stacked_b: tuple | None) -> Difference | None:  # fmt: skip
    """A minus B from the rows' accuracies alone; with seeds, the spread of each mean over seeds widens it.
    None when a row has no figure on ``part`` (or no size of its test part) to compare."""
    acc_a, n_a, std_a, seeds_a = _figure(a, part, stacked_a)
    acc_b, n_b, std_b, seeds_b = _figure(b, part, stacked_b)
    if acc_a is None or acc_b is None or (part == "test" and (n_a is None or n_b is None)):
        return None
    assumed = n_a is None or n_b is None
    d = unpaired_difference(acc_a, n_a or MNIST_TEST_SIZE, acc_b, n_b or MNIST_TEST_SIZE)
    assumed_text = f", {MNIST_TEST_SIZE:,} MNIST test images assumed" if assumed else ""
    if std_a is None or std_b is None:
        return dataclasses.replace(d, method=d.method + assumed_text)
    se = math.sqrt(((d.high - d.diff) / Z) ** 2 + std_a**2 / seeds_a + std_b**2 / seeds_b)
    return dataclasses.replace(d, low=d.diff - Z * se, high=d.diff + Z * se, seed_std=math.sqrt(std_a**2 + std_b**2),
                               method=f"{d.method} + seed spread{assumed_text}")  # fmt: skip


def compare(expected: ResultRow, other: ResultRow, part: str, evidence: Evidence | None) -> Difference | None:
    """``expected`` minus ``other`` on ``part``: paired over the test images when both rows' runs kept their
    predictions on the same images, else unpaired from the recorded accuracies."""
    a, b = _stacked(expected, part, evidence), _stacked(other, part, evidence)
    if a is not None and b is not None and np.array_equal(a[1], b[1]):
        return paired_difference(a[0], b[0], a[1])
    return _unpaired(expected, other, part, a, b)


def _judged(expected: str, comparisons: dict[str, Difference]) -> dict[str, Any]:
    """The ClaimResult fields of a verdict on "``expected`` beats each of ``comparisons``"."""
    verdict, against = judge(expected, comparisons)
    return {"verdict": verdict, "against": against, "interval": comparisons[against] if against else None,
            "comparisons": dict(comparisons)}


def _rank(row: ResultRow, metrics: Sequence[str]) -> tuple:
    """Higher is better; losses count negatively; a missing value ranks last."""
    key = []
    for metric in metrics:
        value = getattr(row, metric)
        key.append(-math.inf if value is None else (-value if "loss" in metric else value))
    return tuple(key)


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}" if "loss" in metric else f"{100 * value:.2f}%"


def _short(metric: str) -> str:
    names = {"val_accuracy": "validation accuracy", "val_loss": "validation loss",
             "test_accuracy_mean": "mean accuracy over seeds on the report's 100 test images",
             "mnist_test_accuracy_mean": "mean accuracy over seeds on the full MNIST test set"}  # fmt: skip
    return names.get(metric, metric)


def _best_detail(expected: ResultRow, ranked: list[ResultRow], claim: Claim) -> tuple[str, dict[str, bool]]:
    """Which row the deciding figure picks (and the next one), the noise of that figure, the figures shown
    beside it; and whether ``expected`` is best on each of those."""
    main, winner = claim.metrics[0], ranked[0]
    if winner is expected or _rank(winner, claim.metrics) == _rank(expected, claim.metrics):
        runner_up = next((r for r in ranked if r is not expected), None)
        tied = runner_up is not None and _rank(runner_up, claim.metrics) == _rank(expected, claim.metrics)
        detail = f"{expected.label} is best on {_short(main)} ({_fmt(main, getattr(expected, main))}"
        if runner_up:
            detail += f"; {'tied with' if tied else 'next'} {runner_up.label} {_fmt(main, getattr(runner_up, main))}"
        detail += ")"
    else:
        detail = (f"{winner.label} is best on {_short(main)} ({_fmt(main, getattr(winner, main))}), "
                  f"{expected.label} has {_fmt(main, getattr(expected, main))}")  # fmt: skip
    detail += _noise(expected, main)
    holds_on = {}
    for other in claim.also:  # a second figure shown beside the deciding one
        best = max(ranked, key=lambda r: _rank(r, [other]))
        detail += (f"; on {_short(other)}: {expected.label} {_fmt(other, getattr(expected, other))}, best "
                   f"{best.label} {_fmt(other, getattr(best, other))}")  # fmt: skip
        holds_on[other] = best is expected or _rank(best, [other]) == _rank(expected, [other])
    return detail, holds_on


def _best_claim(rows: dict[str, ResultRow], claim: Claim, evidence: Evidence | None) -> ClaimResult:
    metrics = list(claim.metrics)
    among = [rows[k] for k in (claim.among or rows) if k in rows]
    done = [r for r in among if r.done and getattr(r, metrics[0]) is not None]
    expected = rows.get(claim.expect)
    out = ClaimResult(claim.text, "best", claim.expect, metrics, part=_part(metrics[0]),
                      basis="validation" if metrics[0].startswith("val_") else "test")  # fmt: skip
    # A verdict over part of a table could crown a row only because its rivals have not run yet.
    unfinished = [r for r in among if r.status not in ("done", "reference")]
    if unfinished:
        return dataclasses.replace(out, detail=f"{len(unfinished)} of {len(among)} runs not finished yet: not judged")
    if expected is None or expected not in done or len(done) < 2:
        return dataclasses.replace(out, detail="not enough finished runs to judge")
    ranked = sorted(done, key=lambda r: _rank(r, metrics), reverse=True)
    detail, holds_on = _best_detail(expected, ranked, claim)
    comparisons = {r.key: compare(expected, r, out.part, evidence) for r in done if r is not expected}
    if None in comparisons.values():
        return dataclasses.replace(out, winner=ranked[0].key, holds_on=holds_on,
                                   detail=f"{detail}; some rows have no test figures to judge on")  # fmt: skip
    return dataclasses.replace(out, winner=ranked[0].key, detail=detail, holds_on=holds_on,
                               **_judged(expected.key, comparisons))  # fmt: skip


def _noise(expected: ResultRow, main: str) -> str:
    """How much the deciding figure moves by chance: the spread over seeds, or a validation standard error."""
    std = getattr(expected, main.replace("_mean", "_std")) if main.endswith("_mean") else None
    if std is not None:
        return f"; seed-to-seed std of {expected.label} {100 * std:.2f} pts over {expected.seeds_done} seeds"
    if main == "val_accuracy" and expected.n_val:
        p = expected.val_accuracy
        se = 100 * math.sqrt(p * (1 - p) / expected.n_val)
        return f"; 1 standard error of a validation accuracy here is about {se:.2f} pts"
    return ""


def _cross_claim(rows: dict[str, ResultRow], claim: Claim) -> ClaimResult:
    """Table 8: the expected row against every other on each column's test part, unpaired (the cross-split
    scoring keeps no per-image predictions); it holds only if it holds on every column."""
    out = ClaimResult(claim.text, "cross_best", claim.expect, ["test_accuracy"], "test")
    done = [r for r in rows.values() if r.done and r.cross]
    expected = rows.get(claim.expect)
    if len(done) < 2 or expected not in done:
        return dataclasses.replace(out, detail="not enough finished runs to judge")
    winners, parts, comparisons = {}, [], {}
    for column in claim.columns:
        winners[column] = max(done, key=lambda r: r.cross[column].test_accuracy).key
        cells = ", ".join(f"{r.key} {100 * r.cross[column].test_accuracy:.2f}%" for r in done)
        parts.append(f"on {column}: {cells}")
        mine = expected.cross[column]
        for r in done:
            if r is not expected:
                theirs = r.cross[column]
                comparisons[f"{r.key} on {column}"] = unpaired_difference(
                    mine.test_accuracy, mine.n_test, theirs.test_accuracy, theirs.n_test)  # fmt: skip
    return dataclasses.replace(out, winner=winners, detail="; ".join(parts), **_judged(expected.key, comparisons))


def evaluate_claims(rows: list[ResultRow], claims: Sequence[Claim], evidence: Evidence | None = None,
                    ) -> list[ClaimResult]:  # fmt: skip
    """Each claim judged on the rows (as written to ``TableResult.claims``), paired over test images where
    ``evidence`` has the runs' predictions."""
    by_key = {r.key: r for r in rows}
    return [_cross_claim(by_key, c) if c.kind == "cross_best" else _best_claim(by_key, c, evidence) for c in claims]
