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
from typing import Any, ClassVar

from .files import write_json
from .labels import MERGED_SPLITS, display

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
SLOTS = ("byclass", "bymerge", "balanced")  # the app's three comparison slots, in order


class ManifestError(ValueError):
    """The manifest is missing, not JSON, or does not follow the format."""


@dataclass
class Record:
    """A typed part of a model entry: its declared keys as fields, read by ``from_dict`` and written by ``to_dict``.

    A key this code does not know (from an older or newer export) is kept in ``extra``. A record read from a file
    writes back as it was read: its keys in their order (``read_keys``), nulls included, then any field set since.
    One built by code writes its declared fields in order, then ``extra``; a field at None is left out, except the
    ``TOGETHER`` ones, written null included whenever their anchor field is set (their writer always wrote them
    beside it). ``NESTED`` names the fields that are records themselves.
    """

    NESTED: ClassVar[dict[str, type[Record]]] = {}
    TOGETHER: ClassVar[dict[str, tuple[str, ...]]] = {}
    extra: dict[str, Any] = field(default_factory=dict, kw_only=True)
    read_keys: tuple[str, ...] | None = field(default=None, kw_only=True, repr=False, compare=False)

    @classmethod
    def declared(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls) if f.name not in ("extra", "read_keys")]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        if not isinstance(data, dict):
            raise ManifestError(f"{cls.__name__} in a model entry is not a JSON object: {data!r}")
        names = cls.declared()
        values = {k: _nested(cls.NESTED.get(k), data[k]) for k in names if k in data}
        return cls(**values, extra={k: v for k, v in data.items() if k not in names}, read_keys=tuple(data))

    def to_dict(self) -> dict[str, Any]:
        kept = set(self.read_keys) if self.read_keys is not None else {
            m for anchor, members in self.TOGETHER.items() if getattr(self, anchor) is not None for m in members}
        data = {}
        for name in self.declared():
            value = getattr(self, name)
            if value is not None or name in kept:
                data[name] = value.to_dict() if isinstance(value, Record) else value
        data |= self.extra
        if self.read_keys is None:
            return data
        return {k: data[k] for k in self.read_keys if k in data} | data


def _nested(kind: type[Record] | None, value: Any) -> Any:
    return value if kind is None or value is None else kind.from_dict(value)


@dataclass
class InputSpec(Record):
    """The model's input: its name in the graph, shape (without the batch), value range, orientation, preprocessing."""

    name: str | None = None
    shape: list[int] | None = None
    range: list[float] | None = None
    orientation: str | None = None
    preprocessing: str | None = None


@dataclass
class DrawBenchFigures(Record):
    """The drawing benchmark through the app's runtime (``slots.bench_figures``; a kept fine-tune writes ``top1``,
    ``n_sources`` and ``config``): top-1 and top-3 on the drawn variants, top-1 on the plain sources and per variant,
    how many sources and drawings, the benchmark's config key."""

    top1: float | None = None
    top3: float | None = None
    plain_top1: float | None = None
    variants: dict[str, float] | None = None
    n_sources: int | None = None
    drawings: int | None = None
    config: str | None = None


@dataclass
class Latency(Record):
    """Milliseconds for one drawing through ``Recognizer.predict`` (``slots.single_drawing_ms``) and the limit."""

    p50_ms: float | None = None
    p95_ms: float | None = None
    threads: int | None = None
    repeats: int | None = None
    max_ms: float | None = None


@dataclass
class KeptFigures(Record):
    """A kept-drawings fine-tune's figures before and after it (``finetune_kept.figures``: the pool's validation and
    test parts and the kept drawings, each scored by the same code, as its run's result.json holds them)."""

    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


@dataclass
class EntryMetrics(Record):
    """The run's test figures (``test_accuracy`` .. ``best_val_accuracy``, from the run's record), the export's
    ONNX Runtime score (``runtime_test_accuracy`` over ``runtime_n_test`` images, what the app gets); a recipe
    model's ``drawbench`` and ``latency`` (``slots.DrawingChecks.apply``); a kept fine-tune's ``kept`` figures and
    ``runtime_val_accuracy`` (``export.export_finetuned``)."""

    NESTED = {"kept": KeptFigures, "drawbench": DrawBenchFigures, "latency": Latency}
    TOGETHER = {"test_accuracy": ("best_val_accuracy",), "kept": ("runtime_val_accuracy",)}

    test_accuracy: float | None = None
    test_loss: float | None = None
    weighted_f1: float | None = None
    n_test: int | None = None
    train_seconds: float | None = None
    epochs_run: int | None = None
    best_val_accuracy: float | None = None
    kept: KeptFigures | None = None
    runtime_test_accuracy: float | None = None
    runtime_n_test: int | None = None
    runtime_val_accuracy: float | None = None
    drawbench: DrawBenchFigures | None = None
    latency: Latency | None = None


@dataclass
class TrainingRecord:
    """The run behind the model. In the file one object: the run's settings (``config``: ``RunConfig.to_dict()``
    of training/config.py, whose fields declare those keys; any key not named here lands there), then ``run_id``,
    ``device``, the ``environment`` snapshot and, for a kept fine-tune, its ``finetune`` settings. Read from a file,
    it writes back in the order it was read (``read_keys``), as ``Record`` does."""

    OWN: ClassVar[tuple[str, ...]] = ("run_id", "device", "environment", "finetune")

    config: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    device: str | None = None
    environment: dict[str, Any] | None = None
    finetune: dict[str, Any] | None = None
    read_keys: tuple[str, ...] | None = field(default=None, kw_only=True, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingRecord:
        if not isinstance(data, dict):
            raise ManifestError(f"training in a model entry is not a JSON object: {data!r}")
        return cls({k: v for k, v in data.items() if k not in cls.OWN}, **{k: data[k] for k in cls.OWN if k in data},
                   read_keys=tuple(data))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        own = {k: getattr(self, k) for k in self.OWN if getattr(self, k) is not None}
        data = {**self.config, **own}
        return data if self.read_keys is None else {k: data[k] for k in self.read_keys if k in data} | data

    @property
    def model(self) -> str | None:
        return self.config.get("model")

    @property
    def model_args(self) -> dict[str, Any]:
        return dict(self.config.get("model_args") or {})

    @property
    def epochs(self) -> int | None:
        return self.config.get("epochs")

    @property
    def init_from(self) -> str | None:
        return self.config.get("init_from")


@dataclass
class ParityCheck(Record):
    """ONNX Runtime against torch on the same test images (``convert.check_parity``); ``tolerance`` is what the
    verdict held it to (its keys differ for float16 weights)."""

    n: int | None = None
    max_abs_logit_diff: float | None = None
    max_abs_feature_diff: float | None = None
    batch_of_one_diff: float | None = None
    torch_accuracy: float | None = None
    onnx_accuracy: float | None = None
    prediction_agreement: float | None = None
    weights: str | None = None
    provider: str | None = None
    tolerance: dict[str, Any] | None = None
    passed: bool | None = None


@dataclass
class ExportInfo(Record):
    """How the file was made: exporter, opset, library versions, parameters, weights' type, seconds, the source;
    and the torch weights written beside it (``torch_weights``, a safetensors file, with its sha256), so a later
    fine-tune starts from the trained model itself (exports before 1 Dec 2026 have none: ``training.fromonnx``
    loads their ONNX files exactly instead)."""

    exporter: str | None = None
    opset: int | None = None
    torch: str | None = None
    onnx: str | None = None
    parameters: int | None = None
    weights: str | None = None
    seconds: float | None = None
    source: str | None = None
    torch_weights: str | None = None
    torch_weights_sha256: str | None = None


RECIPE_CARD = ("profile", "augmentation", "pool_images", "data_source", "n_train", "images_seen", "n_val", "epochs",
               "epochs_run", "best_epoch", "schedule", "warmup_epochs", "label_smoothing", "ema_decay", "optimizer",
               "lr", "batch_size", "limit_train", "model_args")  # fmt: skip
KEPT_RECIPE = ("kept_drawings", "kept_digest", "pool_images_per_epoch", "chosen_epoch", "chosen_on", "batchnorm",
               "data")  # fmt: skip


@dataclass
class RecipeCard(Record):
    """How a lab model was trained: the drawing recipe's knobs and images (``slots.recipe_card``, all written
    together), or a kept fine-tune's base, kept drawings and choice of epoch (``export.new_entry``)."""

    TOGETHER = {"augmentation": RECIPE_CARD, "finetuned_from": KEPT_RECIPE}

    profile: str | None = None
    augmentation: dict[str, float] | None = None
    pool_images: str | None = None
    data_source: str | None = None
    n_train: int | None = None
    images_seen: int | None = None
    n_val: int | None = None
    epochs: int | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    schedule: str | None = None
    warmup_epochs: int | None = None
    label_smoothing: float | None = None
    ema_decay: float | None = None
    optimizer: str | None = None
    lr: float | None = None
    batch_size: int | None = None
    limit_train: int | None = None
    model_args: dict[str, Any] | None = None
    finetuned_from: dict[str, Any] | None = None
    kept_drawings: dict[str, Any] | None = None
    kept_digest: str | None = None
    pool_images_per_epoch: int | None = None
    chosen_epoch: int | None = None
    chosen_on: str | None = None
    batchnorm: str | None = None
    data: dict[str, Any] | None = None


@dataclass
class SlotFigures(Record):
    """What the default-slot rule compares for one model: validation accuracy and drawing-benchmark top-1."""

    TOGETHER = {"name": ("validation", "drawn_top1", "n_val")}

    name: str | None = None
    validation: float | None = None
    drawn_top1: float | None = None
    n_val: int | None = None


@dataclass
class SlotRule(Record):
    """The default-slot decision (``slots.decide_slot``): the slot, the rule in words, both models' figures
    (``reproduction`` null when there was none to compare with), whether this model takes the slot, and why."""

    NESTED = {"lab": SlotFigures, "reproduction": SlotFigures}
    TOGETHER = {"slot": ("reproduction",)}

    slot: str | None = None
    rule: str | None = None
    lab: SlotFigures | None = None
    reproduction: SlotFigures | None = None
    takes_slot: bool | None = None
    reason: str | None = None


@dataclass
class AnswerRules(Record):
    """How the app turns this model's probabilities into an answer (``python -m training answers``): the prior
    trade-off (``recognizer.answers.adjust``: ``log p - tau * (log training_prior - log target)``; ``tau`` 0, the
    default, keeps the model as trained), the priors (``training_prior``: the training part's class frequencies;
    ``kept_prior``: the kept drawings', smoothed; ``prior`` names the target: "uniform" or "kept"), and per mode
    the conformal sets' ``thresholds`` (level -> the least folded probability a member needs,
    ``recognizer.conformal``), what they were calibrated on and how many drawings that was. ``together``: whether
    the three default slots' folded probabilities, averaged, beat each slot on the benchmark's test part per mode
    (the app shows that answer only there), with its thresholds.
    ``record`` names the results file with every figure."""

    method: str | None = None
    levels: list[float] | None = None
    sets: dict[str, dict[str, Any]] | None = None  # mode -> {"thresholds": {"0.9": p}, "n": int, "on": str}
    tau: float | None = None
    prior: str | None = None
    training_prior: list[float] | None = None
    kept_prior: list[float] | None = None
    together: dict[str, Any] | None = None  # {"models": the three slots, "modes": {mode: {"shown", "thresholds"}}}
    record: str | None = None

    def threshold(self, mode: str, level: float) -> float | None:
        """The set threshold of a mode at a level, None where none was calibrated."""
        found = ((self.sets or {}).get(mode) or {}).get("thresholds", {}).get(f"{level:g}")
        return None if found is None else float(found)


@dataclass
class ModelEntry:
    """One exported model. ``path`` is the resolved .onnx path (not stored in the file).

    ``metrics`` holds the run's test figures plus the ONNX Runtime score (what the app gets); ``training`` the run's
    config, run id, device and environment; ``parity`` the torch/ONNX comparison; ``export`` how the file was made;
    ``run_record`` the folder (beside the manifest) with the run's record. The drawing recipe's models
    (``training/slots.py``) also carry ``recipe``, ``metrics.drawbench`` and ``metrics.latency``, and ``slot_rule``:
    the default-slot decision against the reproduction's model of the split, with both models' figures. Each part is
    a ``Record`` above; keys none of them knows stay in their ``extra`` (here: the entry's own unknown keys).
    """

    PARTS: ClassVar[dict[str, type]] = {"input": InputSpec, "metrics": EntryMetrics, "training": TrainingRecord,
                                        "parity": ParityCheck, "export": ExportInfo, "recipe": RecipeCard,
                                        "slot_rule": SlotRule, "answers": AnswerRules}  # fmt: skip

    name: str
    file: str
    sha256: str
    family: str = ""
    split: str = ""
    protocol: str = ""
    profile: str = ""
    labels: list[str] = field(default_factory=list)
    input: InputSpec = field(default_factory=lambda: InputSpec("image", [1, 28, 28]))
    outputs: dict[str, str] = field(default_factory=lambda: {"logits": "logits", "features": "features"})
    metrics: EntryMetrics = field(default_factory=EntryMetrics)
    training: TrainingRecord = field(default_factory=TrainingRecord)
    slot: str | None = None
    parity: ParityCheck | None = None
    export: ExportInfo | None = None
    run_record: str = ""
    recipe: RecipeCard | None = None
    slot_rule: SlotRule | None = None
    answers: AnswerRules | None = None
    path: Path | None = field(default=None, compare=False)
    extra: dict[str, Any] = field(default_factory=dict, kw_only=True)

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
        known = [f.name for f in dataclasses.fields(cls) if f.name not in ("path", "extra")]
        values = {k: data[k] for k in known if k in data}
        for name, kind in cls.PARTS.items():
            if name in values:  # an empty optional part ({}) reads as absent, as it is written
                values[name] = None if name in OPTIONAL_PARTS and not values[name] else kind.from_dict(values[name])
        entry = cls(**values, extra={k: v for k, v in data.items() if k not in known})
        entry.labels = [str(c) for c in entry.labels]
        entry.path = None if folder is None else folder / entry.file
        return entry

    def to_dict(self) -> dict[str, Any]:
        data = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("path", "extra") or (f.name in OPTIONAL_PARTS and value == OPTIONAL_PARTS[f.name]):
                continue
            data[f.name] = value.to_dict() if f.name in self.PARTS else value
        return data | self.extra

    def order(self) -> tuple:
        """Slot models first (byclass, bymerge, balanced), then by family and name."""
        return (SLOTS.index(self.slot) if self.slot in SLOTS else len(SLOTS), self.family, self.name)


# The entry's parts left out of the file at these values
OPTIONAL_PARTS = {"slot": None, "parity": None, "export": None, "run_record": "", "recipe": None, "slot_rule": None,
                 "answers": None}


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
