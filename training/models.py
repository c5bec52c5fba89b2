"""The reports' models, built by name (a small timm-style registry).

Every model maps a batch [N, C, 28, 28] in [0, 1] to logits and exposes ``features(x)``, the
penultimate vector, which the ONNX export publishes for the embedding maps.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from training.handwriting import HandwritingAugment


@dataclass(frozen=True)
class ModelInfo:
    """A registered model and its facts: what it eats, what it is built with by default."""

    name: str
    build: Callable[..., nn.Module] = field(repr=False)
    in_channels: int = 1  # grey images are repeated over channels for a 3-channel model (Study B's Keras code)
    input_size: int = 28
    default_classes: int = 62

    @property
    def defaults(self) -> dict:
        """The builder's keyword defaults (num_classes and in_channels aside): the model_args it accepts."""
        params = inspect.signature(self.build).parameters
        return {k: p.default for k, p in params.items()
                if p.default is not inspect.Parameter.empty and k not in ("num_classes", "in_channels")}  # fmt: skip


MODELS: dict[str, ModelInfo] = {}


def register(in_channels: int = 1, input_size: int = 28, default_classes: int = 62):
    """Register a builder under its function name with its facts (timm's ``register_model``)."""

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS[fn.__name__] = ModelInfo(fn.__name__, fn, in_channels, input_size, default_classes)
        return fn

    return add


def model_info(name: str) -> ModelInfo:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    return MODELS[name]


def create_model(name: str, num_classes: int | None = None, **kwargs) -> nn.Module:
    info = model_info(name)
    return info.build(num_classes=num_classes or info.default_classes, in_channels=info.in_channels, **kwargs)


class ChannelSoftmax(nn.Module):
    """Softmax over channels, as Keras' 'softmax' activation applied to a conv layer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=1)


# Table 4's ten activations.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softmax": ChannelSoftmax,
    "softsign": nn.Softsign,
    "swish": nn.SiLU,
    "gelu": nn.GELU,
}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class Classifier(nn.Module):
    """A feature extractor followed by a linear head; ``forward`` gives logits."""

    def __init__(self, body: nn.Module, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.body = body
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register()
def lenet5(num_classes: int, in_channels: int = 1) -> nn.Module:
    body = nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding="same"), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),
        nn.Linear(120, 128), nn.ReLU(),
    )  # fmt: skip
    return Classifier(body, 128, num_classes)


@register()
def plain_cnn(num_classes: int, in_channels: int = 1) -> nn.Module:
    body = nn.Sequential(
        nn.Conv2d(in_channels, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(3 * 3 * 64, 64), nn.ReLU(),
    )  # fmt: skip
    return Classifier(body, 64, num_classes)


class ResidualBlock(nn.Module):
    """[conv-BN-act-conv-BN] + shortcut, then act; dropout and a ceil-mode ('same') average pool."""

    def __init__(self, cin: int, cout: int, act: str, dropout: float) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), activation(act),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        )  # fmt: skip
        self.shortcut = (
            nn.Identity() if cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        )
        self.out = nn.Sequential(activation(act), nn.Dropout(dropout), nn.AvgPool2d(2, ceil_mode=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.main(x) + self.shortcut(x))


@register()
def residual_cnn(
    num_classes: int,
    blocks: int = 3,
    activation_name: str = "relu",
    base_width: int = 64,
    dropout: float = 0.3,
    head_dropout: float = 0.6,
    in_channels: int = 1,
) -> nn.Module:
    """The reports' 'Our Model (Residual)'; block i has base_width * 2**(i-1) filters."""
    act = activation_name
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.BatchNorm2d(32), activation(act),
        nn.Dropout(dropout), nn.AvgPool2d(2),
    ]  # fmt: skip
    cin, size = 32, 14
    for i in range(blocks):
        cout = base_width * 2**i
        layers.append(ResidualBlock(cin, cout, act, dropout))
        cin, size = cout, (size + 1) // 2
    layers += [
        nn.Flatten(), nn.Linear(cin * size * size, 512), nn.BatchNorm1d(512), activation(act),
    ]  # fmt: skip
    body = nn.Sequential(*layers)

    model = Classifier(body, 512, num_classes)
    model.head = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(512, num_classes))
    return model


class ResNet50Body(nn.Module):
    """torchvision's ResNet-50 (random init) on a 1-channel image resized to 32x32; GAP -> dense 1024."""

    def __init__(self, in_channels: int) -> None:
        from torchvision.models import resnet50 as tv_resnet50  # lazy: ~2 s of imports (torch._dynamo via ops)

        super().__init__()
        net = tv_resnet50(weights=None)
        net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        net.fc = nn.Identity()
        self.net = net
        self.dense = nn.Sequential(nn.Linear(2048, 1024), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        return self.dense(self.net(x))


@register()
def resnet50(num_classes: int, in_channels: int = 1) -> nn.Module:
    return Classifier(ResNet50Body(in_channels), 1024, num_classes)


@register(in_channels=3, default_classes=10)
def mlp_basic(num_classes: int, in_channels: int = 3) -> nn.Module:
    """Study B's basic net: 2352 -> 512 sigmoid -> 256 sigmoid -> classes."""
    body = nn.Sequential(
        nn.Flatten(), nn.Linear(in_channels * 28 * 28, 512), nn.Sigmoid(), nn.Linear(512, 256), nn.Sigmoid()
    )
    return Classifier(body, 256, num_classes)


@register(in_channels=3, default_classes=10)
def cnn_small(num_classes: int, in_channels: int = 3) -> nn.Module:
    """Study B's 'my CNN' as printed in the report (conv2 has no activation there, kept as is)."""
    body = nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding="same"), nn.MaxPool2d(2), nn.Dropout2d(0.25),
        nn.Conv2d(64, 128, 3, padding="same"), nn.ReLU(), nn.Dropout2d(0.25),
        nn.Flatten(), nn.Linear(6272, 3000), nn.ReLU(), nn.Linear(3000, 1000), nn.ReLU(),
    )  # fmt: skip
    return Classifier(body, 1000, num_classes)


class SSLClassifier(Classifier):
    """A classifier for Study B's representation-learning table (training/ssl.py): a training-time handwriting
    augmentation in front (identity in eval mode) and, for a linear probe, a frozen body whose BatchNorm
    statistics stay those of its pretraining."""

    def __init__(self, body: nn.Module, feature_dim: int, num_classes: int, augment: bool, frozen: bool) -> None:
        super().__init__(body, feature_dim, num_classes)
        self.augment = HandwritingAugment() if augment else nn.Identity()
        self.frozen = frozen
        if frozen:
            self.body.requires_grad_(False)

    def train(self, mode: bool = True) -> SSLClassifier:
        super().train(mode)
        if self.frozen:
            self.body.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.augment(x)))


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


@register(default_classes=10)
def ssl_cnn(num_classes: int, in_channels: int = 1, width: int = 16, augment: bool = False,
            frozen: bool = False) -> nn.Module:  # fmt: skip
    """A small VGG-style encoder (5 conv-BN-ReLU, global average pool: 4 * width features) that SimCLR can
    pretrain on a CPU; ``augment``: handwriting augmentation while training; ``frozen``: a linear probe."""
    w = width
    body = nn.Sequential(
        *_conv_bn(in_channels, w), nn.MaxPool2d(2),
        *_conv_bn(w, 2 * w), *_conv_bn(2 * w, 2 * w), nn.MaxPool2d(2),
        *_conv_bn(2 * w, 4 * w), *_conv_bn(4 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )  # fmt: skip
    return SSLClassifier(body, 4 * w, num_classes, augment, frozen)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
