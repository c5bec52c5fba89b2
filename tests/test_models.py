"""Models, activations, losses and optimizers by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from training.config import RunConfig
from training.losses import FocalLoss, WeightedCrossEntropy, balanced_class_weights, create_loss
from training.models import ACTIVATIONS, MODELS, count_parameters, create_model, model_info
from training.optim import OPTIMIZERS, create_optimizer


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("classes", [62, 47, 10])
def test_output_and_feature_shapes(name: str, classes: int) -> None:
    model = create_model(name, classes).eval()
    x = torch.rand(2, model_info(name).in_channels, 28, 28)
    with torch.no_grad():
        assert model(x).shape == (2, classes)
        feats = model.features(x)
    assert feats.ndim == 2 and feats.shape[0] == 2


def test_layer_sizes_match_the_reports() -> None:
    assert model_info("cnn_small").in_channels == 3 and model_info("mlp_basic").in_channels == 3
    assert create_model("lenet5", 62).features(torch.rand(1, 1, 28, 28)).shape[1] == 128
    assert create_model("residual_cnn", 62).eval().features(torch.rand(1, 1, 28, 28)).shape[1] == 512
    assert create_model("resnet50", 62).eval().features(torch.rand(1, 1, 28, 28)).shape[1] == 1024
    # plain CNN: 3x3x64 = 576 -> 64; Study B CNN: 6272 -> 3000 -> 1000; MLP: 2352 -> 512 -> 256.
    assert create_model("plain_cnn", 62).body[-2].in_features == 576
    assert create_model("cnn_small", 10).body[-4].in_features == 6272
    assert create_model("mlp_basic", 10).body[1].in_features == 2352
    # Residual CNN, 3 blocks: ~1.8M parameters (NOTES.md); block i has 64 * 2**(i-1) filters.
    assert 1.7e6 < count_parameters(create_model("residual_cnn", 62)) < 1.8e6
    four = create_model("residual_cnn", 62, blocks=4).body
    assert [m.main[0].out_channels for m in four if hasattr(m, "main")] == [64, 128, 256, 512]


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_every_activation_trains_a_step(act: str) -> None:
    model = create_model("residual_cnn", 47, blocks=1, activation_name=act)
    loss = F.cross_entropy(model(torch.rand(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert torch.isfinite(loss)


def test_unknown_names_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        create_model("vgg", 10)
    with pytest.raises(ValueError, match="unknown activation"):
        create_model("residual_cnn", 10, activation_name="mish")
    with pytest.raises(ValueError, match="unknown optimizer"):
        create_optimizer("lion", create_model("lenet5", 10), 1e-3)


def test_focal_equals_cross_entropy_at_gamma_zero() -> None:
    logits, target = torch.randn(64, 47), torch.randint(0, 47, (64,))
    ce = F.cross_entropy(logits, target)
    assert torch.allclose(FocalLoss(gamma=0.0, alpha=1.0)(logits, target), ce)
    assert FocalLoss(gamma=2.0)(logits, target) < ce  # down-weights the easy examples
    assert torch.allclose(FocalLoss(gamma=0.0, alpha=0.25)(logits, target), 0.25 * ce)


def test_class_weights_follow_frequencies() -> None:
    labels = torch.tensor([0] * 90 + [1] * 10).numpy()
    w = balanced_class_weights(labels, 2)
    assert torch.allclose(w, torch.tensor([100 / (2 * 90), 100 / (2 * 10)]))
    loss = create_loss(RunConfig(loss="weighted_cross_entropy"), labels, 2)
    assert isinstance(loss, WeightedCrossEntropy)
    logits = torch.zeros(2, 2)
    assert torch.allclose(loss(logits, torch.tensor([1, 1])), w[1] * torch.log(torch.tensor(2.0)))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_steps(name: str) -> None:
    model = create_model("lenet5", 10)
    opt = create_optimizer(name, model, 1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    F.cross_entropy(model(torch.rand(8, 1, 28, 28)), torch.randint(0, 10, (8,))).backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
