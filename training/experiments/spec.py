"""What a table spec is: ``Spec`` (the table), ``Row`` (one row's settings and the report's numbers) and ``Claim``
(a conclusion of the report to check). Frozen dataclasses, checked when a spec module is imported, so a typo in a
setting, a model argument or a claim's row fails loudly instead of silently training the base row.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from training.config import RunConfig
from training.models import MODELS, model_info

BUDGETS = ("emnist", "studyB")  # which of a profile's budgets applies (training/experiments/profiles.py)
KINDS = ("best", "cross_best")
# Figures a claim may be decided on: the result rows' fields of these names (training.records.ResultRow).
METRICS = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "weighted_f1", "mnist_test_accuracy",
           "mnist_test_loss", "test_accuracy_mean", "test_loss_mean", "mnist_test_accuracy_mean",
           "mnist_test_loss_mean")  # fmt: skip
DEFAULT_METRICS = ("val_accuracy", "val_loss")
SETTINGS = tuple(f.name for f in dataclasses.fields(RunConfig))


class SpecError(ValueError):
    """A spec names a setting, a model argument, a row or a metric that does not exist."""


@dataclass(frozen=True)
class Row:
    """One row: ``settings`` over the spec's ``base`` (RunConfig fields; ``model_args`` merged key by key), the
    report's numbers as printed (accuracy in percent); ``train=False`` for a row shown for reference only."""

    key: str
    label: str
    settings: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    train: bool = True
    note: str | None = None


@dataclass(frozen=True)
class Claim:
    """A conclusion of the report: ``expect`` is the row it picked among ``among`` (default: every row).

    ``kind="best"`` ranks on ``metrics`` (the first decides, the next break ties; ``also`` are shown beside);
    ``kind="cross_best"`` (Table 8) asks which row's model scores best on each test split in ``columns``.
    """

    text: str
    expect: str
    among: tuple[str, ...] | None = None
    metrics: tuple[str, ...] = DEFAULT_METRICS
    also: tuple[str, ...] = ()
    kind: str = "best"
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spec:
    """A table of the reports as data.

    - ``budget``: ``emnist`` (an EMNIST table: a profile's ``emnist`` and ``per_model`` budgets apply, and the
      ``auto`` protocol is fixed from the files found) or ``studyB`` (the small-MNIST study: one fixed data set,
      the profile's ``studyB`` budget).
    - ``seeds``: each row runs once per seed; the first seed is the single-run figure.
    - ``cross_split``: test splits every row's model is also scored on (Table 8).
    """

    name: str
    title: str
    base: dict[str, Any]
    rows: tuple[Row, ...]
    claims: tuple[Claim, ...]
    budget: str = "emnist"
    seeds: tuple[int, ...] = ()
    cross_split: tuple[str, ...] = ()
    notes: str = ""
    # Self-supervised pretrainings run before the rows (training/ssl.py): name -> PretrainConfig settings; a row
    # whose ``init_from`` names one starts from its encoder (the plan replaces the name by the pretraining's id).
    pretrain: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A table without a validation part (Study B) names the rows whose model may ship: the export takes the one
    # with the best ``export_metric`` (the figure its claims are decided on), first seed (training/collect.py,
    # ``pick_without_validation``). Tables with a validation part leave it empty: validation chooses there.
    export_rows: tuple[str, ...] = ()
    export_metric: str = "mnist_test_accuracy_mean"

    def __post_init__(self) -> None:
        check_spec(self)

    def settings(self, row: Row) -> dict[str, Any]:
        """A row's RunConfig settings: the base with the row's over it, model arguments merged key by key."""
        merged = {**self.base, **row.settings}
        merged["model_args"] = {**self.base.get("model_args", {}), **row.settings.get("model_args", {})}
        return merged

    @property
    def trained(self) -> tuple[Row, ...]:
        return tuple(row for row in self.rows if row.train)


def check_spec(spec: Spec) -> None:
    where = f"spec {spec.name}"
    if spec.budget not in BUDGETS:
        raise SpecError(f"{where}: budget {spec.budget!r} is not one of {BUDGETS}")
    keys = [row.key for row in spec.rows]
    if len(keys) != len(set(keys)):
        raise SpecError(f"{where}: duplicate row keys")
    _check_settings(f"{where} base", spec.base)
    for row in spec.trained:
        _check_settings(f"{where} row {row.key}", spec.settings(row))
        init_from = spec.settings(row).get("init_from")
        if init_from is not None and init_from not in spec.pretrain:
            raise SpecError(f"{where} row {row.key}: init_from {init_from!r} is not one of its pretrainings "
                            f"{sorted(spec.pretrain)}")  # fmt: skip
    trained = {row.key for row in spec.trained}
    if set(spec.export_rows) - trained or spec.export_metric not in METRICS:
        raise SpecError(f"{where}: export_rows {list(spec.export_rows)} must be trained rows and export_metric "
                        f"{spec.export_metric!r} one of {METRICS}")  # fmt: skip
    for claim in spec.claims:
        _check_claim(f"{where} claim {claim.text!r}", claim, trained, spec.cross_split)


def _check_settings(where: str, settings: dict[str, Any]) -> None:
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise SpecError(f"{where}: unknown settings {sorted(unknown)}; known: {', '.join(SETTINGS)}")
    model = settings.get("model", RunConfig.model)
    if model not in MODELS:
        raise SpecError(f"{where}: unknown model {model!r}; known: {', '.join(MODELS)}")
    unknown = set(settings.get("model_args", {})) - set(model_info(model).defaults)
    if unknown:
        raise SpecError(f"{where}: {model} has no arguments {sorted(unknown)}")


def _check_claim(where: str, claim: Claim, trained: set[str], cross_split: tuple[str, ...]) -> None:
    unknown = {claim.expect, *(claim.among or ())} - trained
    if unknown:
        raise SpecError(f"{where}: names rows that are not trained rows of the table: {sorted(unknown)}")
    if claim.kind not in KINDS:
        raise SpecError(f"{where}: kind {claim.kind!r} is not one of {KINDS}")
    unknown = set(claim.metrics + claim.also) - set(METRICS)
    if unknown or not claim.metrics:
        raise SpecError(f"{where}: unknown metrics {sorted(unknown)}; known: {', '.join(METRICS)}")
    if claim.kind == "cross_best" and (not claim.columns or set(claim.columns) - set(cross_split)):
        raise SpecError(f"{where}: columns {list(claim.columns)} are not among the cross splits {list(cross_split)}")


def lr_key(lr: float) -> str:
    """The one row key of a learning rate, shared by the tables that sweep it: 1e-4 -> ``lr_1e-4``."""
    mantissa, exponent = f"{lr:.0e}".split("e")
    return f"lr_{mantissa}e{int(exponent)}"


@dataclass
class PlannedRow:
    table: str
    row: Row
    configs: list[RunConfig] = field(default_factory=list)  # one per seed; empty for a reference row
