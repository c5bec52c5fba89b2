"""A run's folder, ``runs/<run id>/``: what it holds and the one place that reads and writes it (except the
TensorBoard event files beside the history, ``events.out.tfevents.*``, which ``training.board.Board`` writes).

config.json (the RunConfig), log.txt (one line per event), history.json/.csv (one row per epoch),
checkpoint.pt (after every finished epoch, so a killed run resumes there), best.pt (the best weights so far)
and, once the run is done, predictions.npz (the class index the run's model gives each test image, per test
part: what paired comparisons between runs need, training/stats.py) and metrics.json (``training.records.Metrics``).
``load_trained`` opens a finished run's best weights and ``load_pretrained`` a finished pretraining's encoder
(``encoder.pt`` beside ``pretrain.json``), here with the files they read rather than beside the loops that wrote them.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from recognizer.files import write_atomic, write_json
from training.config import RunConfig
from training.models import create_model
from training.optim import unwrap, wrap_model
from training.records import Metrics

# What a run's record is, without its weights: enough to trace every published number back to its run.
ENCODER = "encoder.pt"  # a finished pretraining's encoder weights (training/ssl.py)
PRETRAIN_DONE = "pretrain.json"  # a pretraining's summary, written last: done once it exists
RUN_RECORD = ("config.json", "log.txt", "history.csv", "history.json", "predictions.npz", "metrics.json")


class RunFolder:
    """The files of one run; ``echo`` also prints what is logged (above any progress bar)."""

    def __init__(self, path: Path, echo: bool = False) -> None:
        self.path = Path(path)
        self.echo = echo
        self.config_path = self.path / "config.json"
        self.log_path = self.path / "log.txt"
        self.history_json = self.path / "history.json"
        self.history_csv = self.path / "history.csv"
        self.checkpoint_path = self.path / "checkpoint.pt"
        self.best_path = self.path / "best.pt"
        self.predictions_path = self.path / "predictions.npz"
        self.metrics_path = self.path / Metrics.FILE

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def done(self) -> bool:
        """A run is done once its metrics are written (they are written last)."""
        return self.metrics_path.exists()

    def metrics(self) -> Metrics:
        return Metrics.read(self.path)

    def write_config(self, config: RunConfig) -> None:
        write_json(self.config_path, config.to_dict())

    def log(self, message: str, echo: bool | None = None) -> None:
        """Append one line to log.txt (opened per line, so a killed run loses nothing written)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:
            log.write(message + "\n")
        if self.echo if echo is None else echo:
            tqdm.write(message)

    def write_history(self, history: list[dict]) -> None:
        write_json(self.history_json, history)
        if history:
            table = io.StringIO(newline="")
            writer = csv.DictWriter(table, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)
            write_atomic(self.history_csv, table.getvalue())

    def save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        _save_atomic(checkpoint, self.checkpoint_path)

    def load_checkpoint(self, device: torch.device | str) -> dict[str, Any] | None:
        """The last finished epoch's checkpoint, or None when the run has not finished one."""
        if not self.checkpoint_path.exists():
            return None
        # Not weights-only: the checkpoint also holds the optimizer's and scheduler's plain-Python state.
        return torch.load(self.checkpoint_path, map_location=device, weights_only=False)

    def save_best(self, model: torch.nn.Module) -> None:
        _save_atomic(model.state_dict(), self.best_path)

    def load_best(self, device: torch.device | str) -> dict[str, torch.Tensor]:
        return torch.load(self.best_path, map_location=device, weights_only=True)

    def write_predictions(self, predictions: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Per test part (``test``, Study B's ``mnist_test``): the predicted class of every image, in order, and
        its true class (``<part>_labels``), so a record alone can be compared image by image with another."""
        arrays = {}
        for part, (preds, labels) in predictions.items():
            arrays[part] = np.asarray(preds, dtype=np.uint16)
            arrays[f"{part}_labels"] = np.asarray(labels, dtype=np.uint16)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        write_atomic(self.predictions_path, buffer.getvalue())

    def predictions(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{part: (predicted classes, true classes)}, or {} for a run recorded before predictions were kept."""
        if not self.predictions_path.exists():
            return {}
        with np.load(self.predictions_path) as saved:
            return {part: (saved[part].astype(np.int64), saved[f"{part}_labels"].astype(np.int64))
                    for part in saved.files if not part.endswith("_labels")}  # fmt: skip

    def copy_record(self, target: Path) -> None:
        """Copy the run's record (RUN_RECORD, no weights) into ``target``."""
        target = Path(target)
        target.mkdir(parents=True, exist_ok=True)
        for name in RUN_RECORD:
            if (self.path / name).exists():
                shutil.copy2(self.path / name, target / name)


def _save_atomic(obj: object, path: Path) -> None:
    """torch.save to a temporary file, then rename: a kill mid-save leaves the previous file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_trained(run_dir: Path, device: str = "cpu") -> tuple[nn.Module, Metrics]:
    """The best weights of a finished run and its metrics."""
    run = RunFolder(run_dir)
    metrics = run.metrics()
    model = wrap_model(create_model(metrics.config.model, len(metrics.chars), **metrics.config.model_args),
                       metrics.config)  # fmt: skip
    model.load_state_dict(run.load_best(device))
    return unwrap(model).eval(), metrics


def load_pretrained(model: nn.Module, folder: Path) -> None:
    """Load a finished pretraining's encoder into ``model.body`` (a Study B run's ``init_from``)."""
    path = Path(folder) / ENCODER
    if not (Path(folder) / PRETRAIN_DONE).exists():
        raise FileNotFoundError(f"{folder} is not a finished pretraining (no {PRETRAIN_DONE}): "
                                "run its table's reproduce first")
    model.body.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
