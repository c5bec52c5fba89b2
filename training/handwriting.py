"""Handwriting-like random transforms on whole batches of tensors in [0, 1], in one ``grid_sample``.

``augment(x, strength)``: one random affine map (rotation, zoom, shear, shift: the crop of photo pipelines, without
cutting strokes off) and a smooth elastic displacement, then a random stroke width. Self-supervised pretraining
draws its two views with it (``SIMCLR_VIEWS``); ``HandwritingAugment`` wraps it (``MILD``) as a module that acts
only in training mode, so ``ssl_cnn`` carries its own augmentation and exports as the identity. Apart from the
run's kornia knobs (training/augmentation.py) because a model carries it: ``models.py`` imports this file alone.
Everything is drawn from torch's global generator, so a caller that seeds it per epoch gets the same views again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------------------------
# One grid_sample: affine + elastic, then stroke width


@dataclass(frozen=True)
class Strength:
    """How far the views stray from the image: ranges of the random maps."""

    degrees: float = 15.0  # rotation, each way
    zoom: float = 0.15  # scale in [1 - zoom, 1 + zoom]
    shear: float = 0.2  # x-shear factor, each way
    shift: float = 0.1  # translation, as a fraction of the half-width (0.1: 1.4 px)
    elastic: float = 0.04  # displacement std in half-widths (0.04: about 0.6 px), smooth over 7x7 control points
    stroke: float = 0.5  # probability of a changed stroke width (half thicker, half thinner)


MILD = Strength()  # ``ssl_cnn``'s own training-time augmentation (``HandwritingAugment``)


# SimCLR's and VICReg's views must differ more than a classifier's augmentation: the task is trivial otherwise.
SIMCLR_VIEWS = Strength(degrees=25.0, zoom=0.3, shear=0.35, shift=0.15, elastic=0.08, stroke=0.6)


def _uniform(n: int, low: float, high: float, device: torch.device) -> torch.Tensor:
    return torch.rand(n, device=device) * (high - low) + low


def affine_thetas(n: int, s: Strength, device: torch.device) -> torch.Tensor:
    """[n, 2, 3] maps from output to input coordinates (``F.affine_grid``'s convention)."""
    angle = _uniform(n, -s.degrees, s.degrees, device) * (math.pi / 180)
    scale = _uniform(n, 1 - s.zoom, 1 + s.zoom, device)
    shear = _uniform(n, -s.shear, s.shear, device)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin + shear * cos
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos + shear * sin
    theta[:, :, 2] = _uniform(2 * n, -s.shift, s.shift, device).view(n, 2)
    return theta


def elastic_field(n: int, size: int, s: Strength, device: torch.device) -> torch.Tensor:
    """[n, size, size, 2]: random displacements at 7x7 control points, smoothly (bicubic) upsampled."""
    coarse = torch.randn(n, 2, 7, 7, device=device) * s.elastic
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)


def stroke_width(x: torch.Tensor, p: float) -> torch.Tensor:
    """Per image: with probability p/2 a 3x3 grey dilation (thicker), p/2 half an erosion (thinner), else as is."""
    thick = F.max_pool2d(x, 3, stride=1, padding=1)
    thin = 0.5 * (x - F.max_pool2d(-x, 3, stride=1, padding=1))  # half-strength erosion keeps thin strokes alive
    u = torch.rand(len(x), 1, 1, 1, device=x.device)
    return torch.where(u < p / 2, thick, torch.where(u < p, thin, x))


def augment(x: torch.Tensor, s: Strength = MILD) -> torch.Tensor:
    """A random view of each image of a batch [N, C, H, W] in [0, 1], in one ``grid_sample``."""
    n, _, h, w = x.shape
    grid = F.affine_grid(affine_thetas(n, s, x.device), [n, 1, h, w], align_corners=False)
    if s.elastic:
        grid = grid + elastic_field(n, h, s, x.device)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return stroke_width(out, s.stroke).clamp_(0.0, 1.0)


class HandwritingAugment(nn.Module):
    """``augment`` in training mode, the identity in eval mode (so the ONNX export holds no augmentation)."""

    def __init__(self, strength: Strength = MILD) -> None:
        super().__init__()
        self.strength = strength

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return augment(x, self.strength) if self.training else x
