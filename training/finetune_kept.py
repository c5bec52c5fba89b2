"""Fine-tune a slot's model on the kept drawings (the export of the result is training/export.py's).

    python -m training drawings finetune --model residual_cnn-byclass --epochs 3 --out exported_models

1. Start from the exported weights: the ONNX file loaded exactly into the registered model (``training.fromonnx``),
   every BatchNorm frozen (its folded statistics stay; dropout trains as usual).
2. Each epoch trains on the kept training drawings (``kept_repeats`` times over) mixed with ``pool_per_epoch`` images
   of the model's own pool training part (``training.data.load_split``), drawn anew each epoch, so the model keeps
   what it knew. A drawing whose case was left open ('O/o') counts as right for either case: the loss is
   ``-log`` of the probability summed over the classes its character allows (``set_loss``).
3. The epoch is chosen on the kept *validation* drawings (folded top-1, then loss; epoch 0, the start, is a
   candidate, so a fine-tune that does not help returns the start). Before and after: the kept validation and test
   drawings (folded top-1 and top-3, as the drawing benchmark scores) and the pool's validation and test parts.
4. Resumable: a checkpoint after every epoch in ``runs/<model>_kept-<hash>/``, whose id changes with the settings,
   the base model's sha256 and the kept drawings; ``result.json`` is written last.
5. Then ``export.export_finetuned`` (not here): the export's own conversion, parity check and file writer, scored
   through the app's runtime, named ``<base>_kept`` (the reproduced models stay untouched) with ``recipe`` saying
   what it was trained on, and a default slot only under the lab's rule (``slots.decide_slot``: it must beat
   the reproduction's model of its split on pool validation accuracy and on the drawing benchmark, both scored now).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from recognizer.files import write_json
from recognizer.inference import softmax
from recognizer.labels import LETTER_SPLITS, merge_key
from recognizer.manifest import (
    ModelEntry,
)
from training.data import SplitData, load_split
from training.fromonnx import frozen_bn_train, load_exported, torch_logits
from training.kept import SUFFIX, KeptSet, folded_scores
from training.paths import runs_dir
from training.runfolder import RunFolder
from training.utils import environment


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tune: which model, how long, how much pool to mix in; part of the run's id."""

    model: str = "residual_cnn-byclass"
    epochs: int = 3
    lr: float = 1e-4
    batch_size: int = 128
    kept_repeats: int = 4  # each kept training drawing this many times per epoch
    pool_per_epoch: int = 4000  # pool training images mixed in per epoch (drawn anew each epoch)
    seed: int = 42
    eval_limit: int | None = None  # pool validation/test images scored before and after (None: every one)

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


# ---------------------------------------------------------------------------------------------
# Labels, loss and scores


def allowed(character: str, label: str, merged_model: bool) -> bool:
    """Whether a model class is a right answer for a kept character ('O/o' allows 'O' and 'o')."""
    if "/" in character:  # an open case: either case of the letter
        return merge_key(label) == character[0]
    if merged_model:
        return label == merge_key(character)
    return label == character


def label_masks(characters: list[str], labels: list[str], merged_model: bool) -> np.ndarray:
    """(N, C) bool: the classes each drawing's character allows."""
    return np.array([[allowed(c, label, merged_model) for label in labels] for c in characters], bool).reshape(
        len(characters), len(labels))  # fmt: skip


def set_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with a set of right classes: -log(sum of their probabilities); one-hot is plain CE."""
    right = torch.logsumexp(logits.masked_fill(~mask, float("-inf")), 1)
    return (torch.logsumexp(logits, 1) - right).mean()


def kept_eval(model: nn.Module, labels: list[str], merged_model: bool, kept: KeptSet) -> dict:
    """Folded top-1/top-3 and the set loss on kept drawings."""
    logits = torch_logits(model, kept.inputs)
    scores = folded_scores(softmax(logits) if len(kept) else logits, labels, kept)
    if len(kept):
        mask = torch.from_numpy(label_masks(kept.characters, labels, merged_model))
        scores["loss"] = float(set_loss(torch.from_numpy(logits), mask))
    return scores


def pool_eval(model: nn.Module, data: SplitData, part: str, limit: int | None) -> dict:
    """Exact accuracy on a pool part (a seeded subset of ``limit`` images when given)."""
    x, y = data.parts[part]
    if limit is not None and limit < len(y):
        keep = np.sort(np.random.default_rng(42).choice(len(y), limit, replace=False))
        x, y = x[keep], y[keep]
    logits = torch_logits(model, x.astype(np.float32) / 255.0)
    return {"accuracy": float((logits.argmax(1) == y).mean()) if len(y) else None, "n": int(len(y))}


def compared_scores(model: nn.Module, entry: ModelEntry, kept: KeptSet, data: SplitData, limit: int | None) -> dict:
    """Everything before/after compares: kept validation and test, pool validation and test."""
    labels = list(entry.labels)
    return {"kept_val": kept_eval(model, labels, entry.merged, kept.part("val")),
            "kept_test": kept_eval(model, labels, entry.merged, kept.part("test")),
            "pool_val": pool_eval(model, data, "val", limit), "pool_test": pool_eval(model, data, "test", limit)}


# ---------------------------------------------------------------------------------------------
# Training


@dataclass
class Material:
    """What a fine-tune trains on: the kept training drawings and the pool's training part, inputs and masks."""

    kept_x: np.ndarray
    kept_mask: np.ndarray
    pool_x: np.ndarray  # uint8
    pool_y: np.ndarray

    def epoch(self, config: FinetuneConfig, epoch: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
        """This epoch's images and masks, shuffled: kept drawings repeated, a fresh pool sample, seeded per epoch."""
        rng = np.random.default_rng([config.seed, epoch])
        pick = rng.choice(len(self.pool_y), min(config.pool_per_epoch, len(self.pool_y)), replace=False)
        pool_mask = np.zeros((len(pick), num_classes), bool)
        pool_mask[np.arange(len(pick)), self.pool_y[pick]] = True
        x = np.concatenate([np.tile(self.kept_x, (config.kept_repeats, 1, 1)),
                            self.pool_x[pick].astype(np.float32) / 255.0])  # fmt: skip
        mask = np.concatenate([np.tile(self.kept_mask, (config.kept_repeats, 1)), pool_mask])
        order = rng.permutation(len(x))
        return x[order], mask[order]


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, x: np.ndarray, mask: np.ndarray,
                config: FinetuneConfig, epoch: int, progress: bool) -> float:  # fmt: skip
    """One pass, BatchNorm frozen; the mean loss."""
    torch.manual_seed(config.seed * 1000 + epoch)  # dropout draws the same on a resumed run
    frozen_bn_train(model)
    total, seen = 0.0, 0
    steps = range(0, len(x), config.batch_size)
    for start in tqdm(steps, desc=f"fine-tune epoch {epoch}", leave=False, disable=not progress):
        xb = torch.from_numpy(x[start : start + config.batch_size])[:, None]
        loss = set_loss(model(xb), torch.from_numpy(mask[start : start + config.batch_size]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total, seen = total + loss.item() * len(xb), seen + len(xb)
    model.eval()
    return total / max(seen, 1)


def better(row: dict, best: dict | None) -> bool:
    """Kept-validation folded top-1 decides, then its loss; no validation drawings: the last epoch."""
    if best is None:
        return True
    if row["kept_val_top1"] is None:
        return True
    return (row["kept_val_top1"], -row["kept_val_loss"]) > (best["kept_val_top1"], -best["kept_val_loss"])


def run_id(config: FinetuneConfig, base: ModelEntry, kept: KeptSet) -> str:
    used = kept.digest() + base.sha256 + config.key()  # every kept drawing: its before/after figures name them all
    return f"{config.model}{SUFFIX}-{hashlib.sha256(used.encode()).hexdigest()[:10]}"


def start_or_resume(run: RunFolder, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The state after the last finished epoch (weights and optimizer restored), else a fresh one."""
    checkpoint = run.load_checkpoint("cpu")
    if checkpoint is None:
        return {"epoch": 0, "history": [], "best": None, "before": None}
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    run.log(f"resuming after epoch {checkpoint['state']['epoch']}")
    return checkpoint["state"]


def finetune(kept: KeptSet, config: FinetuneConfig, models: Path | None = None, data_root: Path | None = None,
             runs: Path | None = None, progress: bool = True) -> Path:  # fmt: skip
    """Fine-tune (or resume, or find finished) and return the run folder, which holds ``result.json``."""
    model, base = load_exported(config.model, models)
    if base.split not in LETTER_SPLITS:
        raise ValueError(f"{base.name} reads {base.split}, not the letters kept drawings hold: pick a model of "
                         f"{', '.join(LETTER_SPLITS)}")
    if len(kept.part("train")) == 0:
        raise ValueError("no kept drawings in the training part: keep some drawings first")
    run = RunFolder(Path(runs or runs_dir()) / run_id(config, base, kept), echo=progress)
    if (run.path / "result.json").is_file():
        run.log(f"{run.id} is already finished: {run.path / 'result.json'}")
        return run.path
    data = load_split(base.split, base.protocol or "auto", root=data_root)
    masks = label_masks(kept.part("train").characters, list(base.labels), base.merged)
    material = Material(kept.part("train").inputs, masks, *data.parts["train"])
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    state = start_or_resume(run, model, optimizer)
    if state["before"] is None:
        write_json(run.config_path, {"finetune": asdict(config), "base": base.name, "base_sha256": base.sha256,
                                     "kept": kept_counts(kept), "data": data.source})  # fmt: skip
        state["before"] = compared_scores(model, base, kept, data, config.eval_limit)
        state["best"] = epoch_row(0, None, model, base, kept)
        run.save_best(model)
        run.log(f"{run.id}: {config.model} ({base.sha256[:12]}) on {kept_counts(kept)} kept drawings + "
                f"{config.pool_per_epoch} pool images per epoch; before {json.dumps(state['before'])}")
    while state["epoch"] < config.epochs:
        epoch = state["epoch"] + 1
        started = time.perf_counter()
        x, mask = material.epoch(config, epoch, len(base.labels))
        loss = train_epoch(model, optimizer, x, mask, config, epoch, progress)
        row = epoch_row(epoch, loss, model, base, kept) | {"seconds": round(time.perf_counter() - started, 1)}
        if better(row, state["best"]):
            state["best"] = row
            run.save_best(model)
        state["epoch"], state["history"] = epoch, [*state["history"], row]
        run.save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state})
        run.write_history(state["history"])
        run.log(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    finish(run, model, base, kept, data, config, state)
    return run.path


def kept_counts(kept: KeptSet) -> dict[str, int]:
    return {part: len(kept.part(part)) for part in ("train", "val", "test")}


def epoch_row(epoch: int, loss: float | None, model: nn.Module, base: ModelEntry, kept: KeptSet) -> dict:
    val = kept_eval(model, list(base.labels), base.merged, kept.part("val"))
    return {"epoch": epoch, "train_loss": loss, "kept_val_top1": val["top1"], "kept_val_loss": val.get("loss", 0.0)}


def finish(run: RunFolder, model: nn.Module, base: ModelEntry, kept: KeptSet, data: SplitData, config: FinetuneConfig,
           state: dict) -> None:  # fmt: skip
    """The chosen epoch's weights scored like the start; ``result.json`` (last: the run is done)."""
    model.load_state_dict(run.load_best("cpu"))
    after = compared_scores(model, base, kept, data, config.eval_limit)
    result = {"run_id": run.id, "base": {"name": base.name, "sha256": base.sha256, "family": base.family},
              "config": asdict(config), "kept": kept_counts(kept), "kept_left_out": kept.left_out,
              "kept_digest": kept.digest(),
              "chosen_epoch": state["best"]["epoch"], "before": state["before"], "after": after,
              "history": state["history"], "data": data.source, "environment": environment()}  # fmt: skip
    write_json(run.path / "result.json", result)
    run.log(f"chosen epoch {state['best']['epoch']} (kept validation); before {json.dumps(state['before'])}; "
            f"after {json.dumps(after)}")


# ---------------------------------------------------------------------------------------------
# The command's flags (``python -m training drawings finetune``, wired in training/__main__.py)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = FinetuneConfig()
    parser.add_argument("--model", default=defaults.model, help="the exported model to start from")
    for name in ("epochs", "lr", "batch_size", "kept_repeats", "pool_per_epoch", "seed"):
        value = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value, help=f"default {value}")
    parser.add_argument("--eval-limit", type=int, default=None, help="pool val/test images scored (default: all)")
    parser.add_argument("--models", type=Path, default=None, help="export folder to start from (default: $MODELS_DIR)")
    parser.add_argument("--out", type=Path, default=None, help="export folder to write into (default: --models)")
    parser.add_argument("--runs-dir", type=Path, default=None, help="run folders (default: $RUNS_DIR or runs/)")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--bench-per-class", type=int, default=10, help="drawing-benchmark sources per class")
    parser.add_argument("--no-export", action="store_true", help="fine-tune only")
    parser.add_argument("--quiet", action="store_true")


