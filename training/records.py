"""The records one stage hands the next, each a dataclass with one reader and one writer.

- ``Metrics``: a finished run's ``metrics.json``. Written by the trainer (``Metrics.write``), read by the runner,
  the cross-split scoring and the export (``Metrics.read``).

A record's JSON keeps the field names and order of the files already committed under ``assets/`` and
``exported_models/runs/``, so every published record reads back unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recognizer.files import write_json
from training.config import RunConfig


class RecordError(ValueError):
    """A record file is missing fields or is not what its name says."""


@dataclass
class Metrics:
    """A finished run: its config, its data, its test figures and where it ran."""

    run_id: str
    config: RunConfig
    split: str
    protocol: str
    data_source: str
    device: str
    test_loss: float
    test_accuracy: float
    weighted_f1: float
    per_class_accuracy: list[float | None]
    confusion_matrix: list[list[int]]
    train_seconds: float
    inference_seconds: float
    epochs_run: int
    best_epoch: int
    best_val_loss: float | None
    best_val_accuracy: float | None
    n_train: int
    n_val: int
    n_test: int
    chars: list[str]
    environment: dict[str, Any] = field(default_factory=dict)
    # Study B also scores every run on the full MNIST test set (the data's extra test part).
    mnist_test_accuracy: float | None = None
    mnist_test_loss: float | None = None

    FILE = "metrics.json"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["config"] = self.config.to_dict()
        for optional in ("mnist_test_accuracy", "mnist_test_loss"):
            if data[optional] is None:
                del data[optional]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metrics:
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}  # fmt: skip
        missing, unknown = sorted(required - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise RecordError(f"not a metrics record: missing {missing}, unknown {unknown}")
        return cls(**{**data, "config": RunConfig.from_dict(data["config"])})

    @classmethod
    def read(cls, run_dir: Path) -> Metrics:
        path = Path(run_dir) / cls.FILE
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, RecordError) as err:
            raise RecordError(f"{path}: {err}") from err

    def write(self, run_dir: Path) -> Path:
        return write_json(Path(run_dir) / self.FILE, self.to_dict())

    @property
    def extra_tests(self) -> dict[str, float]:
        """Accuracy on each extra test part the run was scored on (Study B: ``mnist_test``)."""
        return {} if self.mnist_test_accuracy is None else {"mnist_test": self.mnist_test_accuracy}


@dataclass
class Winner:
    """One run a results table picks: Table 8's run for a split, or the best of a model family on a split."""

    run_id: str
    profile: str
    table: str | None = None
    key: str | None = None
    val_accuracy: float | None = None
    test_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class Winners:
    """``winners.json``: what the export ships. Written by the runner, read by the export.

    ``table8[split]`` is Table 8's final model per split; ``best_by_family[family][split]`` the run of that
    family with the best validation accuracy over every EMNIST table (never chosen on test).
    """

    table8: dict[str, Winner] = field(default_factory=dict)
    best_by_family: dict[str, dict[str, Winner]] = field(default_factory=dict)

    FILE = "winners.json"

    def to_dict(self) -> dict[str, Any]:
        return {"table8": {s: w.to_dict() for s, w in self.table8.items()},
                "best_by_family": {f: {s: w.to_dict() for s, w in by_split.items()}
                                   for f, by_split in self.best_by_family.items()}}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Winners:
        return cls({s: Winner(**w) for s, w in data.get("table8", {}).items()},
                   {f: {s: Winner(**w) for s, w in by_split.items()}
                    for f, by_split in data.get("best_by_family", {}).items()})  # fmt: skip

    @classmethod
    def read(cls, folder: Path) -> Winners:
        return cls.from_dict(json.loads((Path(folder) / cls.FILE).read_text()))

    def write(self, folder: Path) -> Path:
        return write_json(Path(folder) / self.FILE, self.to_dict())
