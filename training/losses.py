"""Losses by name: cross-entropy, focal, class-weighted cross-entropy."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


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


def create_loss(name: str, train_labels: np.ndarray, num_classes: int, gamma: float = 2.0, alpha: float = 1.0):
    if name == "cross_entropy":
        return nn.CrossEntropyLoss()
    if name == "focal":
        return FocalLoss(gamma, alpha)
    if name == "weighted_cross_entropy":
        return WeightedCrossEntropy(balanced_class_weights(train_labels, num_classes))
    raise ValueError(f"unknown loss {name!r}; known: cross_entropy, focal, weighted_cross_entropy")
