"""Optimisation: optimizers by name, with Table 3's settings (Keras defaults where the report names none); the
learning-rate schedule (``create_scheduler``: the reports' plateau rule, or a per-step cosine with warm-up); and an
exponential moving average of the weights (``ema_decay``), driven by the optimizer's step hook, whose weights are
the ones validated, saved as best and exported.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from training.config import RunConfig

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


# ---------------------------------------------------------------------------------------------
# Weight averaging


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
    """The network as the run trains it: with its weight average when ``ema_decay`` is set."""
    return EMAModel(model, config.ema_decay) if config.ema_decay else model


def unwrap(model: nn.Module) -> nn.Module:
    """The network a finished run stands for: the weight average when there is one."""
    return model.average.module if isinstance(model, EMAModel) else model


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules

SCHEDULES = ("plateau", "cosine")


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


def create_scheduler(config: RunConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
                     steps_per_epoch: int) -> CosineSchedule | torch.optim.lr_scheduler.ReduceLROnPlateau:  # fmt: skip
    """The run's schedule, stepped by the trainer once per epoch with the validation loss: the reports' plateau
    rule, or the per-step cosine. Also hooks the weight average (``EMAModel``) to the optimizer's steps."""
    if isinstance(model, EMAModel):
        optimizer.register_step_post_hook(lambda *_: model.update())
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience, min_lr=config.min_lr)
    if config.schedule != "cosine":
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {config.schedule!r}")
    return CosineSchedule(optimizer, config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch,
                          config.min_lr)  # fmt: skip
