"""Losses: cross-entropy, focal, class-weighted cross-entropy, and the partial-label loss (label smoothing, pair
labels of ``pool_images="all"``); ``create_loss`` picks one from a run's settings."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.config import RunConfig
from training.data import PAIR_BASE, pair_classes


class FocalLoss(nn.Module):
    """alpha * (1 - p_t)**gamma * CE, averaged; gamma 0 and alpha 1 give plain cross-entropy."""

    def __init__(self, gamma: float = 2.0, alpha: float = 1.0) -> None:
        super().__init__()
        self.gamma, self.alpha = gamma, alpha

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, target, reduction="none")
        p_t = torch.exp(-ce)
        return (self.alpha * (1 - p_t) ** self.gamma * ce).mean()


class WeightedCrossEntropy(nn.Module):
    """Per-sample class weights averaged over the batch, as Keras' ``class_weight`` does."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weights", weights.float())

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (F.cross_entropy(logits, target, reduction="none") * self.weights[target]).mean()


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """n_samples / (n_classes * count), scikit-learn's 'balanced' weights (the report's recipe)."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = len(labels) / (num_classes * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32)


class PartialLabelLoss(nn.Module):
    """-log of the probability of the allowed classes (one class, or an upper/lower pair for a pair label
    ``data.PAIR_BASE + k``), label-smoothed."""

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


LOSSES = ("cross_entropy", "focal", "weighted_cross_entropy")


def create_loss(config: RunConfig, train_labels: np.ndarray, num_classes: int) -> nn.Module:
    """The run's loss: ``PartialLabelLoss`` when it smooths labels or trains on pair labels (cross-entropy
    only), else the loss ``config.loss`` names, with its focal or class-weight settings."""
    if config.label_smoothing or config.pool_images != "labelled":
        if config.loss != "cross_entropy":
            raise ValueError(f"label smoothing and pair labels work with cross_entropy, not {config.loss!r}")
        return PartialLabelLoss(num_classes, config.label_smoothing)
    if config.loss == "cross_entropy":
        return nn.CrossEntropyLoss()
    if config.loss == "focal":
        return FocalLoss(config.focal_gamma, config.focal_alpha)
    if config.loss == "weighted_cross_entropy":
        return WeightedCrossEntropy(balanced_class_weights(train_labels, num_classes))
    raise ValueError(f"unknown loss {config.loss!r}; known: {', '.join(LOSSES)}")
