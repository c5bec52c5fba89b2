"""The trainer: learning, determinism, resume after a kill, and what a run folder holds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from board_support import scalars

from training.config import RunConfig
from training.records import Metrics
from training.runfolder import RunFolder, load_trained
from training.trainer import TrainState, train
from training.utils import stratified_subset

REPO = Path(__file__).resolve().parents[1]
TINY = dict(model="lenet5", split="byclass", protocol="pool", epochs=3, batch_size=50, lr=3e-3)


def _comparable(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_a_short_run_learns_and_writes_its_folder(
    emnist_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = RunConfig(**TINY)
    metrics = train(config, runs_dir=tmp_path, progress=False)
    run = tmp_path / config.run_id()
    for name in ("config.json", "log.txt", "history.json", "history.csv", "best.pt", "checkpoint.pt", "metrics.json"):
        assert (run / name).exists(), name
    history = json.loads((run / "history.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert metrics.n_test == 134 and len(metrics.confusion_matrix) == 62
    assert 0 <= metrics.weighted_f1 <= 1 and metrics.train_seconds > 0
    assert metrics.environment["torch"]
    assert list(json.loads((run / "metrics.json").read_text())) == list(metrics.to_dict())
    # Per-image test predictions, kept for paired comparisons: they give the recorded accuracy and matrix.
    preds, labels = RunFolder(run).predictions()["test"]
    assert len(preds) == len(labels) == metrics.n_test
    assert np.mean(preds == labels) == pytest.approx(metrics.test_accuracy)
    assert np.bincount(preds, minlength=62).tolist() == np.sum(metrics.confusion_matrix, axis=0).tolist()
    model, again = load_trained(run)
    assert again.run_id == config.run_id()
    # A finished run is not trained again, and says so (stderr and its log).
    capsys.readouterr()
    assert train(config, runs_dir=tmp_path, progress=False).train_seconds == metrics.train_seconds
    said = f"run {config.run_id()} is already finished (test accuracy {metrics.test_accuracy:.4f})"
    assert said in capsys.readouterr().err and said in (run / "log.txt").read_text()


def test_same_seed_same_history(emnist_env: Path, tmp_path: Path) -> None:
    config = RunConfig(**{**TINY, "model": "residual_cnn", "model_args": {"blocks": 1}, "epochs": 2})
    a = train(config, runs_dir=tmp_path / "a", progress=False)
    b = train(config, runs_dir=tmp_path / "b", progress=False)
    ha = json.loads((tmp_path / "a" / config.run_id() / "history.json").read_text())
    hb = json.loads((tmp_path / "b" / config.run_id() / "history.json").read_text())
    assert _comparable(ha) == _comparable(hb)
    assert a.test_loss == b.test_loss


def test_early_stopping_and_plateau(emnist_env: Path, tmp_path: Path) -> None:
    # A learning rate of ~0 cannot improve validation loss, so patience 1 stops after two epochs.
    config = RunConfig(**{**TINY, "lr": 1e-12, "epochs": 10, "early_stop_patience": 1, "plateau_patience": 0,
                          "min_delta": 1.0})
    metrics = train(config, runs_dir=tmp_path, progress=False)
    history = json.loads((tmp_path / config.run_id() / "history.json").read_text())
    assert metrics.epochs_run == 2 and metrics.best_epoch == 1
    assert history[1]["lr"] == pytest.approx(1e-12) and len(history) == 2


def test_study_b_runs_without_validation(emnist_env: Path, tmp_path: Path) -> None:
    config = RunConfig(model="mlp_basic", split="mnist50", epochs=2, batch_size=100)
    metrics = train(config, progress=False)  # no runs_dir: $RUNS_DIR, read when the run starts
    assert Metrics.read(Path(os.environ["RUNS_DIR"]) / config.run_id()) == metrics
    assert metrics.n_val == 0 and metrics.n_test == 100 and metrics.epochs_run == 2
    assert 0 <= metrics.mnist_test_accuracy <= 1
    preds = RunFolder(Path(os.environ["RUNS_DIR"]) / config.run_id()).predictions()
    assert len(preds["test"][0]) == 100 and len(preds["mnist_test"][1]) > 100  # the fixture's MNIST test slice
    assert np.mean(preds["mnist_test"][0] == preds["mnist_test"][1]) == pytest.approx(metrics.mnist_test_accuracy)


def test_a_run_recorded_before_predictions_has_none(tmp_path: Path) -> None:
    assert RunFolder(tmp_path).predictions() == {}


def test_stratified_subset_keeps_proportions() -> None:
    import numpy as np

    labels = np.array([0] * 800 + [1] * 200)
    keep = stratified_subset(labels, 100, seed=1)
    assert len(keep) == 100 and abs(int((labels[keep] == 1).sum()) - 20) <= 1
    assert np.array_equal(keep, stratified_subset(labels, 100, seed=1))


def test_state_reads_checkpoints_written_before_best_epoch_existed() -> None:
    old = {"epoch": 3, "best_val": 0.5, "bad_epochs": 1, "train_seconds": 2.0, "history": [{"epoch": 1}]}
    state = TrainState.from_dict(old)
    assert state.epoch == 3 and state.best_epoch is None and state.history == [{"epoch": 1}]


def _train_cmd(runs: Path) -> list[str]:
    return [sys.executable, "-m", "training", "train", "--model", "residual_cnn", "--blocks", "1", "--split",
            "byclass", "--protocol", "pool", "--epochs", "4", "--batch-size", "20", "--runs-dir", str(runs)]


@pytest.mark.slow
def test_resume_after_kill_equals_an_unbroken_run(emnist_env: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # The unbroken and the resumed run in this process (the same settings as the command's, so the same run id,
    # checked below); the killed one as a command, since a kill must hit a process of its own.
    unbroken = RunConfig(model="residual_cnn", model_args={"blocks": 1}, split="byclass", protocol="pool", epochs=4,
                         batch_size=20)  # fmt: skip
    train(unbroken, runs_dir=tmp_path / "unbroken", device="cpu", progress=False)

    runs = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(runs), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    history = None
    while time.time() < deadline:
        found = list(runs.glob("*/history.json"))
        if found and json.loads(found[0].read_text()):
            history = found[0]
            break
        time.sleep(0.05)
    assert history is not None, "the run never finished an epoch"
    proc.send_signal(signal.SIGKILL)  # mid-epoch 2: no clean-up code runs
    proc.wait()
    assert not (history.parent / "metrics.json").exists()
    resumed = train(unbroken, runs_dir=runs, device="cpu", progress=False)
    assert resumed.run_id == history.parent.name and "resuming" in (history.parent / "log.txt").read_text()

    a = json.loads(next((tmp_path / "unbroken").glob("*/metrics.json")).read_text())
    b = json.loads((history.parent / "metrics.json").read_text())
    assert a["run_id"] == b["run_id"]
    for key in ("test_loss", "test_accuracy", "weighted_f1", "confusion_matrix", "epochs_run"):
        assert a[key] == b[key], key
    ha = json.loads((tmp_path / "unbroken" / a["run_id"] / "history.json").read_text())
    assert _comparable(ha) == _comparable(json.loads(history.read_text()))
    # TensorBoard: the killed process's points and the resumed one's make one point per epoch, as the history.
    curves = scalars(history.parent)
    assert curves["loss/train"] == [(row["epoch"], pytest.approx(row["train_loss"])) for row in ha]
    assert [step for step, _ in curves["accuracy/val"]] == [1, 2, 3, 4] and len(curves["test/accuracy"]) == 1
