"""What defines a run: ``RunConfig``, plain data, one field per setting (nanoGPT's config as a list of keys).

Every field is reachable from the command line (``python -m training train --help`` derives its flags from these
fields) and from a spec row's settings. ``run_id()`` names the run's folder: the same settings are the same run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# A field added after results were published gets ``metadata=ADDED``: it is left out of the run id while it holds
# its default, so every run recorded before it existed keeps its id (and its folder is still found).
ADDED = {"hashed_when_set": True}


@dataclass
class RunConfig:
    """Everything that defines a run; defaults are the reports' common protocol."""

    model: str = "residual_cnn"
    split: str = "byclass"
    protocol: str = "auto"  # auto | official | pool (studyB for mnist50); fixed before a run id is taken
    model_args: dict = field(default_factory=dict)
    optimizer: str = "adam"
    lr: float = 1e-3
    loss: str = "cross_entropy"
    focal_gamma: float = 2.0
    focal_alpha: float = 1.0
    batch_size: int = 500
    epochs: int = 50
    early_stop_patience: int = 5  # 0 turns early stopping off
    min_delta: float = 1e-4
    plateau_patience: int = 3
    plateau_factor: float = 0.5
    min_lr: float = 1e-6
    seed: int = 42
    limit_train: int | None = None  # a seeded, class-stratified subset of the training part
    limit_val: int | None = None
    profile: str = "custom"
    # The drawing recipe (augmentation.py, data.with_every_pool_image, losses.PartialLabelLoss, optim.py's schedule
    # and EMA), every knob off by default so the reproduction's runs keep their ids.
    aug_rotate: float = field(default=0.0, metadata=ADDED)  # degrees each way
    aug_shear: float = field(default=0.0, metadata=ADDED)  # degrees each way
    aug_scale: float = field(default=0.0, metadata=ADDED)  # scale in [1 - s, 1 + s]
    aug_translate: float = field(default=0.0, metadata=ADDED)  # fraction of the image each way
    aug_elastic: float = field(default=0.0, metadata=ADDED)  # elastic displacement, pixels (on half the images)
    aug_stroke: float = field(default=0.0, metadata=ADDED)  # probability of a thicker or thinner stroke
    aug_contrast: float = field(default=0.0, metadata=ADDED)  # contrast and gamma in [1 - c, 1 + c]
    aug_blur: float = field(default=0.0, metadata=ADDED)  # largest Gaussian blur sigma, pixels
    schedule: str = field(default="plateau", metadata=ADDED)  # plateau (the reports') | cosine (per step)
    warmup_epochs: int = field(default=0, metadata=ADDED)  # linear warm-up of the cosine schedule
    label_smoothing: float = field(default=0.0, metadata=ADDED)
    ema_decay: float = field(default=0.0, metadata=ADDED)  # weight average per step; 0: none
    pool_images: str = field(default="labelled", metadata=ADDED)  # labelled | all (byclass: partial labels too)
    # A finished self-supervised pretraining (training/ssl.py) in the same runs folder whose encoder the model's
    # body starts from.
    init_from: str | None = field(default=None, metadata=ADDED)
    # FixMatch on Study B's unlabelled images (training/fixmatch.py): unlabelled images per labelled one in each
    # step (0: off), the confidence a pseudo-label needs, and the weight of the unlabelled loss.
    fixmatch_mu: int = field(default=0, metadata=ADDED)
    fixmatch_threshold: float = field(default=0.95, metadata=ADDED)
    fixmatch_weight: float = field(default=1.0, metadata=ADDED)
    # BatchNorm's statistics for evaluation: "running" (the averages kept while training) or "clean" (re-estimated
    # after the last epoch over the training part without augmentation: PreciseBN, trainer.clean_bn_statistics).
    bn_statistics: str = field(default="running", metadata=ADDED)

    def to_dict(self) -> dict[str, Any]:
        """The settings; a field added later (``ADDED``) is left out while it holds its default, so the records
        written before it existed (config.json, metrics.json, result rows) read back and write back unchanged."""
        values = dataclasses.asdict(self)
        for f in dataclasses.fields(self):
            if f.metadata.get("hashed_when_set") and values[f.name] == _default(f):
                del values[f.name]
        return values

    @classmethod
    def from_dict(cls, values: dict) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown run settings: {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)

    def _hashed(self) -> dict[str, Any]:
        return self.to_dict()  # ADDED fields at their default are already out

    def run_id(self) -> str:
        text = json.dumps(self._hashed(), sort_keys=True)
        return f"{self.model}-{self.split}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"

    def chain_key(self) -> str:
        """Equal for runs that differ only in ``epochs``: a longer one continues a shorter one's checkpoint,
        and their histories are one curve."""
        return dataclasses.replace(self, epochs=0).run_id()


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
