"""Planning: a spec's rows under a profile's budget -> one RunConfig per row and seed.

Identical configs across tables are one run (``RunConfig.run_id``): Table 3's Adam row is Table 2's residual CNN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import RunConfig
from training.data import resolve_protocol
from training.experiments import Row, Spec, load_spec
from training.experiments.profiles import PROFILES
from training.experiments.spec import PlannedRow
from training.models import model_info
from training.ssl import planned_pretraining


def canonical_model_args(model: str, args: dict[str, Any]) -> dict[str, Any]:
    """Drop arguments equal to the model's defaults, so one model has one spelling (and one run id)."""
    defaults = model_info(model).defaults
    unknown = set(args) - set(defaults)
    if unknown:
        raise ValueError(f"{model} has no arguments {sorted(unknown)}")
    return {k: v for k, v in sorted(args.items()) if defaults[k] != v}


def profile_budget(profile: str, spec: Spec, model: str) -> dict[str, Any]:
    """The limits a profile sets for a spec's runs: its ``emnist`` budget (``per_model`` over it) or ``studyB``."""
    budgets = PROFILES[profile]
    if spec.budget == "emnist":
        return {**budgets.get("emnist", {}), **budgets.get("per_model", {}).get(model, {})}
    return dict(budgets.get(spec.budget, {}))


def apply_budget(settings: dict[str, Any], budget: dict[str, Any], profile: str) -> dict[str, Any]:
    """A row's settings under a budget (see training/experiments/profiles.py)."""
    out = dict(settings, profile=profile)
    for key in ("limit_train", "limit_val"):
        if budget.get(key) is not None:
            out[key] = budget[key] if out.get(key) is None else min(out[key], budget[key])
    if budget.get("max_epochs"):
        out["epochs"] = min(out.get("epochs", RunConfig.epochs), budget["max_epochs"])
    if budget.get("batch_size"):
        out["batch_size"] = budget["batch_size"]
    return out


def plan_row(spec: Spec, row: Row, profile: str, root: Path) -> PlannedRow:
    if not row.train:
        return PlannedRow(spec.name, row)
    settings = spec.settings(row)
    model = settings.get("model", RunConfig.model)
    budget = profile_budget(profile, spec, model)
    settings = apply_budget(settings, budget, profile)
    settings["model_args"] = canonical_model_args(model, settings["model_args"])
    if settings.get("init_from"):  # the spec names its pretraining; the run id holds that pretraining's own id
        settings["init_from"] = planned_pretraining(spec, settings["init_from"], profile).run_id()
    if spec.budget == "emnist":  # Study B's data has one protocol; its recorded run ids hash the spec's "auto"
        settings["protocol"] = resolve_protocol(settings["split"], settings.get("protocol", "auto"), root)
    seeds = spec.seeds[: budget.get("seeds") or len(spec.seeds)]
    if not seeds:
        return PlannedRow(spec.name, row, [RunConfig.from_dict(settings)])
    return PlannedRow(spec.name, row, [RunConfig.from_dict({**settings, "seed": seed}) for seed in seeds])


def plan_table(name: str, profile: str, root: Path) -> list[PlannedRow]:
    spec = load_spec(name)
    return [plan_row(spec, row, profile, root) for row in spec.rows]
