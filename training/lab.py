"""The ``lab`` recipe: training meant to read real drawings, every part off by default (the reproduction's runs
are untouched and keep their ids; see ``RunConfig``'s ``aug_*``, ``schedule``, ``label_smoothing``, ``ema_decay``
and ``pool_images`` fields).

- Augmentation on whole batches in memory (on the GPU when training there), from kornia's per-sample random
  transforms: affine (rotation, shear, scale, translation), elastic distortion, contrast and blur; stroke width
  (grey dilation or erosion) as max pools. The trainer seeds torch per epoch, so a resumed run draws the same views
  again.
- Every pool image (``pool_images="all"``, byclass only): the bymerge-pool training images that carry no byclass
  label still fix it for the 32 classes EMNIST never merges, and narrow it to an upper/lower pair for the other
  15. They join the training part with a *pair label* (``PAIR_BASE + k``) and ``LabLoss`` maximises the
  probability of the allowed set. Validation and test parts are unchanged, and the keyed-hash partition holds
  (DATA.md): only pool images of the training part are added.
- ``LabLoss``: cross-entropy on allowed sets, with label smoothing.
- A per-step schedule (``schedule="cosine"``: linear warm-up, cosine to ``min_lr``) and an exponential moving
  average of the weights (``ema_decay``), both driven by the optimizer's step hook; the EMA weights are the ones
  validated, saved as best and exported.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel

from recognizer.labels import BYCLASS_CHARS, MERGED_CHARS, merge_key
from training.config import RunConfig
from training.data import DataError, SplitData, default_root, load_pool

PAIR_BASE = len(BYCLASS_CHARS)  # labels 62.. name an upper/lower pair of a merged letter (byclass training only)
AUGMENT_FIELDS = ("aug_rotate", "aug_shear", "aug_scale", "aug_translate", "aug_elastic", "aug_stroke",
                  "aug_contrast", "aug_blur")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Every pool image, with allowed sets


def merged_to_byclass() -> list[tuple[int, ...]]:
    """For each merged class, the byclass classes it holds: one (32 classes) or an upper/lower pair (15)."""
    return [tuple(c for c, ch in enumerate(BYCLASS_CHARS) if merge_key(ch) == m) for m in MERGED_CHARS]


def pair_classes() -> list[tuple[int, int]]:
    """The byclass pairs that a pair label ``PAIR_BASE + k`` allows, in merged-class order."""
    return [members for members in merged_to_byclass() if len(members) == 2]  # type: ignore[misc]


def labels_from_merged(merged: np.ndarray) -> np.ndarray:
    """A merged label -> its byclass label where it fixes one, else the pair label of its two cases."""
    table, pairs = [], pair_classes()
    for members in merged_to_byclass():
        table.append(members[0] if len(members) == 1 else PAIR_BASE + pairs.index(members))
    return np.asarray(table, np.int64)[merged]


def with_every_pool_image(config: RunConfig, data: SplitData) -> SplitData:
    """byclass-pool plus the training-part images it leaves out for lack of a byclass label (``pool_images="all"``).

    The pool is read from the data root (``$EMNIST_ROOT``, ``data.default_root``): point it at the same files, or a
    pool pack, that ``data`` came from."""
    if config.pool_images == "labelled":
        return data
    if config.pool_images != "all":
        raise ValueError(f"pool_images must be 'labelled' or 'all', not {config.pool_images!r}")
    if data.name != "byclass" or data.protocol != "pool":
        raise DataError(f"pool_images='all' adds byclass's missing pool images; this run is "
                        f"{data.name}/{data.protocol}")
    pool = load_pool(default_root())
    extra = np.flatnonzero((pool["part"] <= 7) & (pool["byclass"] < 0))
    x, y = data.parts["train"]
    parts = dict(data.parts, train=(np.concatenate([x, pool["images"][extra]]),
                                    np.concatenate([y, labels_from_merged(pool["merged"][extra])])))  # fmt: skip
    return dataclasses.replace(data, parts=parts, source=data.source + f" + {len(extra):,} pool images without a "
                               "byclass label (partial labels)")  # fmt: skip


class LabLoss(nn.Module):
    """-log of the probability of the allowed classes (one class, or a pair for a pair label), label-smoothed."""

    def __init__(self, num_classes: int, smoothing: float = 0.0) -> None:
        super().__init__()
        allowed = torch.eye(num_classes, dtype=torch.bool)
        if num_classes == PAIR_BASE:
            pairs = torch.zeros(len(pair_classes()), num_classes, dtype=torch.bool)
            for k, (upper, lower) in enumerate(pair_classes()):
                pairs[k, [upper, lower]] = True
            allowed = torch.cat([allowed, pairs])
        self.register_buffer("allowed", allowed)
        self.smoothing = smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits, dim=1)
        nll = -torch.logsumexp(logp.masked_fill(~self.allowed[target], -math.inf), dim=1)
        if self.smoothing:
            nll = (1 - self.smoothing) * nll - self.smoothing * logp.mean(1)
        return nll.mean()


def lab_loss(config: RunConfig, num_classes: int) -> nn.Module | None:
    """The loss for runs that smooth labels or train on pair labels; None leaves the reports' losses in charge."""
    if not config.label_smoothing and config.pool_images == "labelled":
        return None
    if config.loss != "cross_entropy":
        raise ValueError(f"label smoothing and pair labels work with cross_entropy, not {config.loss!r}")
    return LabLoss(num_classes, config.label_smoothing)


# ---------------------------------------------------------------------------------------------
# Augmentation on batches


def augmentation(config: RunConfig) -> nn.Module | None:
    """kornia's per-sample random transforms for the knobs that are set, in one sequence; None when all are off."""
    if not any(getattr(config, name) for name in AUGMENT_FIELDS):
        return None
    import kornia.augmentation as K

    steps: list[nn.Module] = []
    if config.aug_rotate or config.aug_shear or config.aug_scale or config.aug_translate:
        translate = (config.aug_translate, config.aug_translate) if config.aug_translate else None
        steps.append(K.RandomAffine(degrees=config.aug_rotate, translate=translate,
                                    scale=(1 - config.aug_scale, 1 + config.aug_scale),
                                    shear=(-config.aug_shear, config.aug_shear), p=1.0))  # fmt: skip
    if config.aug_elastic:
        # kornia's alpha is the displacement in half-widths: 1 is 14 px on 28. The knob is in pixels.
        alpha = config.aug_elastic / 14
        steps.append(K.RandomElasticTransform(kernel_size=(15, 15), sigma=(4.0, 4.0), alpha=(alpha, alpha), p=0.5))
    if config.aug_stroke:
        steps.append(StrokeWidth(config.aug_stroke))
    if config.aug_contrast:
        steps.append(K.RandomContrast(contrast=(1 - config.aug_contrast, 1 + config.aug_contrast), p=0.5))
        steps.append(K.RandomGamma(gamma=(1 - config.aug_contrast, 1 + config.aug_contrast), p=0.5))
    if config.aug_blur:
        steps.append(K.RandomGaussianBlur(kernel_size=(5, 5), sigma=(0.1, config.aug_blur), p=0.5))
    return nn.Sequential(*steps)


class StrokeWidth(nn.Module):
    """With probability p/2 a thicker stroke (3x3 grey dilation), p/2 a thinner one (3x3 grey erosion, at half
    strength so fine strokes survive), per image. A flat 3x3 dilation is a 3x3 max pool, which runs many times
    faster than kornia.morphology's general structuring elements on a CPU."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = torch.rand(len(x), 1, 1, 1, device=x.device)
        thick = F.max_pool2d(x, 3, stride=1, padding=1)
        thin = 0.5 * (x - F.max_pool2d(-x, 3, stride=1, padding=1))
        return torch.where(u < self.p / 2, thick, torch.where(u < self.p, thin, x))


class AugmentedBatches:
    """The training part's batches, each through the augmentation (no per-sample Python)."""

    def __init__(self, batches, augment: nn.Module) -> None:
        self.inner, self.augment = batches, augment.to(batches.y.device)
        self.x, self.y = batches.x, batches.y

    def __len__(self) -> int:
        return len(self.inner)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.inner.batch(idx)
        with torch.no_grad():
            out = self.augment(x).clamp_(0.0, 1.0)
        return out.contiguous(memory_format=torch.channels_last) if out.is_cuda else out, y


def train_batches(config: RunConfig, batches):
    """The training part as the run trains on it: augmented when a knob is set."""
    augment = augmentation(config)
    return batches if augment is None else AugmentedBatches(batches, augment)


# ---------------------------------------------------------------------------------------------
# Weight averaging and the per-step schedule


class EMAModel(nn.Module):
    """The trained network and its exponential moving average: training mode runs the network, eval mode the
    average (so validation, best.pt's choice and the test score are the average's)."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        super().__init__()
        self.net = net
        self.average = AveragedModel(net, avg_fn=warmed_ema(decay), use_buffers=True)
        self.average.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) if self.training else self.average(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return (self.net if self.training else self.average.module).features(x)

    @torch.no_grad()
    def update(self) -> None:
        self.average.update_parameters(self.net)


def warmed_ema(decay: float) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """EMA whose decay grows as (1 + n) / (10 + n) up to ``decay``: a short run is not stuck near its first weights."""

    def average(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = torch.clamp((1 + n) / (10 + n), max=decay).to(averaged.dtype) if averaged.is_floating_point() else 0
        return averaged + (current - averaged) * (1 - d)

    return average


def wrap_model(model: nn.Module, config: RunConfig) -> nn.Module:
    return EMAModel(model, config.ema_decay) if config.ema_decay else model


def unwrap(model: nn.Module) -> nn.Module:
    """The network a finished run stands for: the weight average when there is one."""
    return model.average.module if isinstance(model, EMAModel) else model


class CosineSchedule:
    """Per optimizer step: linear warm-up over ``warmup`` steps, then cosine from the initial rate to ``min_lr``.
    The trainer's per-epoch ``step(val_loss)`` is a no-op; the optimizer's step hook drives it."""

    def __init__(self, optimizer: torch.optim.Optimizer, total: int, warmup: int, min_lr: float) -> None:
        base = optimizer.param_groups[0]["lr"]
        floor = min(min_lr / base, 1.0)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

        self.schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        optimizer.register_step_post_hook(lambda *_: self.schedule.step())

    def step(self, _metric: float | None = None) -> None:
        pass

    def state_dict(self) -> dict:
        return self.schedule.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.schedule.load_state_dict(state)


def attach(config: RunConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
           steps_per_epoch: int) -> CosineSchedule | None:  # fmt: skip
    """Hook the weight average to the optimizer's steps; the cosine schedule when asked (None: the plateau rule)."""
    if isinstance(model, EMAModel):
        optimizer.register_step_post_hook(lambda *_: model.update())
    if config.schedule == "plateau":
        return None
    if config.schedule != "cosine":
        raise ValueError(f"schedule must be 'plateau' or 'cosine', not {config.schedule!r}")
    return CosineSchedule(optimizer, config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch,
                          config.min_lr)  # fmt: skip

