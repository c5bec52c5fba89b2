"""Self-supervised pretraining for Study B's representation-learning table (training/experiments/studyb_ssl.py).

Two handwriting views of each unlabelled image (training/handwriting.py, SIMCLR_VIEWS), an encoder (a registered
model's ``body``), a projection head, and one of two losses (``method``):

- ``simclr`` (Chen et al. 2020): NT-Xent, each view's positive is the other view of its image, every other view
  of the batch a negative;
- ``vicreg`` (Bardes et al. 2022): no negatives; the two views' projections are pulled together (invariance)
  while each dimension's spread over the batch is held up (variance) and the dimensions are decorrelated
  (covariance), weighted 25 / 25 / 1 as in the paper.

The losses and the head are a few lines each and written here rather than taken from ``lightly``: lightly 1.6.0
requires pytorch_lightning and hydra-core, a large install for two formulas. ``nt_xent`` gave the same value as
lightly 1.6.0's ``NTXentLoss`` (to 1e-15, checked once on random float64 inputs); tests/test_ssl.py checks both
losses against their formulas written out.

A pretraining is a run like the trainer's: ``PretrainConfig`` names its folder (``pretrain-<method>-<hash>`` in
the runs folder), each epoch ends in a checkpoint (a killed pretraining resumes after its last finished epoch and
draws what an unbroken one would: every epoch seeds torch from (seed, epoch)), and ``pretrain.json``, written last,
marks it done. Its product is ``encoder.pt``, the body's weights, which a Study B run with ``init_from`` loads
before its first epoch (``load_pretrained``). Each epoch logs a monitor that uses no label beyond Study B's 400
training images: the leave-one-out k-nearest-neighbour accuracy of those 400 images in the encoder's features.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from tqdm import tqdm

from recognizer.files import write_atomic, write_json
from training.data import default_root, load_studyb
from training.experiments.profiles import PROFILES
from training.experiments.spec import Spec
from training.handwriting import SIMCLR_VIEWS, augment
from training.models import create_model
from training.runfolder import ENCODER, RunFolder
from training.runfolder import PRETRAIN_DONE as DONE
from training.unlabelled import build_unlabelled, describe_unlabelled
from training.utils import environment, pick_device

METHODS = ("simclr", "vicreg")
LOSS_NAMES = {"simclr": "NT-Xent", "vicreg": "VICReg"}
VICREG_WEIGHTS = (25.0, 25.0, 1.0)  # invariance, variance, covariance (the VICReg paper's)
CHOICE_RULE = "the higher linear-probe accuracy cross-validated on the 400 labelled training images"


@dataclass
class PretrainConfig:
    """Everything that defines a pretraining; ``run_id`` names its folder (same settings, same run)."""

    method: str = "simclr"
    model: str = "ssl_cnn"
    model_args: dict = field(default_factory=dict)
    epochs: int = 30
    images_per_epoch: int | None = None  # a seeded draw from the unlabelled set each epoch (None: all of it)
    limit_unlabelled: int | None = None  # a seeded subset of the unlabelled set (the smoke profile)
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-5
    temperature: float = 0.2  # SimCLR only
    projection_dim: int = 64
    seed: int = 42
    profile: str = "custom"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown pretraining method {self.method!r}; known: {', '.join(METHODS)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def run_id(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True)
        return f"pretrain-{self.method}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def planned_pretraining(spec: Spec, name: str, profile: str) -> PretrainConfig:
    """A spec's pretraining ``name`` under a profile's ``pretrain`` budget (training/experiments/profiles.py)."""
    budget = PROFILES[profile].get("pretrain", {})
    return PretrainConfig(**{**spec.pretrain[name], **budget, "profile": profile})


# ---------------------------------------------------------------------------------------------
# The two losses and the network


class ProjectionHead(nn.Module):
    """SimCLR's (v1) head: Linear, BatchNorm, ReLU, Linear (lightly's two-layer SimCLRProjectionHead also ends
    in a BatchNorm)."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
                                 nn.Linear(dim, out_dim))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent: each view's positive is the other view of its image, the 2N - 2 other views are negatives."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    sim = (z @ z.T) / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, targets)


def vicreg(z1: torch.Tensor, z2: torch.Tensor, weights: tuple[float, float, float] = VICREG_WEIGHTS) -> torch.Tensor:
    """VICReg: mean squared distance of the views, hinge on each dimension's std (target 1), and the squared
    off-diagonal covariances per dimension; the last two averaged over the two views, as the paper's code does."""
    invariance = F.mse_loss(z1, z2)
    variance, covariance = z1.new_zeros(()), z1.new_zeros(())
    for z in (z1, z2):
        z = z - z.mean(0)
        variance = variance + F.relu(1 - torch.sqrt(z.var(0) + 1e-4)).mean() / 2
        cov = (z.T @ z) / (len(z) - 1)
        covariance = covariance + (cov.pow(2).sum() - cov.diagonal().pow(2).sum()) / z.shape[1]
    return weights[0] * invariance + weights[1] * variance + weights[2] * covariance


class TwoViews(nn.Module):
    """The pretraining network: encoder and projection head, trained on two views of each image with the config's
    ``method`` (SimCLR's NT-Xent or VICReg)."""

    def __init__(self, config: PretrainConfig) -> None:
        super().__init__()
        classifier = create_model(config.model, 10, **config.model_args)
        self.encoder = classifier.body
        self.head = ProjectionHead(classifier.head.in_features, config.projection_dim)
        self.method = config.method

    def loss(self, x: torch.Tensor, temperature: float) -> torch.Tensor:
        # one pass for both views: one set of BN stats
        views = torch.cat([augment(x, SIMCLR_VIEWS), augment(x, SIMCLR_VIEWS)])
        z1, z2 = self.head(self.encoder(views)).chunk(2)
        return vicreg(z1, z2) if self.method == "vicreg" else nt_xent(z1, z2, temperature)


@torch.no_grad()
def features(encoder: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The encoder's features of uint8 images [N, 28, 28], in eval mode."""
    encoder.eval()
    out = [encoder(images[i : i + batch_size].unsqueeze(1).float().div(255)) for i in range(0, len(images), batch_size)]
    return torch.cat(out)


def knn_loo_accuracy(feats: torch.Tensor, labels: torch.Tensor, k: int = 10) -> float:
    """Leave-one-out k-NN accuracy (cosine similarity, votes weighted by exp(sim / 0.1))."""
    z = F.normalize(feats, dim=1)
    sim = (z @ z.T).fill_diagonal_(-math.inf)
    top, idx = sim.topk(k, dim=1)
    votes = torch.zeros(len(z), int(labels.max()) + 1, device=z.device)
    votes.scatter_add_(1, labels[idx], (top / 0.1).exp())
    return float((votes.argmax(1) == labels).float().mean())


# ---------------------------------------------------------------------------------------------
# The pretraining run


@dataclass
class PretrainData:
    images: torch.Tensor  # uint8 [N, 28, 28], unlabelled
    probe_images: torch.Tensor  # Study B's 400 labelled training images, for the k-NN monitor only
    probe_labels: torch.Tensor
    summary: dict


def pretrain_data(config: PretrainConfig, root: Path, device: torch.device) -> PretrainData:
    studyb = load_studyb(root)
    unlabelled = build_unlabelled(root, studyb)
    images = unlabelled.images
    if config.limit_unlabelled is not None and config.limit_unlabelled < len(images):
        keep = np.sort(np.random.default_rng(config.seed).choice(len(images), config.limit_unlabelled, replace=False))
        images = images[keep]
    summary = {**unlabelled.summary, "used_for_pretraining": int(len(images))}
    x, y = studyb.parts["train"]
    return PretrainData(torch.from_numpy(images).to(device), torch.from_numpy(x).to(device),
                        torch.from_numpy(y).to(device), summary)  # fmt: skip


def cosine_lr(config: PretrainConfig, epoch: int) -> float:
    """The learning rate of an epoch (1-based): a half cosine from ``lr`` down to lr / 100 over the epochs."""
    progress = (epoch - 1) / max(config.epochs, 1)
    return config.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def pretrain_epoch(net: TwoViews, optimizer: torch.optim.Optimizer, data: PretrainData, config: PretrainConfig,
                   epoch: int, progress: bool) -> dict[str, float]:  # fmt: skip
    """One epoch: a seeded draw of ``images_per_epoch`` unlabelled images in batches of two views each."""
    torch.manual_seed(config.seed * 1000 + epoch)
    n = len(data.images)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed + epoch))
    order = order[: config.images_per_epoch or n].to(data.images.device)
    batch = min(config.batch_size, len(order))
    for group in optimizer.param_groups:
        group["lr"] = cosine_lr(config, epoch)
    net.train()
    started, total, steps = time.perf_counter(), 0.0, 0
    bar = tqdm(range(0, len(order) - batch + 1, batch), desc=f"{config.method} epoch {epoch}", leave=False,
               disable=not progress)  # fmt: skip
    for start in bar:  # the last partial batch is dropped: NT-Xent's negatives should not vary in number
        x = data.images[order[start : start + batch]].unsqueeze(1).float().div_(255)
        loss = net.loss(x, config.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total, steps = total + float(loss.detach()), steps + 1
        bar.set_postfix(loss=f"{total / steps:.4f}")
    seconds = time.perf_counter() - started
    knn = knn_loo_accuracy(features(net.encoder, data.probe_images), data.probe_labels)
    return {"epoch": epoch, "loss": total / max(steps, 1), "knn_loo_accuracy": knn, "lr": cosine_lr(config, epoch),
            "images": steps * batch, "seconds": round(seconds, 3)}  # fmt: skip


def pretrain(config: PretrainConfig, runs_dir: Path, root: Path, device: str = "auto",
             progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Run (or resume) one pretraining; returns its summary (``pretrain.json``). A finished one is not rerun."""
    run = RunFolder(Path(runs_dir) / config.run_id(), echo=progress)
    if (run.path / DONE).exists():
        return json.loads((run.path / DONE).read_text())
    write_json(run.config_path, config.to_dict())
    dev = pick_device(device)
    torch.manual_seed(config.seed)
    data = pretrain_data(config, root, dev)
    net = TwoViews(config).to(dev)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    checkpoint = run.load_checkpoint(dev)
    history: list[dict] = []
    if checkpoint is not None:
        net.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        history = checkpoint["history"]
        run.log(f"resuming {run.id} after epoch {len(history)}")
    else:
        run.log(f"pretraining {run.id} on {dev}: {describe_unlabelled(data.summary)} {json.dumps(config.to_dict())}")
    for epoch in range(len(history) + 1, config.epochs + 1):
        history.append(pretrain_epoch(net, optimizer, data, config, epoch, progress))
        run.save_checkpoint({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "history": history})
        run.write_history(history)
        run.log(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in history[-1].items()))
    return finish(run, net, config, data, history, dev)


def finish(run: RunFolder, net: TwoViews, config: PretrainConfig, data: PretrainData, history: list[dict],
           device: torch.device) -> dict[str, Any]:  # fmt: skip
    """Write encoder.pt, then pretrain.json (last: the pretraining is done once it exists)."""
    torch.save(net.encoder.state_dict(), run.path / ENCODER)
    summary = {"run_id": run.id, "config": config.to_dict(), "data": data.summary, "history": history,
               "train_seconds": round(sum(h["seconds"] for h in history), 1),
               "views_seen": 2 * sum(h["images"] for h in history),
               "knn_loo_accuracy": history[-1]["knn_loo_accuracy"] if history else None,
               "device": str(device), "environment": environment()}  # fmt: skip
    write_json(run.path / DONE, summary)
    run.log(f"done: k-NN leave-one-out accuracy {summary['knn_loo_accuracy']}, {summary['train_seconds']} s")
    return summary


# ---------------------------------------------------------------------------------------------
# Tables: run a spec's pretrainings before its rows, and describe them on the results page


def pretrain_table(spec: Spec, profile: str, runs_dir: Path, root: Path, device: str) -> list[dict[str, Any]]:
    summaries = []
    for name in spec.pretrain:
        config = planned_pretraining(spec, name, profile)
        print(f"{spec.name}: pretraining {name} ({config.run_id()})", file=sys.stderr)
        summaries.append(pretrain(config, runs_dir, root, device))
    return summaries


def probe_cv_accuracy(folder: Path, config: PretrainConfig, x: np.ndarray, y: np.ndarray,
                      folds: int = 5) -> tuple[float, float]:  # fmt: skip
    """A linear probe (logistic regression on standardised features of the frozen encoder) cross-validated on
    Study B's 400 labelled training images ``x``, ``y``: mean and std of the accuracy over ``folds`` stratified
    folds. No test image is involved: it is the validation that chooses between pretraining methods."""
    encoder = create_model(config.model, 10, **config.model_args).body
    encoder.load_state_dict(torch.load(Path(folder) / ENCODER, map_location="cpu", weights_only=True))
    feats = features(encoder, torch.as_tensor(x)).numpy()
    probe_model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    scores = cross_val_score(probe_model, feats, np.asarray(y), cv=StratifiedKFold(folds, shuffle=True,
                                                                                  random_state=config.seed))
    return float(scores.mean()), float(scores.std(ddof=1))


def describe_pretraining(name: str, summary: dict, profile: str) -> str:
    first, last = summary["history"][0], summary["history"][-1]
    run_id, method = summary["run_id"], summary["config"]["method"]
    return (f"- Pretraining `{name}` ([{run_id}](runs/{run_id})), budget of profile {profile}: {method} on "
            f"{summary['data']['used_for_pretraining']:,} unlabelled images, {len(summary['history'])} epochs "
            f"of {first['images']:,} images (two views each: {summary['views_seen']:,} views), "
            f"{summary['train_seconds'] / 60:.1f} min on {summary['device']}; {LOSS_NAMES[method]} loss "
            f"{first['loss']:.3f} → {last['loss']:.3f}; leave-one-out 10-NN accuracy of the 400 labelled images in "
            f"its features {100 * first['knn_loo_accuracy']:.1f}% after epoch 1 → "
            f"{100 * last['knn_loo_accuracy']:.1f}%.")  # fmt: skip


def compare_pretrainings(spec: Spec, scores: list[dict], out_dir: Path) -> list[str]:
    """``<out>/pretraining/<table>.json`` (a folder of its own: the results folder's top JSONs are tables): each
    pretraining's validation figures and the one they choose (the higher cross-validated probe accuracy; the k-NN
    figure breaks a tie). Returns the page's lines."""
    if len(scores) < 2:
        return []
    chosen = max(scores, key=lambda s: (s["probe_cv_accuracy"], s["knn_loo_accuracy"]))
    used = sorted({row.settings["init_from"] for row in spec.trained if row.settings.get("init_from")})
    write_json(out_dir / "pretraining" / f"{spec.name}.json", {"table": spec.name, "rule": CHOICE_RULE,
               "pretrainings": scores, "chosen": chosen["name"], "rows_start_from": used}, indent=1, newline=True)
    figures = "; ".join(f"`{s['name']}` {100 * s['probe_cv_accuracy']:.1f}% (± {100 * s['probe_cv_std']:.1f} over "
                        f"5 folds; leave-one-out 10-NN {100 * s['knn_loo_accuracy']:.1f}%)"
                        for s in scores)  # fmt: skip
    rerun = ("the rows start from it" if used == [chosen["name"]] else
             f"the rows start from {', '.join(f'`{u}`' for u in used)} and were not rerun with it")
    return [f"- SimCLR or VICReg, chosen on validation ({CHOICE_RULE}, 5 stratified folds; no test image): "
            f"{figures}. **`{chosen['name']}` is chosen**; {rerun}. On 400 images a point is 4 images: differences "
            "of a point or two are within the folds' spread."]


def pretraining_page(spec: Spec, profile: str, runs_dir: Path, out_dir: Path, root: Path | None = None) -> Path | None:
    """``<out>/<table>.md`` (shown under the table on the page), each pretraining's record in ``<out>/runs``, and
    with two or more pretrainings their comparison on validation (``compare_pretrainings``)."""
    lines, scores, studyb = [], [], None
    for name in spec.pretrain:
        config = planned_pretraining(spec, name, profile)
        run = RunFolder(Path(runs_dir) / config.run_id())
        if not (run.path / DONE).exists():
            lines.append(f"- Pretraining `{name}` ({run.id}) has not run yet.")
            continue
        summary = json.loads((run.path / DONE).read_text())
        record = out_dir / "runs" / run.id
        run.copy_record(record)
        write_json(record / DONE, summary)
        if not lines:
            lines.append(f"- {describe_unlabelled(summary['data'])}")
        lines.append(describe_pretraining(name, summary, profile))
        studyb = studyb or load_studyb(root or default_root())
        mean, std = probe_cv_accuracy(run.path, config, *studyb.parts["train"])
        scores.append({"name": name, "run_id": run.id, "method": config.method, "probe_cv_accuracy": mean,
                       "probe_cv_std": std, "knn_loo_accuracy": summary["knn_loo_accuracy"],
                       "views_seen": summary["views_seen"], "train_minutes": round(summary["train_seconds"] / 60, 1)})
    lines += compare_pretrainings(spec, scores, out_dir)
    if not lines:
        return None
    return write_atomic(out_dir / f"{spec.name}.md", "\n".join(lines) + "\n")
