"""The manifest: the one schema between the export step (its writer) and the app (its reader).

``exported_models/manifest.json`` lists every exported model (``ModelEntry``) and every model the
export left out with the reason (``SkippedModel``). ``Manifest.read`` and ``Manifest.write`` are the
only code that touches the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import write_json
from .labels import MERGED_SPLITS, display

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
SLOTS = ("byclass", "bymerge", "balanced")  # the app's three comparison slots, in order


class ManifestError(ValueError):
    """The manifest is missing, not JSON, or does not follow the format."""


@dataclass
class ModelEntry:
    """One exported model. ``path`` is the resolved .onnx path (not stored in the file).

    ``metrics`` holds the run's test figures plus ``runtime_test_accuracy`` (through ONNX Runtime, what the app
    gets); ``training`` the run's config, run id, device and environment; ``parity`` the torch/ONNX comparison;
    ``export`` how the file was made; ``run_record`` the folder (beside the manifest) with the run's record.
    The drawing recipe's models (``training/slots.py``) also carry ``recipe`` (augmentation, images trained on and seen,
    schedule, smoothing, EMA, profile), ``metrics["drawbench"]`` and ``metrics["latency"]``, and ``slot_rule``:
    the default-slot decision against the reproduction's model of the split, with both models' figures.
    """

    name: str
    file: str
    sha256: str
    family: str = ""
    split: str = ""
    protocol: str = ""
    profile: str = ""
    labels: list[str] = field(default_factory=list)
    input: dict[str, Any] = field(default_factory=lambda: {"name": "image", "shape": [1, 28, 28]})
    outputs: dict[str, str] = field(default_factory=lambda: {"logits": "logits", "features": "features"})
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    slot: str | None = None
    parity: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)
    run_record: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)
    slot_rule: dict[str, Any] = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False)

    @property
    def merged(self) -> bool:
        """Whether upper and lower case of 15 letters are one class (bymerge, balanced)."""
        return self.split in MERGED_SPLITS

    @property
    def displays(self) -> list[str]:
        """Each class as shown to a person ('C/c' for a merged class)."""
        return [display(c, self.merged) for c in self.labels]

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path | None = None) -> ModelEntry:
        missing = [k for k in ("name", "file", "sha256", "labels") if k not in data]
        if missing:
            raise ManifestError(f"model entry {data.get('name', '?')!r} lacks {missing}")
        known = {f.name for f in dataclasses.fields(cls)} - {"path"}
        entry = cls(**{k: v for k, v in data.items() if k in known})
        entry.labels = [str(c) for c in entry.labels]
        entry.path = None if folder is None else folder / entry.file
        return entry

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("path")
        for optional, empty in (("slot", None), ("parity", {}), ("export", {}), ("run_record", ""), ("recipe", {}),
                                ("slot_rule", {})):
            if data[optional] == empty:
                data.pop(optional)
        return data

    def order(self) -> tuple:
        """Slot models first (byclass, bymerge, balanced), then by family and name."""
        return (SLOTS.index(self.slot) if self.slot in SLOTS else len(SLOTS), self.family, self.name)


@dataclass
class SkippedModel:
    """A model the export left out, and why (the app lists it as unavailable)."""

    name: str
    run_id: str = ""
    reason: str = ""


@dataclass
class Manifest:
    models: list[ModelEntry] = field(default_factory=list)
    skipped: list[SkippedModel] = field(default_factory=list)

    @classmethod
    def read(cls, path: str | os.PathLike) -> Manifest:
        """A manifest.json (or the folder holding it); clear ``ManifestError`` messages for every bad case."""
        path = manifest_path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ManifestError(
                f"no model manifest at {path}: export models first (python -m training export)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ManifestError(f"model manifest {path} is unreadable or not JSON: {err}") from err
        if not isinstance(data, dict) or not isinstance(data.get("models"), list):
            raise ManifestError(f"model manifest {path} has no 'models' list")
        if data.get("format", MANIFEST_FORMAT) != MANIFEST_FORMAT:
            raise ManifestError(f"model manifest {path} has format {data.get('format')}, expected {MANIFEST_FORMAT}")
        models = [ModelEntry.from_dict(m, path.parent) for m in data["models"]]
        names = [e.name for e in models]
        if len(set(names)) != len(names):
            raise ManifestError(f"model manifest {path} repeats a model name")
        skipped = [SkippedModel(**{k: v for k, v in s.items() if k in ("name", "run_id", "reason")})
                   for s in data.get("skipped", []) if isinstance(s, dict) and "name" in s]  # fmt: skip
        return cls(models, skipped)

    def write(self, path: str | os.PathLike) -> Path:
        """Models in slot order, then the skipped ones; written atomically (the app may be reading it)."""
        models = sorted(self.models, key=ModelEntry.order)
        payload: dict[str, Any] = {"format": MANIFEST_FORMAT, "models": [e.to_dict() for e in models]}
        if self.skipped:
            payload["skipped"] = [dataclasses.asdict(s) for s in self.skipped]
        return write_json(manifest_path(path), payload, indent=2, newline=True)


def manifest_path(path: str | os.PathLike) -> Path:
    """The manifest file itself, given it or the folder holding it."""
    path = Path(path)
    return path / MANIFEST if path.is_dir() else path


def load_manifest(path: str | os.PathLike) -> list[ModelEntry]:
    """The models listed in a manifest (a manifest.json or its folder)."""
    return Manifest.read(path).models


def save_manifest(path: str | os.PathLike, entries: list[ModelEntry], skipped: list[SkippedModel] = ()) -> Path:
    return Manifest(list(entries), list(skipped)).write(path)
