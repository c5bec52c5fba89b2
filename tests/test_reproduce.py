"""The table runner: specs -> runs -> results, figures and the comparison page; the cross-split rule."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from board_support import scalars

from recognizer.labels import BYCLASS_CHARS, MERGED_CHARS
from training import reproduce, runner, sweep
from training.claims import evaluate_claims
from training.collect import load_results
from training.config import RunConfig
from training.crosssplit import label_space, score_cross_split
from training.experiments import TABLES, Claim, Row, Spec, SpecError, load_spec
from training.plan import plan_table
from training.records import ResultRow, TableResult

REPO = Path(__file__).resolve().parents[1]
COMMITTED = {"paper": REPO / "assets/results/paper", "quick": REPO / "assets/results"}

B, M = BYCLASS_CHARS, MERGED_CHARS


def _score(preds: list[str], truth: list[str], train: tuple[str, ...], test: tuple[str, ...]) -> dict:
    return score_cross_split(np.array([train.index(c) for c in preds]), np.array([test.index(c) for c in truth]),
                             train, test)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The exact case mapping


def test_byclass_prediction_scored_on_merged_split() -> None:
    # 'c' from a byclass model is right for the merged class 'C/c'; 'a' is not 'A' ('a' and 'A' are not merged).
    assert _score(["c"], ["C"], B, M)["accuracy"] == 1.0
    assert _score(["C"], ["C"], B, M)["accuracy"] == 1.0
    assert _score(["a"], ["A"], B, M)["accuracy"] == 0.0
    assert _score(["a", "A", "b"], ["a", "A", "b"], B, M)["accuracy"] == 1.0


def test_merged_prediction_scored_on_byclass() -> None:
    # A merged 'C/c' prediction counts for both 'C' and 'c'; merged 'A' is wrong for 'a' and vice versa.
    assert _score(["C", "C"], ["C", "c"], M, B)["accuracy"] == 1.0
    assert _score(["A"], ["a"], M, B)["accuracy"] == 0.0
    assert _score(["a"], ["A"], M, B)["accuracy"] == 0.0
    assert _score(["O"], ["0"], M, B)["accuracy"] == 0.0


def test_same_classes_compare_as_they_are() -> None:
    assert _score(["c"], ["C"], B, B)["accuracy"] == 0.0  # byclass on byclass keeps case
    assert _score(["a", "A"], ["A", "A"], B, B)["accuracy"] == 0.5
    space, pred_map, true_map = label_space(M, M)  # bymerge <-> balanced: same 47 classes
    assert space == M and (pred_map == np.arange(47)).all() and (true_map == np.arange(47)).all()


def test_mixed_splits_are_scored_in_the_merged_classes() -> None:
    for train, test in ((B, M), (M, B)):
        space, _, _ = label_space(train, test)
        assert space == M
        result = _score(["c", "x"] if train == B else ["C", "X"], ["C", "x"] if test == B else ["C", "X"], train, test)
        assert np.array(result["confusion_matrix"]).shape == (47, 47)
        assert result["chars"] == list(M) and result["n_test"] == 2 and result["accuracy"] == 1.0


# ---------------------------------------------------------------------------------------------
# Specs and planning


def test_every_spec_loads_and_names_its_rows() -> None:
    for name in TABLES:
        spec = load_spec(name)
        assert spec.name == name and spec.title and spec.rows and spec.claims
    with pytest.raises(ValueError):
        load_spec("table99")


def test_a_spec_with_a_typo_fails_when_it_is_built() -> None:
    rows = (Row("a", "A", {"lr": 1e-3}), Row("b", "B", {"model": "residual_cnn", "model_args": {"blocks": 2}}))
    Spec("t", "T", {"split": "byclass"}, rows, (Claim("a is best", expect="a"),))  # the well-formed spec
    bad = {
        "unknown setting": dict(rows=(Row("a", "A", {"setting": 1}),) + rows[1:]),
        "unknown model argument": dict(rows=rows[:1] + (Row("b", "B", {"model": "residual_cnn",
                                                                        "model_args": {"block": 2}}),)),
        "unknown model": dict(base={"model": "resnet5"}),
        "claim names an unknown row": dict(claims=(Claim("c is best", expect="c"),)),
        "claim among an unknown row": dict(claims=(Claim("a is best", expect="a", among=("a", "z")),)),
        "unknown kind": dict(claims=(Claim("a is best", expect="a", kind="worst"),)),
        "unknown metric": dict(claims=(Claim("a is best", expect="a", metrics=("val_acc",)),)),
        "unknown budget": dict(budget="mnist"),
        "duplicate keys": dict(rows=rows + rows[:1]),
    }  # fmt: skip
    for problem, change in bad.items():
        values = {"name": "t", "title": "T", "base": {"split": "byclass"}, "rows": rows,
                  "claims": (Claim("a is best", expect="a"),), **change}  # fmt: skip
        with pytest.raises(SpecError):
            Spec(**values)
            pytest.fail(f"a spec with {problem} was accepted")
    # A claim may not name a reference row (it is never trained).
    with pytest.raises(SpecError):
        Spec("t", "T", {}, (Row("a", "A"), Row("r", "R", train=False)), (Claim("r is best", expect="r"),))


def test_the_planned_runs_are_the_committed_results_runs(emnist_env: Path) -> None:
    """Every row of every committed table, under its profile, plans exactly the runs its numbers came from."""
    for profile, folder in COMMITTED.items():
        for name, result in load_results(folder).items():
            planned = plan_table(name, profile, emnist_env)
            assert [p.row.key for p in planned] == [r.key for r in result.rows], f"{profile}/{name}"
            for p, row in zip(planned, result.rows, strict=True):
                assert (p.row.label, p.row.report, p.row.note) == (row.label, row.report, row.note)
                ids = [c.run_id() for c in p.configs]
                assert ids[:1] == ([row.run_id] if row.run_id else []), f"{profile}/{name}/{row.key}"
                if row.seed_run_ids is not None:
                    assert ids == row.seed_run_ids, f"{profile}/{name}/{row.key}"


def test_committed_tables_read_back_unchanged() -> None:
    """ResultRow/TableResult read every committed table and write it back byte for byte."""
    for folder in COMMITTED.values():
        present = [name for name in TABLES if (folder / f"{name}.json").exists()]
        assert set(TABLES) - set(present) <= {"studyB_ssl"}  # added after a folder's last full run
        for name in present:
            text = (folder / f"{name}.json").read_text()
            result = TableResult.from_dict(json.loads(text))
            assert json.dumps(TableResult.from_dict(result.to_dict()).to_dict(), indent=1) == text, name
            for row in result.rows:
                assert ResultRow.from_dict(row.to_dict()) == row


def test_one_learning_rate_has_one_row_key() -> None:
    table6, table7 = ({row.key for row in load_spec(name).rows} for name in ("table6", "table7"))
    assert table6 & table7 == {"lr_1e-4", "lr_1e-3"}
    assert "lr_2e-4" in table7


def test_identical_configs_share_one_run(emnist_env: Path) -> None:
    plans = {name: {p.row.key: p for p in plan_table(name, "quick", emnist_env)} for name in TABLES}
    run = lambda table, key: plans[table][key].configs[0].run_id()
    assert run("table2", "residual_cnn") == run("table3", "adam") == run("focal", "cross_entropy")
    assert run("table3", "nadam") == run("table4", "relu")
    assert run("table4", "swish") == run("table5", "blocks_3") == run("table6", "lr_1e-3") == run("table7", "lr_1e-3")
    assert run("table6", "lr_1e-4") == run("table7", "lr_1e-4")
    assert run("table7", "lr_2e-4") == run("table8", "byclass")
    assert run("table2", "lenet5") == run("class_weight", "unweighted")
    assert run("table7", "lr_3e-4") != run("table7", "lr_2e-4")
    config = plans["table4"]["swish"].configs[0]
    assert config.profile == "quick" and config.protocol == "pool"  # protocol fixed before hashing, not "auto"
    assert config.limit_train == 3000 and config.epochs == 3 and config.batch_size == 100
    assert plans["table2"]["wavemix_lite"].configs == []  # literature row: shown, not trained


def test_profiles_cap_epochs_and_seeds(emnist_env: Path) -> None:
    paper = {p.row.key: p for p in plan_table("studyB", "paper", emnist_env)}
    smoke = {p.row.key: p for p in plan_table("studyB", "smoke", emnist_env)}
    assert [c.seed for c in paper["cnn_focal"].configs] == [42, 43, 44, 45, 46]
    assert paper["epochs_100"].configs[0].epochs == 100 and paper["epochs_100"].configs[0].limit_train is None
    assert len(smoke["cnn_focal"].configs) == 2 and smoke["epochs_100"].configs[0].epochs == 2
    assert smoke["epochs_1"].configs[0].epochs == 1  # a row asking for fewer epochs keeps its own
    table2 = {p.row.key: p for p in plan_table("table2", "paper", emnist_env)}
    assert table2["lenet5"].configs[0].epochs == 50 and table2["lenet5"].configs[0].limit_train is None


def test_a_warm_started_run_equals_an_unbroken_one(emnist_env: Path, tmp_path: Path) -> None:
    base = {"model": "mlp_basic", "split": "mnist50", "batch_size": 100, "limit_train": 40, "profile": "test"}
    short, long = RunConfig(**base, epochs=1), RunConfig(**base, epochs=3)
    assert runner.chains([long, short]) == [[short, long]]
    chained, fresh = tmp_path / "chained", tmp_path / "fresh"
    events = list(sweep.run_chain([short.to_dict(), long.to_dict()], str(chained), "cpu", str(emnist_env), False))
    assert [(e.run_id, e.ended, e.error) for e in events] == [
        (short.run_id(), False, None), (short.run_id(), True, None), (long.run_id(), False, None),
        (long.run_id(), True, None),
    ]  # fmt: skip
    list(sweep.run_chain([long.to_dict()], str(fresh), "cpu", str(emnist_env), progress=False))
    a = json.loads((chained / long.run_id() / "metrics.json").read_text())
    b = json.loads((fresh / long.run_id() / "metrics.json").read_text())
    assert "warm start" in (chained / long.run_id() / "log.txt").read_text()
    assert a["epochs_run"] == b["epochs_run"] == 3
    assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-5)
    assert a["mnist_test_accuracy"] == b["mnist_test_accuracy"]
    # TensorBoard: the warm-started run's curve starts at epoch 1 like its history, one point per epoch.
    warm, unbroken = scalars(chained / long.run_id())["loss/train"], scalars(fresh / long.run_id())["loss/train"]
    assert [step for step, _ in warm] == [step for step, _ in unbroken] == [1, 2, 3]
    assert [v for _, v in warm] == pytest.approx([v for _, v in unbroken], rel=1e-5)
    # A chain whose runs are all finished trains nothing and says nothing.
    assert list(sweep.run_chain([short.to_dict(), long.to_dict()], str(chained), "cpu", str(emnist_env), False)) == []


def test_claims_are_judged_on_validation_not_test() -> None:
    rows = [
        ResultRow(key="a", label="A", status="done", val_accuracy=0.80, val_loss=0.5, test_accuracy=0.90, n_val=1000),
        ResultRow(key="b", label="B", status="done", val_accuracy=0.85, val_loss=0.6, test_accuracy=0.70, n_val=1000),
    ]  # fmt: skip
    (claim,) = evaluate_claims(rows, [Claim("A is best", expect="a")])
    assert claim.winner == "b" and claim.basis == "validation"
    assert claim.verdict == "not judged"  # no size of the test part: no interval
    rows[1].val_accuracy = 0.80  # a tie on accuracy falls to the lower validation loss
    (claim,) = evaluate_claims(rows, [Claim("A is best", expect="a")])
    assert claim.winner == "a"
    for row in rows:
        row.n_test = 1000
    (claim,) = evaluate_claims(rows, [Claim("A is best", expect="a")])
    assert claim.verdict == "holds" and claim.against == "b"  # the verdict itself is on the test images


# ---------------------------------------------------------------------------------------------
# End to end on the shipped fixture


def test_smoke_profile_of_every_table_end_to_end(emnist_env: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "results"
    # One torch thread: on a shared 2-core CPU two threads per run are several times slower.
    assert reproduce.main(["all", "--profile", "smoke", "--out", str(out), "--threads", "1"]) == 0

    for name in TABLES:
        result = json.loads((out / f"{name}.json").read_text())
        assert result["profile"] == "smoke" and result["claims"]
        trained = [r for r in result["rows"] if r["status"] != "reference"]
        assert trained and all(r["status"] == "done" for r in trained)
        for row in trained:
            assert row["profile"] == "smoke" and row["device"] and row["protocol"] in ("pool", "studyB")
            assert row["environment"]["git_commit"] and row["environment"]["torch"]
            assert 0.0 <= row["test_accuracy"] <= 1.0
        with (out / f"{name}.csv").open() as f:
            assert len(list(csv.DictReader(f))) == len(result["rows"])
        for figure in ("curves", "bars"):
            assert (out / "figures" / f"{name}-{figure}.png").stat().st_size > 1000

    table8 = json.loads((out / "table8.json").read_text())
    for row in table8["rows"]:
        assert set(row["cross"]) == {"byclass", "bymerge", "balanced"}
        # The diagonal is the trainer's own test score.
        assert row["cross"][row["split"]]["test_accuracy"] == pytest.approx(row["test_accuracy"])
        assert row["report"]["cross"]["byclass"]["test_accuracy"]
    assert len(list((out / "figures").glob("table8-confusion-*-*.png"))) == 9
    assert (out / "figures" / "table8-heatmap.png").exists() and (out / "figures" / "table8-confusion.png").exists()

    studyb = {r["key"]: r for r in json.loads((out / "studyB.json").read_text())["rows"]}
    # Every number's run is recorded beside the results: config, log, history and metrics.
    for run_id in studyb["cnn_focal"]["seed_run_ids"] + [table8["rows"][0]["run_id"]]:
        record = out / "runs" / run_id
        assert json.loads((record / "metrics.json").read_text())["run_id"] == run_id
        assert (record / "config.json").exists() and (record / "log.txt").exists()
    # Every trained run writes TensorBoard curves beside its history (`tensorboard --logdir runs`).
    for run in (p.parent for p in (tmp_path / "runs").glob("*/metrics.json")):
        assert list(run.glob("events.out.tfevents.*")) and "loss/train" in scalars(run), run.name
    assert studyb["cnn_focal"]["seeds"] == [42, 43] and studyb["cnn_focal"]["seeds_done"] == 2
    assert studyb["cnn_focal"]["mnist_test_accuracy_mean"] is not None
    assert studyb["cnn_focal"]["test_accuracy_std"] is not None

    page = (out / "README.md").read_text()
    for name in TABLES:
        assert load_spec(name).title in page
    assert "Profile **smoke**" in page and "protocol **pool" in page and "device **" in page and "holds" in page
    assert "88.27" in page  # the report's numbers beside ours

    winners = json.loads((out / "winners.json").read_text())
    assert set(winners["table8"]) == {"byclass", "bymerge", "balanced"}
    assert {"lenet5", "resnet50", "plain_cnn", "residual_cnn"} <= set(winners["best_by_family"])

    # Rerunning trains nothing: every run is found finished, so no Ray starts and no run folder changes.
    import ray

    monkeypatch.setattr(ray, "init", lambda *args, **kwargs: pytest.fail("Ray started with nothing to train"))
    stamp = (out / "table3.json").stat().st_mtime_ns
    logs = {log: log.stat().st_mtime_ns for log in (tmp_path / "runs").glob("*/log.txt")}
    assert reproduce.main(["table3", "--profile", "smoke", "--out", str(out), "--no-plots", "--threads", "1"]) == 0
    assert (out / "table3.json").stat().st_mtime_ns >= stamp
    assert {log: log.stat().st_mtime_ns for log in logs} == logs


def test_an_embedded_ray_sweep_reruns_only_missing_runs(emnist_env: Path, tmp_path: Path) -> None:
    """`--workers 2`: an embedded local Ray with two slots, started and shut down by the command."""
    out, runs = tmp_path / "results", tmp_path / "runs"
    args = ["class_weight", "--profile", "smoke", "--out", str(out), "--workers", "2", "--no-plots"]
    assert reproduce.main(args) == 0
    rows = json.loads((out / "class_weight.json").read_text())["rows"]
    assert all(r["status"] == "done" for r in rows)
    kept, redo = (runs / r["run_id"] / "metrics.json" for r in rows)
    kept_stamp = kept.stat().st_mtime_ns
    redo.unlink()
    assert reproduce.main(args) == 0
    assert redo.exists() and kept.stat().st_mtime_ns == kept_stamp
    assert "ray task on" in (redo.parent / "log.txt").read_text()


def test_collect_only_trains_nothing_and_marks_rows_missing(emnist_env: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    assert reproduce.main(["table5", "--profile", "smoke", "--collect-only", "--no-plots", "--out", str(out)]) == 0
    table = json.loads((out / "table5.json").read_text())
    assert [r["status"] for r in table["rows"]] == ["missing"] * 4
    assert not list((tmp_path / "runs").glob("*/metrics.json"))
    assert "not judged" in (out / "README.md").read_text()


def test_claims_wait_for_every_row() -> None:
    done = {"status": "done", "val_accuracy": 0.9, "val_loss": 0.3, "label": "swish"}
    rows = [ResultRow(**{**done, "key": "swish"}), ResultRow(**{**done, "key": "relu", "val_accuracy": 0.5,
                                                               "label": "relu"}),
            ResultRow(key="gelu", status="missing", label="gelu")]  # fmt: skip
    claim = evaluate_claims(rows, [Claim("swish is best", expect="swish")])[0]
    assert claim.verdict == "not judged" and "not finished" in claim.detail
    rows[2] = ResultRow(**{**done, "key": "gelu", "val_accuracy": 0.95, "label": "gelu"})
    assert evaluate_claims(rows, [Claim("swish is best", expect="swish")])[0].winner == "gelu"


def test_runs_start_longest_first_or_in_the_order_named(emnist_env: Path, tmp_path: Path) -> None:
    configs = [c for name in ("class_weight", "table2") for p in plan_table(name, "smoke", emnist_env)
               for c in p.configs]  # fmt: skip
    models = lambda chains: [c.model for chain in chains for c in chain]
    assert models(runner.pending_chains(configs, tmp_path / "runs"))[0] == "resnet50"  # the costliest first
    assert models(runner.pending_chains(configs, tmp_path / "runs", in_order=True))[:2] == ["lenet5", "lenet5"]
