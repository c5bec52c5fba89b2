"""Exported models: one ONNX Runtime session per model of the manifest (recognizer.manifest), predictions.

A model whose file is missing, altered or unloadable is listed in
``Recognizer.unavailable`` with the reason, and every other model keeps working.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .files import sha256_file
from .manifest import SLOTS, ModelEntry, load_manifest

CUDA_PROVIDERS = ["CUDAExecutionProvider", "CPUExecutionProvider"]


@dataclass
class Prediction:
    """One image's answer from one model. ``top`` holds (char, display, probability), best first; ``mode`` and
    ``answer_set`` (a ``recognizer.answers.AnswerSet``) are set by ``recognizer.answers.shape``."""

    model: str
    top: list[tuple[str, str, float]]
    probabilities: np.ndarray
    features: np.ndarray | None
    latency_ms: float
    mode: str = "anything"
    answer_set: Any = None

    @property
    def char(self) -> str:
        return self.top[0][0]

    @property
    def confidence(self) -> float:
        return self.top[0][2]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


class Recognizer:
    """All models of an export folder, each opened once, ready for single images and batches."""

    def __init__(
        self,
        model_dir: str | os.PathLike = "exported_models",
        providers: list[str] | None = None,
        use_cuda: bool = False,
        intra_op_num_threads: int = 1,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.requested_providers = list(
            providers or (CUDA_PROVIDERS if use_cuda else ["CPUExecutionProvider"])
        )
        self.intra_op_num_threads = intra_op_num_threads
        self.entries = load_manifest(self.model_dir)
        self.unavailable: dict[str, str] = {}
        self.sessions: dict[str, ort.InferenceSession] = {}
        self.providers: dict[str, list[str]] = {}
        self._io: dict[str, tuple[str, str, str | None]] = {}
        for entry in self.entries:
            try:
                self._open(entry)
            except Exception as err:  # one bad model must not take the others down
                self.unavailable[entry.name] = str(err) or type(err).__name__

    def _open(self, entry: ModelEntry) -> None:
        if entry.path is None or not entry.path.is_file():
            raise FileNotFoundError(f"file {entry.file} is missing")
        if sha256_file(entry.path).lower() != entry.sha256.lower():
            raise ValueError(f"file {entry.file} does not match its sha256 in the manifest")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_num_threads
        options.inter_op_num_threads = 1
        # Measured on the shipped residual CNNs at one thread: EXTENDED or BASIC are 20% slower than ALL, and
        # spinning, the memory pattern and the CPU arena make no difference (no pool threads to spin).
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # a CUDA fallback warning is expected on CPU machines
        try:
            session = ort.InferenceSession(
                str(entry.path), sess_options=options, providers=self.requested_providers
            )
        except Exception as err:
            raise ValueError(f"ONNX Runtime cannot load {entry.file}: {err}") from err
        self._io[entry.name] = self._io_names(entry, session)
        self.sessions[entry.name] = session
        self.providers[entry.name] = session.get_providers()

    @staticmethod
    def _io_names(entry: ModelEntry, session: ort.InferenceSession) -> tuple[str, str, str | None]:
        inputs = [i.name for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        input_name = entry.input.name or inputs[0]
        if input_name not in inputs:
            raise ValueError(f"model has no input {input_name!r} (it has {inputs})")
        logits = entry.outputs.get("logits", "logits")
        if logits not in outputs:
            raise ValueError(f"model has no output {logits!r} (it has {outputs})")
        width = next(o.shape for o in session.get_outputs() if o.name == logits)[-1]
        if isinstance(width, int) and width != len(entry.labels):
            raise ValueError(f"model gives {width} logits but the manifest lists {len(entry.labels)} labels")
        features = entry.outputs.get("features")
        return input_name, logits, features if features in outputs else None

    # ------------------------------------------------------------ queries

    @property
    def models(self) -> list[ModelEntry]:
        """The models that loaded, in manifest order."""
        return [e for e in self.entries if e.name in self.sessions]

    def entry(self, name: str) -> ModelEntry:
        for e in self.entries:
            if e.name == name:
                if name in self.unavailable:
                    raise KeyError(f"model {name!r} is unavailable: {self.unavailable[name]}")
                return e
        raise KeyError(f"no model named {name!r}; available: {[e.name for e in self.models]}")

    def default_slots(self) -> dict[str, str]:
        """Which model fills each comparison slot: its ``slot`` field, else the best of its split."""
        slots: dict[str, str] = {}
        for slot in SLOTS:
            marked = [e for e in self.models if e.slot == slot]
            same_split = [e for e in self.models if e.split == slot]
            candidates = marked or sorted(same_split, key=lambda e: -(e.metrics.test_accuracy or 0.0))
            if candidates:
                slots[slot] = candidates[0].name
        return slots

    # ------------------------------------------------------------ running

    def run(self, name: str, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw logits and features for a float32 (N, 28, 28) batch, in one session call."""
        self.entry(name)
        input_name, logits, features = self._io[name]
        x = _as_batch(batch)
        wanted = [logits] + ([features] if features else [])
        out = self.sessions[name].run(wanted, {input_name: x[:, None]})
        return out[0], (out[1].reshape(len(x), -1) if features else None)

    def predict(self, name: str, x28: np.ndarray, k: int = 5) -> Prediction:
        """Top-k answer for one (28, 28) image made by ``preprocess``."""
        entry = self.entry(name)
        start = time.perf_counter()
        logits, features = self.run(name, np.asarray(x28).reshape(1, 28, 28))
        latency = (time.perf_counter() - start) * 1000
        probs = softmax(logits[0])
        order = np.argsort(-probs, kind="stable")[: max(1, min(k, probs.size))]
        labels, shown = entry.labels, entry.displays
        top = [(labels[i], shown[i], float(probs[i])) for i in order]
        return Prediction(name, top, probs, None if features is None else features[0], latency)

    def predict_batch(self, name: str, batch: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (N, C) and features (N, D; D=0 without a features output) for evaluation."""
        x = _as_batch(batch)
        probs, feats = [], []
        for start in range(0, len(x), chunk):
            logits, features = self.run(name, x[start : start + chunk])
            probs.append(softmax(logits))
            feats.append(features if features is not None else np.zeros((len(logits), 0), np.float32))
        if not probs:
            n_classes = len(self.entry(name).labels)
            return np.zeros((0, n_classes), np.float32), np.zeros((0, 0), np.float32)
        return np.concatenate(probs), np.concatenate(feats)


def _as_batch(batch: np.ndarray) -> np.ndarray:
    x = np.asarray(batch, dtype=np.float32)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"expected (N, 28, 28) images, got shape {np.shape(batch)}")
    return np.ascontiguousarray(x)
