"""The live benchmark: every letter-reading model's top-1 and top-3 on kept drawings, folded to the 47 merged
classes (``labels.folded_hits``, as the drawing benchmark scores), so the app can show it without torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..labels import LETTER_SPLITS, folded_hits
from .record import Drawing, merged_label


def score_drawings(recognizer: Any, drawings: Iterable[Drawing]) -> list[dict[str, Any]]:
    """Each loaded letter-reading model of a ``recognizer.inference.Recognizer`` on the drawings: top-1, top-3 (folded)
    and the count, beside the manifest's pool test figure and drawing-benchmark top-1 where it has them."""
    rows = list(drawings)
    x = np.stack([d.x28 for d in rows]) if rows else np.zeros((0, 28, 28), np.float32)
    truth = np.array([merged_label(d.character) for d in rows], np.int64)
    results = []
    for entry in recognizer.models:
        if entry.split not in LETTER_SPLITS:
            continue
        top1 = top3 = None
        if rows:
            hits1, hits3 = folded_hits(recognizer.predict_batch(entry.name, x)[0], entry.labels, truth)
            top1, top3 = float(hits1.mean()), float(hits3.mean())
        results.append({"name": entry.name, "slot": entry.slot, "sha256": entry.sha256, "top1": top1, "top3": top3,
                        "n": len(rows), "pool_test": entry.metrics.runtime_test_accuracy,
                        "drawbench_top1": drawn.top1 if (drawn := entry.metrics.drawbench) else None})  # fmt: skip
    return results


def trusted(drawings: Iterable[Drawing], include_all: bool = False) -> tuple[list[Drawing], int]:
    """The drawings a benchmark or a fine-tune uses by default (not suspect, or accepted in review) and how many it
    left out; ``include_all``: every drawing, none left out."""
    rows = list(drawings)
    kept = rows if include_all else [d for d in rows if d.trusted]
    return kept, len(rows) - len(kept)
