"""The one training loop: the reports' common protocol, checkpoints, resume and metrics.

A run lives in ``runs/<run id>/``: config.json, log.txt, history.json/.csv, checkpoint.pt (after
every finished epoch, so a killed run resumes there), best.pt and, once done, metrics.json.
Data stays in memory as uint8 tensors (on the GPU when training there); a batch is one index.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score
from torch import nn
from tqdm import tqdm

from training.data import REPO_ROOT, SplitData, load_split
from training.losses import create_loss
from training.config import RunConfig
from training.models import create_model, model_info
from training.optim import create_optimizer

RUNS_DIR = Path(os.environ.get("RUNS_DIR", REPO_ROOT / "runs"))
# What a run's record is, without its weights: enough to trace every published number back to its run.
RUN_RECORD = ("config.json", "log.txt", "history.csv", "history.json", "metrics.json")


def copy_run_record(run_dir: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in RUN_RECORD:
        if (run_dir / name).exists():
            shutil.copy2(run_dir / name, target / name)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def environment() -> dict:
    """Where and with what a result was produced, recorded beside every result."""
    # $GIT_COMMIT names the commit where the code runs from a copy without .git (a lent GPU machine).
    commit = os.environ.get("GIT_COMMIT", "")
    try:
        commit = commit or subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "git_commit": commit or "unknown",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "host_cpus": os.cpu_count(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def model_in_channels(name: str) -> int:
    return model_info(name).in_channels


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n indices keeping the class proportions, drawn with a seed (sorted)."""
    if n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    # Round-robin over classes in the shuffled order keeps proportions without a per-class loop.
    rank = np.empty(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        members = order[labels[order] == c]
        rank[members] = (np.arange(len(members)) + rng.random()) / len(members)
    return np.sort(np.argsort(rank, kind="stable")[:n])


class Batches:
    """A part of a split held as a uint8 tensor; yields float batches in [0, 1]."""

    def __init__(self, x: np.ndarray, y: np.ndarray, device: torch.device, channels: int) -> None:
        self.x = torch.from_numpy(x).to(device)
        self.y = torch.from_numpy(y).to(device)
        self.channels = channels

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x[idx].unsqueeze(1).float().div_(255.0)
        if self.channels != 1:
            x = x.expand(-1, self.channels, -1, -1)
        if x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.y[idx]


@torch.no_grad()
def evaluate(model: nn.Module, data: Batches, batch_size: int, loss_fn: nn.Module | None = None) -> dict:
    """Loss, accuracy and predictions over a whole part, in order."""
    model.eval()
    total_loss, logits_all = 0.0, []
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)), device=data.y.device)
        x, y = data.batch(idx)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.is_cuda):
            logits = model(x).float()
        if loss_fn is not None:
            total_loss += float(loss_fn(logits, y)) * len(idx)
        logits_all.append(logits)
    if not logits_all:
        return {"loss": float("nan"), "accuracy": float("nan"), "preds": np.zeros(0, dtype=np.int64)}
    preds = torch.cat(logits_all).argmax(1)
    return {
        "loss": total_loss / len(data),
        "accuracy": float((preds == data.y).float().mean()),
        "preds": preds.cpu().numpy(),
    }


def _save_atomic(obj: object, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _write_history(run_dir: Path, history: list[dict]) -> None:
    (run_dir / "history.json").write_text(json.dumps(history, indent=1))
    if history:
        with (run_dir / "history.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)


def prepare_data(config: RunConfig, data: SplitData | None = None) -> SplitData:
    data = data or load_split(config.split, config.protocol, seed=42)
    parts = dict(data.parts)
    for part, limit in (("train", config.limit_train), ("val", config.limit_val)):
        x, y = parts[part]
        if limit is not None and limit < len(y):
            keep = stratified_subset(y, limit, seed=42)
            parts[part] = (x[keep], y[keep])
    return dataclasses.replace(data, parts=parts)


def train(
    config: RunConfig,
    runs_dir: Path | None = None,
    device: str = "auto",
    data: SplitData | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume, or skip when done) one run; returns its metrics."""
    run_dir = Path(runs_dir or RUNS_DIR) / config.run_id()
    metrics_path = run_dir / "metrics.json"
    if metrics_path.exists():
        return json.loads(metrics_path.read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1))
    dev = pick_device(device)
    log = (run_dir / "log.txt").open("a")

    def say(message: str) -> None:
        log.write(message + "\n")
        log.flush()
        if progress:
            tqdm.write(message)

    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    data = prepare_data(config, data)
    channels = model_in_channels(config.model)
    train_set, val_set, test_set = (Batches(*data.parts[p], dev, channels) for p in ("train", "val", "test"))
    model = create_model(config.model, data.num_classes, **config.model_args).to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = create_optimizer(config.optimizer, model, config.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience, min_lr=config.min_lr
    )
    loss_fn = create_loss(
        config.loss, data.parts["train"][1], data.num_classes, config.focal_gamma, config.focal_alpha
    ).to(dev)
    use_val = len(val_set) > 0

    state = {"epoch": 0, "best_val": float("inf"), "bad_epochs": 0, "train_seconds": 0.0, "history": []}
    checkpoint_path = run_dir / "checkpoint.pt"
    if checkpoint_path.exists():
        ckpt = torch.load(checkpoint_path, map_location=dev, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state = ckpt["state"]
        say(f"resuming {run_dir.name} after epoch {state['epoch']}")
    else:
        say(f"run {run_dir.name} on {dev}: {data.name}/{data.protocol}, train {len(train_set):,}, "
            f"val {len(val_set):,}, test {len(test_set):,}; {json.dumps(dataclasses.asdict(config))}")

    while state["epoch"] < config.epochs:
        epoch = state["epoch"] + 1
        if use_val and config.early_stop_patience and state["bad_epochs"] >= config.early_stop_patience:
            break
        # Seeding per epoch (not once) makes a resumed run draw exactly what an unbroken one would.
        torch.manual_seed(config.seed * 1000 + epoch)
        order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(config.seed + epoch))
        order = order.to(dev)
        model.train()
        started = time.perf_counter()
        seen, loss_sum, correct = 0, 0.0, 0
        # A trailing batch of one image would break BatchNorm's batch statistics: skip it (it changes every epoch).
        last = len(train_set) - 1 if len(train_set) % config.batch_size == 1 else len(train_set)
        steps = range(0, last, config.batch_size)
        bar = tqdm(steps, desc=f"{run_dir.name} epoch {epoch}", leave=False, disable=not progress)
        for start in bar:
            x, y = train_set.batch(order[start : start + config.batch_size])
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                logits = model(x)
            loss = loss_fn(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(y)
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        state["train_seconds"] += seconds
        row = {"epoch": epoch, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
               "lr": optimizer.param_groups[0]["lr"], "seconds": round(seconds, 3)}
        if use_val:
            val = evaluate(model, val_set, config.batch_size, loss_fn)
            row.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
            scheduler.step(val["loss"])
            improved = val["loss"] < state["best_val"] - config.min_delta
        else:
            improved = True  # no validation part (Study B): the last epoch is the result, as in the report
        if improved:
            state["best_val"] = row.get("val_loss", float("inf"))
            state["bad_epochs"] = 0
            state["best_epoch"] = epoch
            _save_atomic(model.state_dict(), run_dir / "best.pt")
        else:
            state["bad_epochs"] += 1
        state["history"].append(row)
        state["epoch"] = epoch
        _save_atomic(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "state": state},
            checkpoint_path,
        )
        _write_history(run_dir, state["history"])
        say(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))

    # Restore the best weights (early stopping's restore_best_weights) and score the test part.
    model.load_state_dict(torch.load(run_dir / "best.pt", map_location=dev, weights_only=True))
    if dev.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    test = evaluate(model, test_set, config.batch_size, loss_fn)
    inference_seconds = time.perf_counter() - started
    y_true = data.parts["test"][1]
    labels = np.arange(data.num_classes)
    cm = confusion_matrix(y_true, test["preds"], labels=labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(cm) / cm.sum(1)
    metrics = {
        "run_id": run_dir.name,
        "config": dataclasses.asdict(config),
        "split": data.name,
        "protocol": data.protocol,
        "data_source": data.source,
        "device": str(dev),
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "weighted_f1": float(f1_score(y_true, test["preds"], average="weighted", zero_division=0)),
        "per_class_accuracy": [None if np.isnan(v) else float(v) for v in per_class],
        "confusion_matrix": cm.tolist(),
        "train_seconds": state["train_seconds"],
        "inference_seconds": inference_seconds,
        "epochs_run": state["epoch"],
        "best_epoch": state.get("best_epoch", state["epoch"]),
        "best_val_loss": state["best_val"] if use_val else None,
        "best_val_accuracy": max((r.get("val_accuracy", 0) for r in state["history"]), default=None)
        if use_val else None,
        "n_train": len(train_set),
        "n_val": len(val_set),
        "n_test": len(test_set),
        "chars": list(data.chars),
        "environment": environment(),
    }
    for name, (x, y) in data.extra_tests.items():
        extra = evaluate(model, Batches(x, y, dev, channels), config.batch_size, loss_fn)
        metrics[f"{name}_accuracy"] = extra["accuracy"]
        metrics[f"{name}_loss"] = extra["loss"]
    say(f"test loss {metrics['test_loss']:.4f} accuracy {metrics['test_accuracy']:.4f} "
        f"weighted F1 {metrics['weighted_f1']:.4f}; trained {state['train_seconds']:.1f} s")
    tmp = metrics_path.with_name("metrics.json.tmp")
    tmp.write_text(json.dumps(metrics, indent=1))
    tmp.replace(metrics_path)
    log.close()
    return metrics


def load_trained(run_dir: Path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """The best weights of a finished run and its metrics."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = RunConfig.from_dict(metrics["config"])
    model = create_model(config.model, len(metrics["chars"]), **config.model_args)
    model.load_state_dict(torch.load(run_dir / "best.pt", map_location=device, weights_only=True))
    return model.eval(), metrics
