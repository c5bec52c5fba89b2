"""Optimizers by name, with Table 3's settings (Keras defaults where the report names none)."""

from __future__ import annotations

import torch
from torch import nn

OPTIMIZERS = ("sgd", "sgd_nesterov", "adagrad", "rmsprop", "adam", "adamax", "nadam", "radam")


def create_optimizer(name: str, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    params = model.parameters()
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "sgd_nesterov":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    if name == "rmsprop":
        # Keras' rho is torch's alpha; Keras' epsilon 1e-7.
        return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-7)
    if name == "adamax":
        return torch.optim.Adamax(params, lr=lr, betas=(0.9, 0.999), eps=1e-7)
    if name == "nadam":
        return torch.optim.NAdam(params, lr=lr, betas=(0.9, 0.999), eps=1e-7)
    if name == "radam":
        return torch.optim.RAdam(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
