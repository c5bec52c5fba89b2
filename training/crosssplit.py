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
from sklearn.metrics import confusion_matrix, f1_score

from recognizer.labels import merge_key
from training.data import SplitData


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


def cross_evaluate(run_dir: Path, test: SplitData, device: str = "cpu") -> dict:
    """Score a finished run on ``test``'s test part; cached in the run folder as cross-<split>-<protocol>.json."""
    import torch

    from training.trainer import Batches, evaluate, load_trained, model_in_channels, pick_device

    x, y = test.parts["test"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    dev = pick_device(device)
    own_part = (metrics["split"], metrics["protocol"], metrics["n_test"]) == (test.name, test.protocol, len(y))
    if own_part and metrics.get("device") == str(dev):
        # The run's own test part, on the device it was trained on: the trainer already scored and timed it.
        # (On another device it is scored again, so that the nine cells' times are comparable.)
        keys = ("weighted_f1", "confusion_matrix", "chars", "n_test", "inference_seconds", "device")
        return {"accuracy": metrics["test_accuracy"], **{k: metrics[k] for k in keys}, "train_split": test.name,
                "test_split": test.name, "protocol": test.protocol}  # fmt: skip
    cache = run_dir / f"cross-{test.name}-{test.protocol}.json"
    if cache.exists():
        cached = json.loads(cache.read_text())
        if cached.get("n_test") == len(y):
            return cached
    model, _ = load_trained(run_dir, device=str(dev))
    model.to(dev)
    batches = Batches(x, y, dev, model_in_channels(metrics["config"]["model"]))
    if dev.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    preds = evaluate(model, batches, metrics["config"]["batch_size"])["preds"]
    seconds = time.perf_counter() - started
    result = score_cross_split(preds, y, tuple(metrics["chars"]), test.chars)
    result.update(train_split=metrics["split"], test_split=test.name, protocol=test.protocol,
                  inference_seconds=seconds, device=str(dev))
    cache.write_text(json.dumps(result))
    return result
