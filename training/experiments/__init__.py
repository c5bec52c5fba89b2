"""The reports' tables as data: one spec module per table, run by ``training.reproduce``.

A spec module holds plain data only:

- ``TITLE``: the table's caption.
- ``BASE``: RunConfig settings shared by every row (``model_args`` is merged key by key).
- ``ROWS``: one dict per row: ``key`` (unique in the table), ``label``, ``settings`` (RunConfig
  settings over ``BASE``), ``report`` (the report's numbers as printed: accuracy in percent),
  optionally ``train: False`` for a row shown for reference only, and ``note``.
- ``CLAIMS``: the report's conclusions to check: ``text``, ``expect`` (the row key the report
  picked), optionally ``among`` (row keys; default every trained row), ``metrics`` (what decides;
  default validation accuracy, then validation loss) and ``kind`` (``best`` or ``cross_best``).
- optionally ``SEEDS`` (each row is run once per seed; the first seed is the single-run figure),
  ``CROSS_SPLIT`` (test splits every row's model is also scored on) and ``NOTES``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

TABLES = ("table2", "table3", "table4", "table5", "table6", "table7", "table8", "class_weight", "focal", "studyB")


def load_spec(name: str) -> ModuleType:
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; known: {', '.join(TABLES)} (or all)")
    spec = importlib.import_module(f"{__name__}.{name.lower()}")
    keys = [row["key"] for row in spec.ROWS]
    if len(keys) != len(set(keys)):
        raise ValueError(f"{name}: duplicate row keys")
    for claim in getattr(spec, "CLAIMS", []):
        unknown = {claim["expect"], *claim.get("among", [])} - set(keys)
        if unknown:
            raise ValueError(f"{name}: claim names unknown rows {sorted(unknown)}")
    return spec
