"""What the page needs to answer a drawing itself: per slot model, its labels, how each is shown, its case rule and its
answer rules (the manifest's ``AnswerRules`` record, the one the server's ``recognizer.answers`` reads too).

``slot_config(entry)`` is one slot's part of the page's configuration (``webapp.page_files`` serves the whole);
webapp/static/answers.js reads exactly these keys.
"""

from __future__ import annotations

from typing import Any

from recognizer.manifest import ModelEntry


def slot_config(entry: ModelEntry) -> dict[str, Any]:
    """One served model as the page reads it: name, split, labels, displays ('C/c' for a merged class), whether its
    split merges case, its graph's input and logits names, and its answer rules (None where it has none)."""
    return {
        "name": entry.name,
        "split": entry.split,
        "labels": list(entry.labels),
        "displays": list(entry.displays),
        "merged": entry.merged,
        "input": entry.input.name or "image",
        "output": entry.outputs.get("logits", "logits"),
        "answers": entry.answers.to_dict() if entry.answers is not None else None,
    }
