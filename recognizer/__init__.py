"""Runtime side of the lab: labels, EMNIST-style preprocessing, ONNX inference, saliency, embedding maps,
the manifest schema and file hashing. The app (``webapp``) and the evaluation both use it.

Needs numpy, Pillow and onnxruntime only; never imports torch, ``training``, Gradio or ``webapp``.
Names are re-exported lazily, so ``import recognizer.labels`` does not load onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "preprocess": ("to_model_input", "from_idx", "InputError", "NothingDrawn", "BadImage"),
    "inference": ("Prediction", "Recognizer", "softmax"),
    "manifest": ("Manifest", "ModelEntry", "SkippedModel", "ManifestError", "load_manifest", "save_manifest"),
    "files": ("sha256_file", "sha256_bytes", "write_atomic", "write_json"),
    "saliency": ("occlusion_map", "overlay"),
    "embeddings": ("Embedding", "EmbeddingError", "load_embedding", "MAP_TITLES", "MAP_NAMES", "STAGE_TITLES",
                   "map_title"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'recognizer' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
