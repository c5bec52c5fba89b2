"""The drawing recipe's models: their checks and the rule that decides whether one becomes the app's default for its
split. ``python -m training export --lab`` exports the best recipe run per split (``training/choose.py``) through
the one export path (``training/export.py``), and for these models ``DrawingChecks.apply`` adds, after the runtime
scoring and before the file is written:

    python -m training export --lab                                   # assets/results/lab-full -> exported_models/
    python -m training export --lab --results assets/results/lab --runs-dir runs_lab --out /tmp/lab-try   # a trial

Names: ``<model>_lab-<split>`` (``residual_cnn_lab-byclass``, ``choose.recipe_model_name``): a family apart from the
reproduction's ``residual_cnn-<split>``, whose files and entries this export never rewrites.

What the entry carries beyond a reproduction model's: ``recipe`` (profile, augmentation knobs, pool images, images
trained on and seen, schedule, warm-up, label smoothing, EMA, optimizer), ``metrics.drawbench`` (the drawing
benchmark, ``training/drawbench.py``, on the staged ONNX file through the app's preprocessing and runtime),
``metrics.latency`` and ``slot_rule`` (the records of ``recognizer/manifest.py``). ``metrics.runtime_test_accuracy``
is the export's own ONNX Runtime score.

Checks (a model that fails one is not exported, and the manifest lists it as skipped with the reason): the ONNX file
under 10 MB (the export's size check, its limit capped at ``convert.MAX_MB``) and one drawing under 5 ms on one CPU
thread (the median of ``Recognizer.predict`` on single preprocessed benchmark canvases, an app session at one thread).

The default-slot rule (``decide_slot``): a recipe model takes its split's default slot only when it beats the
reproduction's model of that split (``residual_cnn-<split>`` in the reference manifest, ``--against``, default
exported_models/) on BOTH validation accuracy (each run's best epoch, as its training recorded it) and drawing-benchmark
top-1 (both models scored now, on the same set). Otherwise the reproduction stays the default and the recipe model is
selectable. With no reproduction model of the split to compare with, the recipe model takes the slot.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recognizer.inference import Recognizer
from recognizer.manifest import (
    DrawBenchFigures,
    Latency,
    ManifestError,
    ModelEntry,
    RecipeCard,
    SlotFigures,
    SlotRule,
)
from training.augmentation import AUGMENT_FIELDS
from training.convert import staged_recognizer
from training.drawbench import BenchConfig, BenchSet, build_set, pct, score_probs
from training.records import Metrics

REPRODUCTION_FAMILY = "residual_cnn"  # the reproduction's slot models are residual_cnn-<split>
MAX_MS = 5.0
LATENCY_REPEATS = 200
LATENCY_WARMUP = 20
RULE = ("a lab model takes its split's default slot only when it beats the reproduction's model of that split on "
        "both validation accuracy and drawing-benchmark top-1; otherwise the reproduction stays the default and the "
        "lab model is selectable")  # fmt: skip


class OverBudget(RuntimeError):
    """A recipe model over the size or latency limit: left out, with the figure that failed."""


# ---------------------------------------------------------------------------------------------
# What the card says


def recipe_card(metrics: Metrics) -> RecipeCard:
    """How the model was trained, in the terms of the drawing recipe's RunConfig knobs, and on how many images."""
    c = metrics.config
    return RecipeCard(
        profile=c.profile,
        augmentation={name.removeprefix("aug_"): getattr(c, name) for name in AUGMENT_FIELDS},
        pool_images=c.pool_images,
        data_source=metrics.data_source,
        n_train=metrics.n_train,
        images_seen=metrics.n_train * metrics.epochs_run,  # training images drawn over every epoch run
        n_val=metrics.n_val,
        epochs=c.epochs, epochs_run=metrics.epochs_run, best_epoch=metrics.best_epoch,
        schedule=c.schedule, warmup_epochs=c.warmup_epochs, label_smoothing=c.label_smoothing,
        ema_decay=c.ema_decay, optimizer=c.optimizer, lr=c.lr, batch_size=c.batch_size,
        limit_train=c.limit_train, model_args=dict(c.model_args),
    )  # fmt: skip


def bench_figures(bench: BenchSet, recognizer: Recognizer, name: str) -> DrawBenchFigures:
    """A model's drawing-benchmark figures through the app's runtime (the set is already preprocessed)."""
    labels = list(recognizer.entry(name).labels)
    scored = score_probs(bench, labels, lambda x: recognizer.predict_batch(name, x)[0])
    variants = bench.config.variants
    return DrawBenchFigures(top1=scored.drawn.top1, top3=scored.drawn.top3, plain_top1=scored.plain.top1,
                            variants={v: scored.variants[v].top1 for v in variants}, n_sources=int(len(bench.sources)),
                            drawings=int(len(bench.sources) * len(variants)), config=bench.config.key())  # fmt: skip


def single_drawing_ms(recognizer: Recognizer, name: str, drawings: np.ndarray, repeats: int = LATENCY_REPEATS,
                      warmup: int = LATENCY_WARMUP) -> Latency:  # fmt: skip
    """Milliseconds for one preprocessed drawing through ``Recognizer.predict`` (one session call, softmax, top-k)."""
    times = []
    for i in range(warmup + repeats):
        started = time.perf_counter()
        recognizer.predict(name, drawings[i % len(drawings)])
        times.append(time.perf_counter() - started)
    ms = 1e3 * np.asarray(times[warmup:])
    return Latency(p50_ms=round(float(np.median(ms)), 3), p95_ms=round(float(np.percentile(ms, 95)), 3),
                   threads=recognizer.intra_op_num_threads, repeats=repeats)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The default-slot rule




def decide_slot(split: str, lab: SlotFigures, reproduction: SlotFigures | None) -> SlotRule:
    """The slot decision (``RULE``), with both models' figures, as the manifest's ``slot_rule`` records it."""
    decision = SlotRule(slot=split, rule=RULE, lab=lab, reproduction=reproduction)
    if reproduction is None:
        return dataclasses.replace(decision, takes_slot=True,
                                   reason=f"no reproduction model of {split} to compare with")
    better_val = None not in (lab.validation, reproduction.validation) and lab.validation > reproduction.validation
    better_drawn = None not in (lab.drawn_top1, reproduction.drawn_top1) and lab.drawn_top1 > reproduction.drawn_top1
    figures = (f"validation {pct(lab.validation)} vs {pct(reproduction.validation)}, drawings top-1 "
               f"{pct(lab.drawn_top1)} vs {pct(reproduction.drawn_top1)}")  # fmt: skip
    if better_val and better_drawn:
        return dataclasses.replace(decision, takes_slot=True, reason=f"beats {reproduction.name} on both: {figures}")
    lost = " and ".join(what for what, won in (("validation", better_val), ("the drawings", better_drawn)) if not won)
    return dataclasses.replace(decision, takes_slot=False,
                               reason=f"{reproduction.name} stays the default (not beaten on {lost}): {figures}")


def settle_slots(entries: list[ModelEntry]) -> None:
    """Each decided slot held by the model the rule chose (when it is in this manifest), by no other model."""
    for decided in [e for e in entries if e.slot_rule]:
        rule = decided.slot_rule
        holder = decided.name if rule.takes_slot else (rule.reproduction or SlotFigures()).name
        if holder not in {e.name for e in entries}:
            continue  # a trial export beside the reproduction's folder: nothing to hand the slot to here
        for e in entries:
            if e.name == holder:
                e.slot = rule.slot
            elif e.slot == rule.slot:
                e.slot = None


# ---------------------------------------------------------------------------------------------
# The checks and the card, per model


@dataclass
class DrawingChecks:
    """The benchmark set, the reproduction's models to compare with, and the limits; one per export command."""

    bench: BenchSet
    reference: Path
    max_ms: float = MAX_MS
    repeats: int = LATENCY_REPEATS
    _reproduction: dict[str, SlotFigures | None] = field(default_factory=dict)

    @classmethod
    def build(cls, reference: Path, per_class: int, max_ms: float = MAX_MS, progress: bool = True) -> DrawingChecks:
        return cls(build_set(BenchConfig(per_class=per_class), progress=progress), Path(reference), max_ms)

    def reproduction(self, split: str) -> SlotFigures | None:
        """The reference manifest's ``residual_cnn-<split>``: its validation figure, scored now on the set."""
        if split not in self._reproduction:
            self._reproduction[split] = self._score_reproduction(f"{REPRODUCTION_FAMILY}-{split}")
        return self._reproduction[split]

    def _score_reproduction(self, name: str) -> SlotFigures | None:
        try:
            recognizer = Recognizer(self.reference)
        except ManifestError:
            return None
        if name not in recognizer.sessions:
            return None
        entry = recognizer.entry(name)
        drawn = bench_figures(self.bench, recognizer, name).top1
        return SlotFigures(name, entry.metrics.best_val_accuracy, drawn)

    def apply(self, entry: ModelEntry, staged: bytes, metrics: Metrics) -> None:
        """Recipe, drawing benchmark, latency (checked) and the slot decision, into the entry before it is written."""
        entry.recipe = recipe_card(metrics)
        with tempfile.TemporaryDirectory(prefix="lab-export-") as tmp:
            recognizer = staged_recognizer(entry, staged, Path(tmp))
            entry.metrics.drawbench = bench_figures(self.bench, recognizer, entry.name)
            latency = single_drawing_ms(recognizer, entry.name, self.bench.inputs[0], self.repeats)
        entry.metrics.latency = dataclasses.replace(latency, max_ms=self.max_ms)
        if latency.p50_ms > self.max_ms:
            raise OverBudget(f"{entry.name} takes {latency.p50_ms:.2f} ms per drawing (median, one CPU thread), "
                             f"over the {self.max_ms:g} ms limit")  # fmt: skip
        lab = SlotFigures(entry.name, metrics.best_val_accuracy, entry.metrics.drawbench.top1, metrics.n_val)
        entry.slot_rule = decide_slot(metrics.split, lab, self.reproduction(metrics.split))
        entry.slot = metrics.split if entry.slot_rule.takes_slot else None


def describe_checks(entry: ModelEntry) -> str:
    """One line per exported recipe model for the command's output: its figures and the slot decision."""
    d, lat, rule = entry.metrics.drawbench, entry.metrics.latency, entry.slot_rule
    return (f"{entry.name}: validation {pct(entry.metrics.best_val_accuracy)}, test via ONNX Runtime "
            f"{pct(entry.metrics.runtime_test_accuracy)}, drawings top-1 {pct(d.top1)} "
            f"({d.drawings:,} drawings), {lat.p50_ms:.2f} ms per drawing (one thread); "
            f"{'DEFAULT' if rule.takes_slot else 'selectable'} in {rule.slot}: {rule.reason}")  # fmt: skip
