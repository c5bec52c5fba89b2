"""Scoring a model trained on one EMNIST split on another split's test part (Table 8).

The rule is the exact case mapping of recognizer.labels: when both splits have the same classes
the labels are compared as they are; otherwise both sides go to their merged class (merge_key),
so a byclass 'c' scored on bymerge is right for 'C/c', a merged 'C/c' scored on byclass is right
for both 'C' and 'c', and 'a' and 'A' stay different everywhere.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score

from recognizer.files import write_json
from recognizer.labels import merge_key
from training.batches import Batches, evaluate
from training.data import SplitData
from training.models import model_info
from training.records import CrossCell, Metrics, RecordError
from training.runfolder import load_trained
from training.utils import pick_device


def label_space(train_chars: tuple[str, ...], test_chars: tuple[str, ...]) -> tuple[tuple[str, ...], np.ndarray,
                                                                                   np.ndarray]:
    """The classes two splits are compared in, and each split's labels mapped into them."""
    if tuple(train_chars) == tuple(test_chars):
        same = np.arange(len(test_chars))
        return tuple(test_chars), same, same
    space = tuple(dict.fromkeys(merge_key(c) for c in (*test_chars, *train_chars)))
    position = {c: i for i, c in enumerate(space)}
    to_space = lambda chars: np.array([position[merge_key(c)] for c in chars], dtype=np.int64)
    return space, to_space(train_chars), to_space(test_chars)


def score_cross_split(
    preds: np.ndarray, truth: np.ndarray, train_chars: tuple[str, ...], test_chars: tuple[str, ...]
) -> dict:
    """Accuracy, weighted F1 and confusion matrix of predictions (train labels) against truth (test labels)."""
    space, pred_map, true_map = label_space(train_chars, test_chars)
    p, t = pred_map[np.asarray(preds)], true_map[np.asarray(truth)]
    return {
        "accuracy": float((p == t).mean()) if len(t) else float("nan"),
        "weighted_f1": float(f1_score(t, p, average="weighted", zero_division=0)) if len(t) else float("nan"),
        "confusion_matrix": confusion_matrix(t, p, labels=np.arange(len(space))).tolist(),
        "chars": list(space),
        "n_test": int(len(t)),
    }


def cross_evaluate(run_dir: Path, test: SplitData, device: str = "cpu") -> CrossCell:
    """Score a finished run on ``test``'s test part; cached in the run folder as cross-<split>-<protocol>.json."""
    x, y = test.parts["test"]
    metrics = Metrics.read(run_dir)
    dev = pick_device(device)
    own_part = (metrics.split, metrics.protocol, metrics.n_test) == (test.name, test.protocol, len(y))
    if own_part and metrics.device == str(dev):
        # The run's own test part, on the device it was trained on: the trainer already scored and timed it.
        # (On another device it is scored again, so that the nine cells' times are comparable.)
        return CrossCell(metrics.test_accuracy, metrics.weighted_f1, metrics.inference_seconds, metrics.n_test,
                         test.protocol, metrics.chars, metrics.device, metrics.confusion_matrix)  # fmt: skip
    cache = Path(run_dir) / f"cross-{test.name}-{test.protocol}.json"
    cached = _read_cache(cache)
    if cached is not None and cached.n_test == len(y):
        return cached
    model, _ = load_trained(run_dir, device=str(dev))
    model.to(dev)
    batches = Batches(x, y, dev, model_info(metrics.config.model).in_channels)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    preds = evaluate(model, batches, metrics.config.batch_size).preds
    seconds = time.perf_counter() - started
    score = score_cross_split(preds, y, tuple(metrics.chars), test.chars)
    cell = CrossCell(score["accuracy"], score["weighted_f1"], seconds, score["n_test"], test.protocol, score["chars"],
                     str(dev), score["confusion_matrix"])  # fmt: skip
    write_json(cache, cell.to_dict(), indent=None)
    return cell


def _read_cache(path: Path) -> CrossCell | None:
    """A cached cell, or None when there is none or it is in an older layout (it is then scored again)."""
    try:
        return CrossCell.from_dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, RecordError):
        return None
