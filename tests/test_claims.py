"""Claims judged with their intervals: paired over the runs' per-image predictions, unpaired without them,
and ``reproduce --rejudge`` re-judging committed results without touching their other numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from recognizer.verdicts import interval_text, verdict_cell
from training import reproduce
from training.claims import Evidence, evaluate_claims
from training.experiments import Claim
from training.records import ClaimResult, CrossCell, ResultRow, TableResult
from training.runfolder import RunFolder

REPO = Path(__file__).resolve().parents[1]
N = 2000
TRUTH = np.arange(N) % 10


def _predictions(right: float, seed: int) -> np.ndarray:
    """Predictions right on the first ``right`` fraction of images, wrong (shifted class) on the rest, shuffled."""
    preds = TRUTH.copy()
    wrong = np.random.default_rng(seed).permutation(N)[: round((1 - right) * N)]
    preds[wrong] = (preds[wrong] + 1) % 10
    return preds


def _row(runs: Path, key: str, val_accuracy: float, preds: np.ndarray | None, test_accuracy: float | None = None,
         ) -> ResultRow:  # fmt: skip
    """A finished row whose run (``run-<key>``) kept ``preds`` on the test part, or kept nothing."""
    if preds is not None:
        RunFolder(runs / f"run-{key}").write_predictions({"test": (preds, TRUTH)})
        test_accuracy = float(np.mean(preds == TRUTH))
    return ResultRow(key=key, label=key.upper(), status="done", run_id=f"run-{key}", val_accuracy=val_accuracy,
                     val_loss=0.5, n_val=1000, n_test=N, test_accuracy=test_accuracy)  # fmt: skip


def _judge(rows: list[ResultRow], runs: Path) -> ClaimResult:
    (claim,) = evaluate_claims(rows, [Claim("A is best", expect="a")], Evidence(runs))
    return claim


def test_identical_predictions_tie_with_a_zero_width_interval(tmp_path: Path) -> None:
    preds = _predictions(0.8, 0)
    claim = _judge([_row(tmp_path, "a", 0.80, preds), _row(tmp_path, "b", 0.79, preds.copy())], tmp_path)
    assert claim.verdict == "tie" and claim.against == "b" and claim.winner == "a"  # validation still picks a
    assert claim.interval.diff == claim.interval.low == claim.interval.high == 0.0
    assert claim.interval.method == "paired bootstrap" and claim.interval.mcnemar_p == 1.0
    assert claim.interval.n == N


def test_a_clearly_better_expected_row_holds(tmp_path: Path) -> None:
    rows = [_row(tmp_path, "a", 0.9, _predictions(0.9, 1)), _row(tmp_path, "b", 0.8, _predictions(0.7, 2)),
            _row(tmp_path, "c", 0.7, _predictions(0.6, 3))]  # fmt: skip
    claim = _judge(rows, tmp_path)
    assert claim.verdict == "holds" and claim.against == "b"  # the closest rival decides
    assert set(claim.comparisons) == {"b", "c"} and all(d.low > 0 for d in claim.comparisons.values())
    assert claim.interval.mcnemar_p < 1e-6
    assert verdict_cell(claim.to_dict()).startswith("holds: +20.") and "unpaired" not in verdict_cell(claim.to_dict())
    assert "paired bootstrap over 2,000 test images; McNemar p = " in interval_text(claim.to_dict())


def test_a_better_rival_reverses_the_claim_even_when_validation_picked_the_expected_row(tmp_path: Path) -> None:
    rows = [_row(tmp_path, "a", 0.9, _predictions(0.7, 1)), _row(tmp_path, "b", 0.8, _predictions(0.9, 2)),
            _row(tmp_path, "c", 0.7, _predictions(0.71, 3))]  # fmt: skip
    claim = _judge(rows, tmp_path)
    assert claim.winner == "a" and claim.verdict == "reversed" and claim.against == "b"
    assert claim.interval.high < 0
    assert ClaimResult.from_dict(json.loads(json.dumps(claim.to_dict()))) == claim


def test_a_row_without_predictions_is_compared_unpaired(tmp_path: Path) -> None:
    rows = [_row(tmp_path, "a", 0.9, _predictions(0.8, 1)), _row(tmp_path, "b", 0.8, None, test_accuracy=0.79)]
    claim = _judge(rows, tmp_path)
    assert claim.interval.method == "unpaired normal" and claim.interval.mcnemar_p is None
    assert claim.verdict == "tie" and claim.interval.low < 0.01 < claim.interval.high
    judged = claim.to_dict()
    assert "unpaired" in verdict_cell(judged) and "predate per-image predictions" in interval_text(judged)
    # Predictions that disagree with the row's recorded accuracy belong to another run: not used.
    rows[1] = _row(tmp_path, "b", 0.8, _predictions(0.5, 2))
    rows[1].test_accuracy = 0.79
    assert _judge(rows, tmp_path).interval.method == "unpaired normal"


def test_seeds_are_stacked_and_their_spread_reported(tmp_path: Path) -> None:
    rows = []
    for key, right in (("a", 0.9), ("b", 0.6)):
        ids = [f"{key}-{seed}" for seed in range(3)]
        for seed, run_id in enumerate(ids):
            RunFolder(tmp_path / run_id).write_predictions({"test": (_predictions(right + seed / 100, seed), TRUTH)})
        rows.append(ResultRow(key=key, label=key, status="done", run_id=ids[0], seed_run_ids=ids, seeds_done=3,
                              n_test=N, test_accuracy=right, test_accuracy_mean=right + 0.01,
                              test_accuracy_std=0.01))  # fmt: skip
    (claim,) = evaluate_claims(rows, [Claim("A is best", expect="a", metrics=("test_accuracy_mean",))],
                               Evidence(tmp_path))  # fmt: skip
    assert claim.basis == "test" and claim.verdict == "holds"
    assert claim.interval.method == "paired bootstrap (seeds resampled too)"
    assert claim.interval.seed_std is not None


def test_missing_rows_are_not_judged_and_old_records_read_back(tmp_path: Path) -> None:
    rows = [_row(tmp_path, "a", 0.9, None, 0.9), ResultRow(key="b", label="B", status="missing")]
    claim = _judge(rows, tmp_path)
    assert claim.verdict == "not judged" and claim.interval is None and verdict_cell(claim.to_dict()) == "not judged"
    old = {"text": "t", "kind": "best", "expect": "a", "metrics": ["val_accuracy"], "basis": "validation",
           "holds": False, "winner": "b", "detail": "d", "holds_on_test_accuracy_mean": True}  # fmt: skip
    again = ClaimResult.from_dict(old)
    assert again.verdict == "does not hold" and again.holds_on == {"test_accuracy_mean": True}


def _cross_row(key: str, accuracies: dict[str, float]) -> ResultRow:
    cells = {c: CrossCell(a, 0.9, 1.0, 20_000, "pool", [], "cpu", []) for c, a in accuracies.items()}
    return ResultRow(key=key, label=key, status="done", cross=cells)


def test_table8_holds_only_on_every_column() -> None:
    claim = Claim("byclass is best", expect="byclass", kind="cross_best", columns=("bymerge", "balanced"))
    rows = [_cross_row("byclass", {"bymerge": 0.92, "balanced": 0.905}),
            _cross_row("bymerge", {"bymerge": 0.90, "balanced": 0.904})]  # fmt: skip
    (judged,) = evaluate_claims(rows, [claim])
    assert judged.verdict == "tie" and judged.against == "bymerge on balanced"
    assert judged.interval.method == "unpaired normal" and set(judged.comparisons) == {
        "bymerge on bymerge", "bymerge on balanced"}  # fmt: skip
    rows[1].cross["balanced"].test_accuracy = 0.95
    assert evaluate_claims(rows, [claim])[0].verdict == "reversed"
    rows[1].cross["balanced"].test_accuracy = 0.85
    assert evaluate_claims(rows, [claim])[0].verdict == "holds"


def test_rejudge_changes_only_the_claims(tmp_path: Path) -> None:
    out = tmp_path / "results"
    out.mkdir()
    for name in ("table4", "class_weight"):
        for ext in ("json", "csv"):
            shutil.copy(REPO / "assets/results" / f"{name}.{ext}", out)
    before = {name: json.loads((out / f"{name}.json").read_text()) for name in ("table4", "class_weight")}
    csv_before = (out / "table4.csv").read_text()
    # The records beside the results carry predictions for the two class_weight runs: those are paired.
    table = TableResult.read(out / "class_weight.json")
    for row, right in zip(table.done, (0.9, 0.6), strict=True):
        preds = _predictions(right, 0)
        RunFolder(out / "runs" / row.run_id).write_predictions({"test": (preds, TRUTH)})
        row.test_accuracy = float(np.mean(preds == TRUTH))
    table.write(out)  # rows whose recorded accuracy matches the predictions
    before["class_weight"] = json.loads((out / "class_weight.json").read_text())

    args = ["table4", "class_weight", "--out", str(out), "--rejudge", "--runs-dir", str(tmp_path / "none")]
    assert reproduce.main(args) == 0
    for name, old in before.items():
        new = json.loads((out / f"{name}.json").read_text())
        assert {k: v for k, v in new.items() if k != "claims"} == {k: v for k, v in old.items() if k != "claims"}
        assert all(c["verdict"] in ("holds", "tie", "reversed") and c["interval"] for c in new["claims"])
    assert (out / "table4.csv").read_text() == csv_before
    (weights,) = TableResult.read(out / "class_weight.json").claims
    assert weights.interval.method == "paired bootstrap" and weights.verdict == "holds"
    assert TableResult.read(out / "table4.json").claims[0].interval.method == "unpaired normal"
    page = (out / "README.md").read_text()
    assert "**holds**: unweighted \N{MINUS SIGN} weighted = +30.00 pts" in page and "McNemar p" in page
