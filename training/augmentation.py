"""The run's augmentation knobs: kornia's per-sample random transforms for the ``RunConfig`` fields in
``AUGMENT_FIELDS`` (affine, elastic, stroke width, contrast, blur), every knob off by default, on whole batches of
tensors in [0, 1]. No colour jitter: ink on a black page has no colour.

``create_augmentation(config)`` builds the sequence; the trainer wraps the training part with it
(``train_batches``). FixMatch's strong view (``strong_view``) is the same factory at ``FIXMATCH_STRONG`` plus random
erasing. The other engine, ``augment`` with ``HandwritingAugment`` (pretraining views, ``ssl_cnn``), is
training/handwriting.py; both change the stroke width with its one ``stroke_width``. Each engine stays where its
runs were trained with it: changing either would change published results.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from training.config import RunConfig
from training.handwriting import stroke_width

AUGMENT_FIELDS = ("aug_rotate", "aug_shear", "aug_scale", "aug_translate", "aug_elastic", "aug_stroke",
                  "aug_contrast", "aug_blur")  # fmt: skip
# FixMatch's strong view, in the run's knobs: about twice the ranges of the mild augmentation.
FIXMATCH_STRONG = {"aug_rotate": 30.0, "aug_shear": 20.0, "aug_scale": 0.25, "aug_translate": 0.12,
                   "aug_elastic": 2.0, "aug_stroke": 0.6, "aug_contrast": 0.4, "aug_blur": 1.0}  # fmt: skip
ERASE_SCALE = (0.02, 0.12)  # Cutout: one random rectangle of 2-12% of the image, on half the images


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
