"""The records one stage hands the next, each a dataclass with one reader and one writer.

- ``Metrics``: a finished run's ``metrics.json``. Written by the trainer (``Metrics.write``), read by the runner,
  the cross-split scoring and the export (``Metrics.read``).
- ``ResultRow`` / ``TableResult`` (with ``CrossCell``): one row of a results table and the table, ``<table>.json``
  under ``assets/results/``. Built by the collect step (training/collect.py), written by ``TableResult.write``,
  read by ``TableResult.read`` (the results page, the figures, winners.json, the export).
- ``ClaimResult``: a report's conclusion judged on a table's rows, kept in ``TableResult.claims``.
- ``Winners``: ``winners.json``, written by reproduce's collect step (``choose.pick_winners`` on the tables) for
  people and scripts to read; the export applies the same function to the tables it is given, so it never
  ships from a stale summary.

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
from recognizer.verdicts import HOLDS, LEGACY_VERDICT, NOT_JUDGED, REVERSED, TIE
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
    """``winners.json``: the runs the export ships, as ``choose.pick_winners`` chose them from the tables (a record
    for a person; the export recomputes ``pick_winners`` from the tables rather than read it).

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

    def write(self, folder: Path) -> Path:
        return write_json(Path(folder) / self.FILE, self.to_dict())


def _checked(cls: type, data: dict[str, Any], what: str) -> dict[str, Any]:
    """``data`` when it names only fields of ``cls`` and every field without a default."""
    fields = dataclasses.fields(cls)
    required = {f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    missing, unknown = sorted(required - set(data)), sorted(set(data) - {f.name for f in fields})
    if missing or unknown:
        raise RecordError(f"not {what}: missing {missing}, unknown {unknown}")
    return data


@dataclass
class CrossCell:
    """A row's model scored on one split's test part with the exact case mapping (Table 8's cells)."""

    test_accuracy: float
    weighted_f1: float
    inference_seconds: float
    n_test: int
    protocol: str
    chars: list[str]
    device: str | None
    confusion_matrix: list[list[int]]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CrossCell:
        return cls(**_checked(cls, data, "a cross-split cell"))


# The first seed's figures, in the order a row's JSON lists them (names as in the row, from Metrics).
FIRST_SEED = ("test_accuracy", "test_loss", "weighted_f1", "train_seconds", "inference_seconds", "val_accuracy",
              "val_loss", "epochs_run", "best_epoch", "n_train", "n_val", "n_test", "device",
              "environment")  # fmt: skip
EXTRA_TEST = ("mnist_test_accuracy", "mnist_test_loss")  # Study B's full MNIST test set
SEED_METRICS = ("test_accuracy", "test_loss", "mnist_test_accuracy", "mnist_test_loss", "train_seconds")
SHOWN_ARGS = (("activation_name", "activation"), ("blocks", "blocks"))  # model arguments also shown as columns
CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig))


@dataclass
class ResultRow:
    """One row of a results table: the spec row, its first seed's settings and figures, the spread over seeds
    and (Table 8) its model scored on every split's test part.

    ``status`` is ``done``, ``missing`` (not run yet) or ``reference`` (a row shown, never trained). ``settings``
    are the first seed's settings as the results show them: ``model_args`` in full (the model's defaults
    included) and, once done, the protocol the data were read with (Study B's configs say ``auto``), so its
    ``run_id()`` is not the row's ``run_id``; ``settings.chain_key()`` still groups rows that differ only in
    epochs. ``seeds`` and the ``*_mean``/``*_std`` figures are set for rows run with several seeds.
    """

    key: str
    status: str
    label: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    run_id: str | None = None
    settings: RunConfig | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    weighted_f1: float | None = None
    train_seconds: float | None = None
    inference_seconds: float | None = None
    val_accuracy: float | None = None
    val_loss: float | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    device: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    mnist_test_accuracy: float | None = None
    mnist_test_loss: float | None = None
    seeds: list[int] | None = None
    seed_run_ids: list[str] | None = None
    seeds_done: int | None = None
    test_accuracy_mean: float | None = None
    test_accuracy_std: float | None = None
    test_loss_mean: float | None = None
    test_loss_std: float | None = None
    mnist_test_accuracy_mean: float | None = None
    mnist_test_accuracy_std: float | None = None
    mnist_test_loss_mean: float | None = None
    mnist_test_loss_std: float | None = None
    train_seconds_mean: float | None = None
    train_seconds_std: float | None = None
    cross: dict[str, CrossCell] | None = None

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def run_ids(self) -> list[str]:
        """Every run behind the row's numbers: one per seed."""
        return self.seed_run_ids or ([self.run_id] if self.run_id else [])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "label": self.label, "report": self.report}
        if self.note is not None:
            out["note"] = self.note
        if self.settings is not None:
            out["run_id"] = self.run_id
            out.update(self.settings.to_dict())
            out.update({shown: self.settings.model_args[arg] for arg, shown in SHOWN_ARGS
                        if arg in self.settings.model_args})  # fmt: skip
        out["status"] = self.status
        if self.done:
            out.update({name: getattr(self, name) for name in FIRST_SEED})
            out.update({name: getattr(self, name) for name in EXTRA_TEST if getattr(self, name) is not None})
        if self.done and self.seeds is not None:
            out.update(seeds=self.seeds, seed_run_ids=self.seed_run_ids, seeds_done=self.seeds_done)
            out.update({f"{metric}_{stat}": getattr(self, f"{metric}_{stat}")
                        for metric in SEED_METRICS for stat in ("mean", "std")})  # fmt: skip
        if self.done and self.cross is not None:
            out["cross"] = {split: cell.to_dict() for split, cell in self.cross.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultRow:
        values = {k: v for k, v in data.items() if k not in CONFIG_FIELDS and k not in dict(SHOWN_ARGS).values()}
        settings = {k: v for k, v in data.items() if k in CONFIG_FIELDS}
        values["settings"] = RunConfig.from_dict(settings) if settings else None
        if values.get("cross") is not None:
            values["cross"] = {split: CrossCell.from_dict(cell) for split, cell in values["cross"].items()}
        return cls(**_checked(cls, values, "a result row"))


@dataclass(frozen=True)
class Difference:
    """Accuracy of A minus accuracy of B, with its interval; in fractions (0.01 is one point)."""

    diff: float
    low: float
    high: float
    n: int
    method: str  # "paired bootstrap" | "unpaired normal"
    mcnemar_p: float | None = None  # two-sided exact McNemar test (one seed each), else None
    seed_std: float | None = None  # standard deviation of the per-seed differences, when there are seeds

    @property
    def verdict(self) -> str:
        """For the claim "A beats B"."""
        return HOLDS if self.low > 0 else REVERSED if self.high < 0 else TIE

    def to_dict(self) -> dict:
        return {"diff": self.diff, "low": self.low, "high": self.high, "n": self.n, "method": self.method,
                "mcnemar_p": self.mcnemar_p, "seed_std": self.seed_std, "verdict": self.verdict}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> Difference:
        return cls(**{k: v for k, v in data.items() if k != "verdict"})


@dataclass
class ClaimResult:
    """A report's conclusion judged on a table's rows (``TableResult.claims``), written by
    ``training.claims.evaluate_claims``.

    ``winner`` is the row chosen (on validation where there is a validation part; Table 8: per test split);
    ``verdict`` (holds / tie / reversed / not judged) comes from the 95% intervals of expected-minus-row on the
    test images of ``part``: ``comparisons`` holds every rival's interval (``training.stats.Difference``, in
    fractions), ``against`` names the rival that decides the verdict and ``interval`` is its interval.
    ``holds_on`` says, for each figure shown beside the deciding one, whether the expected row is best on it.
    """

    text: str
    kind: str
    expect: str
    metrics: list[str]
    basis: str
    verdict: str = NOT_JUDGED
    winner: str | dict[str, str] | None = None
    detail: str = ""
    part: str = "test"
    against: str | None = None
    interval: Difference | None = None
    comparisons: dict[str, Difference] = field(default_factory=dict)
    holds_on: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["interval"] = None if self.interval is None else self.interval.to_dict()
        out["comparisons"] = {key: d.to_dict() for key, d in self.comparisons.items()}
        return json.loads(json.dumps(out))  # plain data throughout (lists, dicts), as asdict gave

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClaimResult:
        values = {k: v for k, v in data.items() if k != "holds" and not k.startswith("holds_on_")}
        if "verdict" not in data:  # a record written before verdicts had intervals
            values["verdict"] = LEGACY_VERDICT[data.get("holds")]
            values["holds_on"] = {k.removeprefix("holds_on_"): v for k, v in data.items() if k.startswith("holds_on_")}
        if values.get("interval") is not None:
            values["interval"] = Difference.from_dict(values["interval"])
        values["comparisons"] = {k: Difference.from_dict(d) for k, d in values.get("comparisons", {}).items()}
        return cls(**_checked(cls, values, "a judged claim"))


@dataclass
class TableResult:
    """``<table>.json``: a table's rows, the report's claims judged on them, and where it was collected."""

    table: str
    title: str = ""
    profile: str = ""
    profile_description: str = ""
    protocol: str | None = None
    device: str | None = None
    units: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    rows: list[ResultRow] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    generated: str = ""
    claims: list[ClaimResult] = field(default_factory=list)  # the verdicts of training.claims.evaluate_claims

    @property
    def done(self) -> list[ResultRow]:
        return [row for row in self.rows if row.done]

    @property
    def cross_columns(self) -> list[str]:
        """The test splits every row's model was scored on (Table 8); empty for the other tables."""
        return next((list(row.cross) for row in self.done if row.cross), [])

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["rows"] = [row.to_dict() for row in self.rows]
        out["claims"] = [claim.to_dict() for claim in self.claims]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableResult:
        values = _checked(cls, dict(data), "a results table")
        return cls(**{**values, "rows": [ResultRow.from_dict(row) for row in values.get("rows", [])],
                      "claims": [ClaimResult.from_dict(claim) for claim in values.get("claims", [])]})  # fmt: skip

    @classmethod
    def read(cls, path: Path) -> TableResult:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (json.JSONDecodeError, RecordError, TypeError) as err:
            raise RecordError(f"{path}: {err}") from err

    def write(self, folder: Path) -> Path:
        return write_json(Path(folder) / f"{self.table}.json", self.to_dict())
