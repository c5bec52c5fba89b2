"""The reports' tables as data: one spec module per table, each building one ``SPEC`` (training/experiments/spec.py),
run by ``python -m training reproduce``.

A spec is plain data read top to bottom: the table's ``title``, the ``base`` RunConfig settings every row shares,
the ``rows`` (each a key, a label, its settings over the base and the report's numbers as printed) and the
report's ``claims`` to check. Specs are checked when their module is imported: an unknown setting, model argument,
row or metric fails there.
"""

from __future__ import annotations

import importlib

from training.experiments.spec import Claim, Row, Spec, SpecError

TABLES = ("table2", "table3", "table4", "table5", "table6", "table7", "table8", "class_weight", "focal", "studyB",
          "studyB_ssl")

# Tables of this project's own models, not the reports': loadable by name, left out of `all`.
LAB_TABLES = ("lab", "lab_slots")
# A table's spec module is its name lower-cased, except the drawing recipe's, whose table names (and so their
# results files and the README's commands) stay as they were published.
MODULES = {"lab": "recipe_ablation", "lab_slots": "recipe_slots"}

__all__ = ["LAB_TABLES", "TABLES", "Claim", "Row", "Spec", "SpecError", "load_spec"]


def load_spec(name: str) -> Spec:
    if name not in TABLES + LAB_TABLES:
        raise ValueError(f"unknown table {name!r}; known: {', '.join(TABLES + LAB_TABLES)} (or all)")
    return importlib.import_module(f"{__name__}.{MODULES.get(name, name.lower())}").SPEC
