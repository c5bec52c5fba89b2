"""The one training loop: the reports' common protocol, checkpoints, resume and metrics.

``train`` reads top to bottom, as torchvision's ``references/classification/train.py`` does: prepare the data,
create the model, optimizer, schedule and loss (``create_learner``), resume from the run folder's checkpoint,
then per epoch ``train_one_epoch``, ``evaluate`` on the validation part, early stopping and a checkpoint; at the
end restore the best weights and score the test part (``test_metrics``) into metrics.json. The run folder
(``training.runfolder.RunFolder``) is the only code that touches the run's files. Data stays in memory as uint8
tensors (on the GPU when training there); a batch is one index.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score
from torch import nn
from tqdm import tqdm

from training import fixmatch, paths
from training.augmentation import train_batches
from training.batches import Batches, evaluate
from training.board import Board
from training.config import RunConfig
from training.data import SplitData, default_root, load_split, with_every_pool_image
from training.losses import create_loss
from training.models import create_model, model_info
from training.optim import create_optimizer, create_scheduler, wrap_model
from training.records import Metrics
from training.runfolder import RunFolder, load_pretrained
from training.unlabelled import build_unlabelled
from training.utils import environment, pick_device, stratified_subset

PARTS = ("train", "val", "test")


@dataclass
class TrainState:
    """Where a run stands after its last finished epoch; the checkpoint stores it as a dict."""

    epoch: int = 0
    best_val: float = float("inf")
    bad_epochs: int = 0
    best_epoch: int | None = None  # None until an epoch improves; the metrics then name the last epoch
    train_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)

    @classmethod
    def from_dict(cls, values: dict) -> TrainState:
        # Checkpoints written before a field existed (best_epoch) lack it: its default stands in.
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})

    def should_stop(self, config: RunConfig, use_val: bool) -> bool:
        """Early stopping: validation loss has not improved for ``early_stop_patience`` epochs (0: never)."""
        return bool(use_val and config.early_stop_patience and self.bad_epochs >= config.early_stop_patience)

    def end_epoch(self, row: dict, improved: bool) -> None:
        if improved:
            self.best_val = row.get("val_loss", float("inf"))
            self.bad_epochs = 0
            self.best_epoch = row["epoch"]
        else:
            self.bad_epochs += 1
        self.history.append(row)
        self.epoch = row["epoch"]


@dataclass
class Learner:
    """What a run trains with: the model, its optimizer, the learning-rate schedule and the loss.

    ``step_model`` is what a training step calls: the model itself, or its ``torch.compile`` form (same
    parameters; fewer, fused kernels on a GPU). Weights are saved from ``model``, so files never depend on it.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    loss_fn: nn.Module
    step_model: nn.Module | None = None
    unlabelled: fixmatch.FixMatch | None = None  # FixMatch's pseudo-labelled images (off unless fixmatch_mu)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def checkpoint(self, state: TrainState) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "state": dataclasses.asdict(state)}  # fmt: skip

    def restore(self, checkpoint: dict) -> TrainState:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        return TrainState.from_dict(checkpoint["state"])


def prepare_data(config: RunConfig, data: SplitData | None = None) -> SplitData:
    """The run's split, with the seeded, class-stratified subsets ``limit_train`` / ``limit_val`` ask for."""
    data = with_every_pool_image(config, data or load_split(config.split, config.protocol, seed=42))
    parts = dict(data.parts)
    for part, limit in (("train", config.limit_train), ("val", config.limit_val)):
        x, y = parts[part]
        if limit is not None and limit < len(y):
            keep = stratified_subset(y, limit, seed=42)
            parts[part] = (x[keep], y[keep])
    return dataclasses.replace(data, parts=parts)


def create_learner(config: RunConfig, data: SplitData, device: torch.device, compile_model: bool = False) -> Learner:
    model = wrap_model(create_model(config.model, data.num_classes, **config.model_args), config).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = create_optimizer(config.optimizer, model, config.lr)
    steps_per_epoch = -(-len(data.parts["train"][1]) // config.batch_size)
    scheduler = create_scheduler(config, model, optimizer, steps_per_epoch)
    loss_fn = create_loss(config, data.parts["train"][1], data.num_classes).to(device)
    return Learner(model, optimizer, scheduler, loss_fn, torch.compile(model) if compile_model else model,
                   fixmatch.create(config, device, lambda: unlabelled_images(str(default_root()))))


@dataclass
class EpochResult:
    loss: float
    accuracy: float
    seconds: float
    unlabelled_used: float | None = None  # FixMatch: the share of unlabelled images above the threshold


def train_one_epoch(learner: Learner, train_set: Batches, config: RunConfig, epoch: int, desc: str = "",
                    progress: bool = True) -> EpochResult:  # fmt: skip
    """One pass over the training part in a seeded order, with bf16 autocast on CUDA."""
    model = learner.model if learner.step_model is None else learner.step_model
    device = train_set.y.device
    # Seeding per epoch (not once) makes a resumed run draw exactly what an unbroken one would.
    torch.manual_seed(config.seed * 1000 + epoch)
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(config.seed + epoch)).to(device)
    model.train()
    started = time.perf_counter()
    seen = 0
    # Sums stay on the device (read back only for the progress bar): a read per step would stall the GPU.
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    used = torch.zeros((), device=device, dtype=torch.float64)
    # A trailing batch of one image would break BatchNorm's batch statistics: skip it (it changes every epoch).
    last = len(train_set) - 1 if len(train_set) % config.batch_size == 1 else len(train_set)
    bar = tqdm(range(0, last, config.batch_size), desc=desc, leave=False, disable=not progress)
    for step, start in enumerate(bar):
        x, y = train_set.batch(order[start : start + config.batch_size])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x)
        loss = learner.loss_fn(logits.float(), y)
        if learner.unlabelled is not None:
            unlabelled_loss, share = learner.unlabelled.loss(model, len(y))
            loss, used = loss + unlabelled_loss, used + share.double()
        learner.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        learner.optimizer.step()
        seen += len(y)
        loss_sum += loss.detach().double() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        if progress and step % 20 == 0:
            bar.set_postfix(loss=f"{float(loss_sum) / seen:.4f}", acc=f"{int(correct) / seen:.4f}")
    loss_mean, accuracy = float(loss_sum) / seen, int(correct) / seen  # waits for the GPU to finish the epoch
    share = float(used) / (step + 1) if learner.unlabelled is not None else None
    return EpochResult(loss_mean, accuracy, time.perf_counter() - started, share)


def test_metrics(learner: Learner, sets: dict[str, Batches], data: SplitData, config: RunConfig, state: TrainState,
                 run_id: str, device: torch.device) -> tuple[Metrics, dict[str, tuple]]:  # fmt: skip
    """Score the test part (and any extra test part) with the model as it is: the run's metrics, and the
    predicted class of every test image per part (kept for paired comparisons between runs)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    test = evaluate(learner.model, sets["test"], config.batch_size, learner.loss_fn)
    inference_seconds = time.perf_counter() - started
    y_true = data.parts["test"][1]
    cm = confusion_matrix(y_true, test.preds, labels=np.arange(data.num_classes))
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(cm) / cm.sum(1)
    use_val = len(sets["val"]) > 0
    extra_scores, extra_preds = extra_test_scores(learner, data, config, device)
    metrics = Metrics(
        run_id=run_id, config=config, split=data.name, protocol=data.protocol, data_source=data.source,
        device=str(device), test_loss=test.loss, test_accuracy=test.accuracy,
        weighted_f1=float(f1_score(y_true, test.preds, average="weighted", zero_division=0)),
        per_class_accuracy=[None if np.isnan(v) else float(v) for v in per_class], confusion_matrix=cm.tolist(),
        train_seconds=state.train_seconds, inference_seconds=inference_seconds, epochs_run=state.epoch,
        best_epoch=state.epoch if state.best_epoch is None else state.best_epoch,
        best_val_loss=state.best_val if use_val else None,
        best_val_accuracy=max((r.get("val_accuracy", 0) for r in state.history), default=None) if use_val else None,
        n_train=len(sets["train"]), n_val=len(sets["val"]), n_test=len(sets["test"]), chars=list(data.chars),
        environment=environment(), **extra_scores,
    )  # fmt: skip
    return metrics, {"test": (test.preds, y_true), **extra_preds}


def extra_test_scores(learner: Learner, data: SplitData, config: RunConfig,
                      device: torch.device) -> tuple[dict[str, float], dict[str, tuple]]:  # fmt: skip
    """``<name>_accuracy`` and ``<name>_loss`` for each extra test part (Study B: the full MNIST test set),
    and its predictions."""
    scores, preds = {}, {}
    for name, (x, y) in data.extra_tests.items():
        batches = Batches(x, y, device, model_info(config.model).in_channels)
        extra = evaluate(learner.model, batches, config.batch_size, learner.loss_fn)
        scores[f"{name}_accuracy"], scores[f"{name}_loss"] = extra.accuracy, extra.loss
        preds[name] = (extra.preds, y)
    return scores, preds


@torch.no_grad()
def clean_bn_statistics(model: nn.Module, train_set: Batches, batch_size: int) -> None:
    """PreciseBN (Wu & Johnson 2021): BatchNorm's running statistics replaced by the plain average over the training
    part, each image once, without augmentation or dropout. The averages kept while training mix in augmented
    batches (the handwriting augmentation, FixMatch's strong views), which clean test images do not look like."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    model.eval()  # augmentation and dropout off; only the BatchNorm layers gather statistics
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
        m.train()
    for start in range(0, len(train_set), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(train_set)), device=train_set.y.device)
        model(train_set.batch(idx)[0])
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


def final_weights(run: RunFolder, learner: Learner, config: RunConfig, train_set: Batches,
                  device: torch.device) -> None:  # fmt: skip
    """The weights a run is scored and exported with: the best epoch's (early stopping's restore_best_weights), with
    BatchNorm's statistics re-estimated on the clean training part when the run asks for it (saved as best.pt)."""
    learner.model.load_state_dict(run.load_best(device))
    if config.bn_statistics == "clean":
        clean_bn_statistics(learner.model, getattr(train_set, "inner", train_set), config.batch_size)
        run.save_best(learner.model)
        run.log("BatchNorm statistics re-estimated over the training part without augmentation (PreciseBN)")
    elif config.bn_statistics != "running":
        raise ValueError(f"bn_statistics must be 'running' or 'clean', not {config.bn_statistics!r}")


def resume(run: RunFolder, learner: Learner, device: torch.device) -> TrainState | None:
    """The state after the last finished epoch (weights, optimizer and schedule restored), or None to start."""
    checkpoint = run.load_checkpoint(device)
    if checkpoint is None:
        return None
    state = learner.restore(checkpoint)
    run.log(f"resuming {run.id} after epoch {state.epoch}")
    return state


def already_finished(run: RunFolder) -> Metrics:
    """A finished run is not trained again: say so (stderr and its log) and return its metrics."""
    metrics = run.metrics()
    message = (f"run {run.id} is already finished (test accuracy {metrics.test_accuracy:.4f}); "
               "delete its folder to train it again")  # fmt: skip
    print(message, file=sys.stderr)
    run.log(message, echo=False)
    return metrics


def save_epoch(run: RunFolder, learner: Learner, state: TrainState, improved: bool) -> None:
    """After every epoch: best.pt when validation improved, the checkpoint, the history and a log line."""
    if improved:
        run.save_best(learner.model)
    run.save_checkpoint(learner.checkpoint(state))
    run.write_history(state.history)
    run.log(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in state.history[-1].items()))


def train(config: RunConfig, runs_dir: Path | None = None, device: str = "auto", data: SplitData | None = None,
          progress: bool = True, compile_model: bool = False) -> Metrics:  # fmt: skip
    """Train one run (resuming it after a kill) and write its metrics; a finished run is not trained again.

    ``compile_model`` runs training steps through ``torch.compile`` (a GPU speed option, not a setting of the run:
    the run id and the recorded protocol stay the same; the log says it was used)."""
    run = RunFolder(Path(runs_dir or paths.runs_dir()) / config.run_id(), echo=progress)
    if run.done:
        return already_finished(run)
    run.write_config(config)
    dev = pick_device(device)
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    data = prepare_data(config, data)
    sets = {part: Batches(*data.parts[part], dev, model_info(config.model).in_channels) for part in PARTS}
    sets["train"] = train_batches(config, sets["train"])  # augmented when an aug_* knob asks for it
    learner = create_learner(config, data, dev, compile_model)
    state = resume(run, learner, dev)
    if state is None:
        state = TrainState()
        run.log(f"run {run.id} on {dev}: {data.name}/{data.protocol}, train {len(sets['train']):,}, "
                f"val {len(sets['val']):,}, test {len(sets['test']):,}{'; torch.compile' if compile_model else ''}; "
                f"{json.dumps(config.to_dict())}")
        if config.init_from:  # a fresh run starts from a pretrained encoder; a resumed one has its own weights
            load_pretrained(learner.model, run.path.parent / config.init_from)
            run.log(f"body initialised from the pretrained encoder {config.init_from}")
        if learner.unlabelled is not None:
            run.log(learner.unlabelled.describe())
    use_val = len(sets["val"]) > 0
    board = Board(run.path, len(sets["train"]), state.history)
    while state.epoch < config.epochs and not state.should_stop(config, use_val):
        epoch = state.epoch + 1
        result = train_one_epoch(learner, sets["train"], config, epoch, f"{run.id} epoch {epoch}", progress)
        state.train_seconds += result.seconds
        row = {"epoch": epoch, "train_loss": result.loss, "train_accuracy": result.accuracy, "lr": learner.lr,
               "seconds": round(result.seconds, 3)}  # fmt: skip
        if result.unlabelled_used is not None:
            row["unlabelled_used"] = result.unlabelled_used
        improved = True  # no validation part (Study B): the last epoch is the result, as in the report
        if use_val:
            val = evaluate(learner.model, sets["val"], config.batch_size, learner.loss_fn)
            row.update(val_loss=val.loss, val_accuracy=val.accuracy)
            learner.scheduler.step(val.loss)
            improved = val.loss < state.best_val - config.min_delta
        state.end_epoch(row, improved)
        board.epoch(row)
        save_epoch(run, learner, state, improved)
    final_weights(run, learner, config, sets["train"], dev)
    metrics, predictions = test_metrics(learner, sets, data, config, state, run.id, dev)
    run.log(f"test loss {metrics.test_loss:.4f} accuracy {metrics.test_accuracy:.4f} "
            f"weighted F1 {metrics.weighted_f1:.4f}; trained {state.train_seconds:.1f} s")  # fmt: skip
    run.write_predictions(predictions)
    board.finish(state.epoch, metrics.test_loss, metrics.test_accuracy, data.parts["test"][0], *predictions["test"],
                 data.chars)  # fmt: skip
    metrics.write(run.path)  # last: a run is done once its metrics exist
    return metrics


@lru_cache(maxsize=1)
def unlabelled_images(root: str) -> torch.Tensor:
    """Study B's unlabelled digits as uint8 [N, 28, 28], once per process (every run of a worker shares it)."""
    return torch.from_numpy(build_unlabelled(Path(root), sources=fixmatch.SOURCES).images)
