"""Every augmentation a run uses, on whole batches of tensors in [0, 1]. No colour jitter: ink on a black page has
no colour. Everything is drawn from torch's global generator, so a caller that seeds it per epoch (the trainer,
the pretraining loop) gets the same views again when it resumes.

Two engines, each used where its runs were trained with it (changing either would change published results):

- ``augment(x, strength)``: one random affine map (rotation, zoom, shear, shift: the crop of photo pipelines,
  without cutting strokes off) and a smooth elastic displacement in one ``grid_sample``, then a random stroke
  width. Self-supervised pretraining draws its two views with it (``SIMCLR_VIEWS``); ``HandwritingAugment`` wraps
  it (``MILD``) as a module that acts only in training mode, so ``ssl_cnn`` carries its own augmentation and
  exports as the identity.
- ``create_augmentation(config)``: kornia's per-sample random transforms for the ``RunConfig`` knobs
  (``AUGMENT_FIELDS``: affine, elastic, stroke width, contrast, blur), every knob off by default; the trainer
  wraps the training part with it (``train_batches``). FixMatch's strong view (``strong_view``) is the same
  factory at ``FIXMATCH_STRONG`` plus random erasing.

Both engines change the stroke width with the one ``stroke_width``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.config import RunConfig

AUGMENT_FIELDS = ("aug_rotate", "aug_shear", "aug_scale", "aug_translate", "aug_elastic", "aug_stroke",
                  "aug_contrast", "aug_blur")  # fmt: skip
# FixMatch's strong view, in the run's knobs: about twice the ranges of the mild augmentation.
FIXMATCH_STRONG = {"aug_rotate": 30.0, "aug_shear": 20.0, "aug_scale": 0.25, "aug_translate": 0.12,
                   "aug_elastic": 2.0, "aug_stroke": 0.6, "aug_contrast": 0.4, "aug_blur": 1.0}  # fmt: skip
ERASE_SCALE = (0.02, 0.12)  # Cutout: one random rectangle of 2-12% of the image, on half the images


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


# ---------------------------------------------------------------------------------------------
# kornia's per-sample transforms, from a run's knobs


def create_augmentation(config: RunConfig) -> nn.Module | None:
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


def strong_view() -> nn.Module:
    """FixMatch's strong view: ``create_augmentation`` at ``FIXMATCH_STRONG``, then random erasing (Cutout)."""
    import kornia.augmentation as K

    knobs = create_augmentation(dataclasses.replace(RunConfig(), **FIXMATCH_STRONG))
    return nn.Sequential(*knobs, K.RandomErasing(scale=ERASE_SCALE, ratio=(0.3, 3.3), value=0.0, p=0.5))


class StrokeWidth(nn.Module):
    """``stroke_width`` as a step of kornia's sequence. A flat 3x3 dilation is a 3x3 max pool, which runs many
    times faster than kornia.morphology's general structuring elements on a CPU."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stroke_width(x, self.p)


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
    augment = create_augmentation(config)
    return batches if augment is None else AugmentedBatches(batches, augment)
