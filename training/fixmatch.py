"""FixMatch-style pseudo-labels on Study B's unlabelled images (Sohn et al. 2020), a hook of the one trainer.

Off by default (``RunConfig.fixmatch_mu`` = 0: the reproduction's runs keep their ids). When on, every training
step of ``trainer.train_one_epoch`` adds, beside the labelled batch's loss, ``fixmatch_weight`` times the loss on
``fixmatch_mu`` times as many unlabelled images:

- the weak view is the image through the model's own training-mode forward (Study B's SimCLR rows: the mild
  augmentation, ``handwriting.HandwritingAugment``), without gradients; its most probable class becomes the
  image's pseudo-label where that probability is at least ``fixmatch_threshold``;
- the strong view is ``augmentation.strong_view``: the runs' kornia augmentation at ``FIXMATCH_STRONG`` plus
  random erasing (FixMatch's Cutout), then the model's own forward; it is trained toward
  the pseudo-label, the images under the threshold masked out (the mean over all images, as in FixMatch).
- Both unlabelled passes normalise with their own batch statistics but leave BatchNorm's running statistics (what
  evaluation uses) to the labelled batches: the strong views' contrast, blur and erasing made them unlike clean
  test images (the Study B SSL table's clean-BatchNorm claim measures what clean statistics are worth).

The unlabelled images are the digit sources of the pretraining's set (training/unlabelled.py: MNIST's and EMNIST
digits' training images, deduplicated, no Study B test image among them), not the pool's letters, which would be
pseudo-labelled as digits. They are drawn with replacement from torch's global generator, which the trainer seeds per
epoch: a resumed run draws what an unbroken one would. ``unlabelled_used`` per epoch (the run's history) is the share
of unlabelled images above the threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from training.augmentation import strong_view
from training.config import RunConfig

SOURCES = ("mnist_train", "digits_train")  # digits only: FixMatch's pseudo-labels are digits


@contextmanager
def running_stats_kept(model: nn.Module) -> Iterator[None]:
    """BatchNorm as usual in training mode (batch statistics), but its running statistics do not move (momentum 0)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved, strict=True):
            m.momentum = momentum


class FixMatch:
    """The unlabelled part of a training step: ``loss(model, batch)`` -> (weighted loss, share above threshold)."""

    def __init__(self, images: torch.Tensor, config: RunConfig, device: torch.device) -> None:
        self.images = images.to(device)
        self.strong = strong_view().to(device)
        self.mu, self.threshold, self.weight = config.fixmatch_mu, config.fixmatch_threshold, config.fixmatch_weight

    def describe(self) -> str:
        return (f"FixMatch on {len(self.images):,} unlabelled digit images ({' + '.join(SOURCES)}, no Study B test "
                f"image): {self.mu} per labelled image, threshold {self.threshold}, weight {self.weight}")

    def loss(self, model: nn.Module, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(self.images), (self.mu * batch_size,), device=self.images.device)
        x = self.images[idx].unsqueeze(1).float().div_(255.0)
        with running_stats_kept(model):
            with torch.no_grad():
                confidence, pseudo = model(x).float().softmax(1).max(1)  # weak view: the model's own augmentation
                mask = (confidence >= self.threshold).float()
                strong = self.strong(x).clamp_(0.0, 1.0)
            per_image = F.cross_entropy(model(strong).float(), pseudo, reduction="none")
        return self.weight * (per_image * mask).mean(), mask.mean()


def create(config: RunConfig, device: torch.device,
           unlabelled: Callable[[], torch.Tensor] | None = None) -> FixMatch | None:  # fmt: skip
    """The run's FixMatch part, or None when ``fixmatch_mu`` is 0 (every run but the FixMatch rows).
    ``unlabelled`` gives the images (the trainer's ``unlabelled_images``), asked for only when FixMatch is on."""
    if not config.fixmatch_mu:
        return None
    if config.split != "mnist50":
        raise ValueError(f"FixMatch uses Study B's unlabelled images (split mnist50), not {config.split!r}")
    if unlabelled is None:
        raise ValueError("FixMatch is on (fixmatch_mu > 0) but no unlabelled images were given")
    return FixMatch(unlabelled(), config, device)
