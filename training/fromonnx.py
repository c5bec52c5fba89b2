"""An exported model back in torch, exactly: the shipped ONNX weights loaded into the registered model.

The export (dynamo, ``optimize=True``) folds every BatchNorm into the layer before it: the initializer
``model.<layer>.weight`` holds the folded weight and ``model.<layer>.weight_bias`` the folded bias (a layer that
had its own bias keeps the folded one in ``model.<layer>.bias``); the BatchNorm's own tensors are gone. So each
BatchNorm is set to the identity plus that bias (weight 1, running mean 0, running variance 1 - eps) and kept in
eval mode, where it computes ``x + bias`` and the model gives the ONNX logits (``check_logits`` measures it).

    model, entry = load_exported("residual_cnn-byclass")            # from exported_models/manifest.json
    frozen_bn_train(model)                                          # train mode, BatchNorm statistics frozen

Every tensor of the torch model must be filled and every ONNX weight used, else ``OnnxLoadError`` says which.
A model exported from 1 Dec 2026 on also has its torch weights beside the ONNX file (``export.torch_weights``, a
safetensors file): ``load_exported`` loads those instead (BatchNorm as trained), checked against their sha256.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import safetensors.torch
import torch
from onnx import numpy_helper
from torch import nn

from recognizer.files import sha256_file
from recognizer.manifest import Manifest, ModelEntry
from training.models import create_model
from training.paths import models_dir

PREFIX = "model."  # the export wraps the model as ``LogitsAndFeatures.model``
WEIGHTED = (nn.Conv2d, nn.Linear)
BATCHNORM = nn.modules.batchnorm._BatchNorm


class OnnxLoadError(RuntimeError):
    """The ONNX file's weights do not fit the registered model the manifest names."""


def onnx_weights(path: str | Path) -> dict[str, np.ndarray]:
    """The named initializers of an ONNX file (constants the exporter made, ``val_*``, left out)."""
    proto = onnx.load(str(path))
    return {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer if i.name.startswith(PREFIX)}


def folded_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(layer, BatchNorm) names where a BatchNorm directly follows a conv or linear layer in a Sequential."""
    pairs = []
    for prefix, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (name_a, a), (name_b, b) in zip(children, children[1:], strict=False):
            if isinstance(b, BATCHNORM) and isinstance(a, WEIGHTED):
                pairs.append((f"{prefix}.{name_a}".lstrip("."), f"{prefix}.{name_b}".lstrip(".")))
    return pairs


def fill_state(model: nn.Module, weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The torch state dict from the ONNX weights, BatchNorm folded as the module docstring says."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    filled, used = set(), set()

    def put(key: str, onnx_name: str | None, value: np.ndarray | None = None) -> None:
        if onnx_name is not None:
            if onnx_name not in weights:
                raise OnnxLoadError(f"the ONNX file has no {onnx_name} for {key}")
            value = weights[onnx_name]
            used.add(onnx_name)
        if tuple(value.shape) != tuple(state[key].shape):
            raise OnnxLoadError(f"{key}: ONNX shape {tuple(value.shape)} vs torch {tuple(state[key].shape)}")
        state[key] = torch.from_numpy(np.array(value, dtype=np.float32))
        filled.add(key)

    modules = dict(model.named_modules())
    for layer, norm in folded_pairs(model):
        if f"{PREFIX}{norm}.weight" in weights or f"{PREFIX}{norm}.running_mean" in weights:
            continue  # not folded: loaded as plain tensors below
        bias_name = next((f"{PREFIX}{layer}.{s}" for s in ("weight_bias", "bias") if f"{PREFIX}{layer}.{s}" in weights),
                         None)  # fmt: skip
        if bias_name is None:
            raise OnnxLoadError(f"no folded bias for {layer} (followed by BatchNorm {norm})")
        bias = weights[bias_name]
        used.add(bias_name)
        put(f"{layer}.weight", f"{PREFIX}{layer}.weight")
        bn, zeros = modules[norm], np.zeros_like(bias)
        has_bias = modules[layer].bias is not None
        if has_bias:
            put(f"{layer}.bias", None, bias)
        put(f"{norm}.weight", None, np.ones_like(bias))
        put(f"{norm}.bias", None, zeros if has_bias else bias)
        put(f"{norm}.running_mean", None, zeros)
        put(f"{norm}.running_var", None, np.full_like(bias, 1.0 - bn.eps))
        filled.add(f"{norm}.num_batches_tracked")
    for key in state:
        if key not in filled and f"{PREFIX}{key}" in weights:
            put(key, f"{PREFIX}{key}")
    missing = [k for k in state if k not in filled and not k.endswith("num_batches_tracked")]
    unused = sorted(set(weights) - used)
    if missing or unused:
        raise OnnxLoadError(f"torch tensors without an ONNX weight: {missing}; ONNX weights not placed: {unused}")
    return state


def load_onnx_into(model: nn.Module, path: str | Path) -> nn.Module:
    """``model`` (a fresh registered model of the right shape) with the ONNX file's weights, in eval mode."""
    model.load_state_dict(fill_state(model, onnx_weights(path)))
    return model.eval()


def manifest_entry(name: str, folder: str | Path | None = None) -> ModelEntry:
    folder = Path(folder or models_dir())
    for entry in Manifest.read(folder).models:
        if entry.name == name:
            return entry
    raise KeyError(f"no model named {name!r} in {folder}")


def model_for(entry: ModelEntry) -> nn.Module:
    """A fresh registered model as the manifest entry's training config built it."""
    return create_model(entry.training.model or entry.family, len(entry.labels), **entry.training.model_args)


def load_exported(name: str, folder: str | Path | None = None) -> tuple[nn.Module, ModelEntry]:
    """An exported model of the manifest as a torch model (eval mode) and its entry: its torch weights where the
    export wrote them (BatchNorm as trained), else its ONNX file loaded exactly (BatchNorm folded into identity)."""
    entry = manifest_entry(name, folder)
    weights = torch_weights_path(entry)
    if weights is None:
        return load_onnx_into(model_for(entry), entry.path), entry
    model = model_for(entry)
    model.load_state_dict(safetensors.torch.load_file(str(weights)))
    return model.eval(), entry


def torch_weights_path(entry: ModelEntry) -> Path | None:
    """The entry's safetensors file, checked against its sha256; None when the export wrote none."""
    name = entry.export.torch_weights if entry.export is not None else None
    if not name or entry.path is None:
        return None
    path = entry.path.parent / name
    if not path.exists() or sha256_file(path) != entry.export.torch_weights_sha256:
        raise OnnxLoadError(f"{entry.name}: its torch weights {name} are missing or do not match the manifest")
    return path


def frozen_bn_train(model: nn.Module) -> nn.Module:
    """Train mode (dropout on) with every BatchNorm in eval mode: its statistics stay what the export folded."""
    model.train()
    for module in model.modules():
        if isinstance(module, BATCHNORM):
            module.eval()
    return model


@torch.no_grad()
def torch_logits(model: nn.Module, images: np.ndarray, chunk: int = 500) -> np.ndarray:
    """Logits of upright float32 images (N, 28, 28) in [0, 1], in eval mode."""
    model.eval()
    out = [model(torch.from_numpy(np.ascontiguousarray(images[i : i + chunk], np.float32))[:, None])
           for i in range(0, len(images), chunk)]  # fmt: skip
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
