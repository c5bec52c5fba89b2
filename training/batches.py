"""A split's part as uint8 tensors served in float batches, and scoring a model over a whole part.

The trainer trains and validates on ``Batches``; cross-split scoring (training/crosssplit.py) reuses ``evaluate``
without the training loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


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


@dataclass
class Evaluation:
    """A model scored on one part: mean loss (0 without a loss function), accuracy, predictions in order."""

    loss: float
    accuracy: float
    preds: np.ndarray


@torch.no_grad()
def evaluate(model: nn.Module, batches: Batches, batch_size: int, loss_fn: nn.Module | None = None) -> Evaluation:
    """Loss, accuracy and predictions over a whole part, in order."""
    model.eval()
    # Sums stay on the device: reading a value back every batch would stall a GPU once per batch.
    total_loss, logits_all = torch.zeros((), device=batches.y.device, dtype=torch.float64), []
    for start in range(0, len(batches), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(batches)), device=batches.y.device)
        x, y = batches.batch(idx)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.is_cuda):
            logits = model(x).float()
        if loss_fn is not None:
            total_loss += loss_fn(logits, y).double() * len(idx)
        logits_all.append(logits)
    if not logits_all:
        return Evaluation(float("nan"), float("nan"), np.zeros(0, dtype=np.int64))
    preds = torch.cat(logits_all).argmax(1)
    return Evaluation(float(total_loss) / len(batches), float((preds == batches.y).float().mean()),
                      preds.cpu().numpy())  # fmt: skip
