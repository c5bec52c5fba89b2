"""Run budgets: the same specs at three sizes. Plain data, read by ``training.reproduce``.

- ``paper``: the report's protocol unchanged (every image of the split's training part, up to 50
  epochs with early stopping; Study B as printed).
- ``quick``: the same settings on a fixed, class-stratified subset of each training and validation
  part and a capped number of epochs, so that every table together finishes in about an hour on
  2 CPU cores (``python -m training reproduce all --profile quick --workers 2``). How the budget
  was chosen: see ``QUICK_BUDGET_NOTE`` below; the results page repeats it.
- ``smoke``: seconds per run, for the tests; the numbers mean nothing.

``emnist`` applies to the EMNIST tables, ``per_model`` overrides it for one model, ``studyB`` applies
to the small-MNIST study (its data is already tiny; only epochs and seeds can shrink). ``max_epochs``
caps a row's epochs (a row asking for fewer keeps its own); ``limit_train``/``limit_val`` become the
RunConfig fields of the same names; the test part is always scored whole.
"""

from __future__ import annotations

PROFILES: dict[str, dict] = {
    "paper": {
        "description": "the report's protocol unchanged",
        "emnist": {},
        "per_model": {},
        "studyB": {},
    },
    "quick": {
        "description": "the report's settings on 6,000 training and 2,000 validation images per run, "
        "at most 4 epochs (ResNet-50: 1,200 images, 2 epochs); Study B unchanged except 3 seeds",
        "emnist": {"limit_train": 6000, "limit_val": 2000, "max_epochs": 4},
        "per_model": {"resnet50": {"limit_train": 1200, "limit_val": 500, "max_epochs": 2}},
        "studyB": {"seeds": 3},
    },
    "smoke": {
        "description": "a few hundred images, 1 epoch (Study B: 2 epochs, 2 seeds): checks the plumbing only",
        "emnist": {"limit_train": 200, "limit_val": 100, "max_epochs": 1},
        "per_model": {"resnet50": {"limit_train": 40, "limit_val": 40}},
        "studyB": {"max_epochs": 2, "seeds": 2},
    },
}

QUICK_BUDGET_NOTE = "(filled in after timing)"
