"""``lab_slots``: the lab recipe on the app's three slot splits only, the rows a shipping export needs (``python -m
training export --lab``). They are the ``lab`` ablation's ``recipe``, ``recipe_bymerge`` and ``recipe_balanced`` rows,
settings and run ids alike, so a GPU lease can train the shipping candidates first (three runs share the GPU instead
of ten) and the whole ablation later reuses them. No claims: the rows are on different splits.
"""

from training.experiments.recipe_ablation import SPEC as LAB
from training.experiments.spec import Spec

SHIPPING_ROWS = ("recipe", "recipe_bymerge", "recipe_balanced")

SPEC = Spec(
    name="lab_slots",
    title="Lab: the recipe on byclass, bymerge and balanced (the lab ablation's shipping rows)",
    base=LAB.base,
    rows=tuple(row for row in LAB.rows if row.key in SHIPPING_ROWS),
    claims=(),
    notes="The rows of the `lab` ablation that `python -m training export --lab` chooses among; their runs are the "
    "ablation's own (same settings, same run ids).",
)
