"""Export the winning runs to ONNX, with the manifest the app reads and checks that the files hold.

    python -m training export                       # the winners of assets/results/*.json
    python -m training export --profile quick
    python -m training export --run RUN_ID --name residual_cnn-byclass --slot byclass   # given runs only
    python -m training export --lab                 # the lab family (training/labexport.py): residual_cnn_lab-<split>

Which runs: Table 8's final residual CNN of each split (slot = split), and for each baseline family
(LeNet-5, plain CNN, ResNet-50) its run with the best *validation* accuracy over every table; test
figures never choose. A table without a validation part (Study B's SSL table) ships the first-seed run of
the row its spec's ``export_rows`` rank best on the figure its claims are decided on
(``collect.pick_without_validation``), exported only when the table is named (``--table studyB_ssl``, with
its runs folder), so the default export is unchanged.

Each file takes an image [N, 1, 28, 28] float32 in [0, 1] (upright, dynamic N) and gives ``logits`` [N, C]
and ``features`` [N, D] (the penultimate vector for the maps).

Checks per model: onnx.checker; parity of ONNX Runtime (CPU) with torch on 1,000 seeded test images
(largest |logit difference| <= 1e-4 and identical accuracy, else the model is not written); the size
limit; and the whole test part scored again through ``recognizer.inference.Recognizer`` (the app's
code path) as ``metrics.runtime_test_accuracy``. The manifest entry, minus its sha256, is stored in
the file's metadata too, so a lone .onnx file describes itself.

Exporter: the dynamo exporter (``torch.onnx.export(..., dynamo=True)``, opset 20). Both exporters
give parity near 1e-7 on all four families here; dynamo is the maintained one (the TorchScript
exporter is deprecated) and takes seconds per model, which is nothing beside the checks. The
TorchScript exporter stays selectable (``--exporter legacy``) and is used as a fallback, recorded in
the entry, should dynamo fail on a model.

ResNet-50 (about 25.6M parameters) is 103 MB in float32 and 51 MB with float16 weights, both over
the 10 MB limit, so it is left out by default and listed under ``skipped`` in the manifest with the
reason. ``--max-mb 60`` exports it with float16 weights (each weight stored as float16 and cast to
float32 once when the session loads; compute stays float32), checked against a looser tolerance:
|logit difference| <= 1% of the largest |logit|, predictions agreeing on >= 99% of the images and
accuracy within 0.5 points.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, numpy_helper
from torch import nn
from tqdm import tqdm

from recognizer.files import sha256_bytes, write_atomic
from recognizer.inference import Recognizer
from recognizer.manifest import SLOTS, Manifest, ManifestError, ModelEntry, SkippedModel, manifest_path
from training.collect import pick_winners, pick_without_validation
from training.data import DataError, SplitData, load_split
from training.drawbench import BenchConfig
from training.labexport import LAB_RESULTS, LabChecks, OverBudget, describe, lab_name, lab_picks, settle_slots
from training.labexport import MAX_MB as LAB_MAX_MB
from training.labexport import MAX_MS as LAB_MAX_MS
from training.models import count_parameters, model_info
from training.paths import REPO_ROOT, models_dir, results_dir, runs_dir
from training.records import Metrics, RecordError, TableResult, Winners
from training.runfolder import RunFolder
from training.trainer import load_trained

FINAL_TABLE = "table8"  # the final residual CNN per split
FINAL_FAMILY = "residual_cnn"
BASELINE_FAMILIES = ("lenet5", "plain_cnn", "resnet50")
PARITY_IMAGES = 1000
PARITY_TOLERANCE = 1e-4  # largest |logit difference| for float32 weights
FP16_RELATIVE_TOLERANCE = 1e-2  # for float16 weights, as a fraction of the largest |logit|
FP16_MIN_AGREEMENT = 0.99
FP16_MAX_ACCURACY_GAP = 0.005
MAX_MB = 10.0
METADATA_KEY = "emnist_lab.model"  # metadata_props key holding the manifest entry (minus sha256)
INPUT = {"name": "image", "shape": [1, 28, 28], "range": [0, 1], "orientation": "upright", "preprocessing": "emnist"}
OUTPUTS = {"logits": "logits", "features": "features"}
PROBE_IMAGES = 64  # the final file (with metadata) must compute exactly what the checked one did on these


class ExportError(RuntimeError):
    """A model could not be exported faithfully (checker, parity, size); the message says why."""


class SkipRun(RuntimeError):
    """A run cannot be exported (folder missing, over the size limit); not an error of the export."""


@dataclass
class Candidate:
    """One run to export and where the choice came from."""

    run_id: str
    name: str | None = None  # default: <family>-<split>
    slot: str | None = None
    source: str = "--run"
    notes: list[str] = field(default_factory=list)
    lab: bool = False  # the lab family: its card, checks and default-slot rule (training/labexport.py)


@dataclass
class ExportOptions:
    """How every model of one export command is made and checked."""

    exporter: str = "dynamo"
    max_mb: float = MAX_MB
    eval_limit: int | None = None  # score at most this many test images through the runtime
    progress: bool = True
    lab: LabChecks | None = None  # for lab candidates: drawing benchmark, latency, default-slot rule


def shown(path: Path) -> Path:
    """A path as a message shows it: relative to the repo when inside it (no machine paths in the manifest)."""
    return path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path


# ---------------------------------------------------------------------------------------------
# Choosing the runs from the results tables


def read_tables(folder: Path, profile: str | None, messages: list[str]) -> dict[str, TableResult]:
    """The results tables of ``folder`` (of ``profile`` when given), by name; what is left out goes to messages."""
    tables: dict[str, TableResult] = {}
    for path in sorted(folder.glob("*.json")):
        if path.name == Winners.FILE:
            continue  # the runner's summary of these very tables, not a table
        try:
            table = TableResult.read(path)
        except RecordError as err:
            reason = str(err).removeprefix(f"{path}: ")
            messages.append(f"skipping {shown(path)}: not a results table ({reason})")
            continue
        if profile and table.profile not in ("", profile):
            messages.append(f"skipping {path.name}: profile {table.profile!r}, not {profile!r}")
            continue
        tables[path.stem] = table
    return tables


def final_candidates(chosen: Winners, messages: list[str]) -> list[Candidate]:
    """Table 8's residual CNN of each split, in its slot."""
    picked = []
    for split in SLOTS:
        winner = chosen.table8.get(split)
        if winner is None:
            messages.append(f"{FINAL_TABLE}.json has no finished {split} row")
            continue
        picked.append(Candidate(winner.run_id, f"{FINAL_FAMILY}-{split}", split, f"{FINAL_TABLE} row {split}"))
    return picked


def baseline_candidates(chosen: Winners, messages: list[str]) -> list[Candidate]:
    """Each baseline family's run with the best validation accuracy, per split."""
    picked = []
    for family in BASELINE_FAMILIES:
        by_split = chosen.best_by_family.get(family, {})
        if not by_split:
            messages.append(f"no finished results row for {family} with a validation score (expected in table2.json)")
        for split, winner in sorted(by_split.items()):
            picked.append(Candidate(winner.run_id, f"{family}-{split}", None,
                                    f"{winner.table} row {winner.key} (best validation accuracy of the "
                                    f"{family} runs on {split})"))
    return picked


def no_validation_candidates(tables: dict[str, TableResult]) -> list[Candidate]:
    """The run each table without a validation part ships (``collect.pick_without_validation``)."""
    return [Candidate(w.run_id, None, None, f"{w.table} row {w.key}, first seed (no validation part: the row of its "
                      "export_rows with the best mean over seeds on the figure its claims are decided on)")
            for w in pick_without_validation(tables)]  # fmt: skip


def select_candidates(results_dir: Path, profile: str | None,
                      only: list[str] | None = None) -> tuple[list[Candidate], list[str]]:  # fmt: skip
    """The runs the results tables (``only`` these, when given) name as winners, and messages about what is
    missing."""
    if not results_dir.is_dir():
        return [], [f"no results folder {results_dir}: run `python -m training reproduce` first, or pass --run"]
    folder = results_dir / profile if profile and (results_dir / profile).is_dir() else results_dir
    messages: list[str] = []
    tables = read_tables(folder, profile, messages)
    if only:
        tables = {name: table for name, table in tables.items() if name in only}
        messages += [f"no {folder / name}.json" for name in only if name not in tables]
    # One rule for "the winner", shared with winners.json: training.collect.pick_winners (validation, never test).
    chosen = pick_winners(tables)
    picked: list[Candidate] = []
    if FINAL_TABLE in tables:
        picked += final_candidates(chosen, messages)
    elif not only:
        messages.append(f"no {folder / FINAL_TABLE}.json: the final residual CNNs (one per split) are not exported")
    if not only:
        return picked + baseline_candidates(chosen, messages), messages
    # Named tables only: a table without a validation part ships its pick when asked for by name.
    return picked + baseline_candidates(chosen, []) + no_validation_candidates(tables), messages


# ---------------------------------------------------------------------------------------------
# ONNX


class LogitsAndFeatures(nn.Module):
    """The exported graph: an upright [N, 1, 28, 28] image in [0, 1] -> (logits, penultimate features)."""

    def __init__(self, model: nn.Module, in_channels: int = 1) -> None:
        super().__init__()
        self.model = model
        self.in_channels = in_channels

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.in_channels != 1:  # Study B's 3-channel nets took grey images as RGB
            image = image.expand(-1, self.in_channels, -1, -1)
        features = self.model.features(image)
        return self.model.head(features), features


def to_onnx(model: nn.Module, in_channels: int = 1, exporter: str = "dynamo") -> onnx.ModelProto:
    """The model as an onnx.ModelProto with input ``image`` (dynamic batch) and outputs logits, features."""
    wrapper = LogitsAndFeatures(model, in_channels).eval()
    example = (torch.rand(2, 1, 28, 28),)
    names = {"input_names": ["image"], "output_names": ["logits", "features"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice, tracer notes
        if exporter == "dynamo":
            program = torch.onnx.export(wrapper, example, None, dynamo=True, verbose=False, optimize=True,
                                        dynamic_shapes={"image": {0: torch.export.Dim("N")}}, **names)
            return program.model_proto
        if exporter == "legacy":
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "model.onnx"
                torch.onnx.export(wrapper, example, str(path), dynamo=False, opset_version=17,
                                  dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}, "features": {0: "N"}}, **names)
                return onnx.load(str(path))
    raise ValueError(f"unknown exporter {exporter!r}: dynamo or legacy")


def weights_to_fp16(proto: onnx.ModelProto) -> None:
    """Store float32 weights as float16, each cast back to float32 by a Cast node (compute stays float32).

    ONNX Runtime folds these casts when the session loads, so inference speed is unchanged.
    """
    casts = []
    for init in proto.graph.initializer:
        if init.data_type == TensorProto.FLOAT and math.prod(init.dims) >= 16:
            name = init.name
            half = numpy_helper.to_array(init).astype(np.float16)
            init.CopyFrom(numpy_helper.from_array(half, f"{name}__fp16"))
            casts.append(onnx.helper.make_node("Cast", [f"{name}__fp16"], [name], to=TensorProto.FLOAT))
    nodes = list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend(casts + nodes)  # casts first keeps the graph topologically sorted


def set_metadata(proto: onnx.ModelProto, entry: ModelEntry) -> None:
    """The manifest entry without its sha256 (which depends on these very bytes) into metadata_props."""
    described = {k: v for k, v in entry.to_dict().items() if k != "sha256"}
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(described, sort_keys=True)})
    proto.doc_string = f"{entry.name}: {entry.family} trained on EMNIST {entry.split} ({entry.protocol})"


def read_metadata(path: str | os.PathLike) -> dict:
    """The description a lone .onnx file carries (the manifest entry minus sha256)."""
    proto = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise KeyError(f"{path} has no {METADATA_KEY} metadata")
    return json.loads(props[METADATA_KEY])


def ort_session(model: bytes | str | os.PathLike) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


def run_session(session: ort.InferenceSession, images: np.ndarray, chunk: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Logits and features of upright float32 images [N, 28, 28] from an ONNX Runtime session."""
    logits, features = [], []
    for start in range(0, len(images), chunk):
        out = session.run(["logits", "features"], {"image": images[start : start + chunk, None]})
        logits.append(out[0])
        features.append(out[1])
    return np.concatenate(logits), np.concatenate(features)


@torch.no_grad()
def run_torch(model: nn.Module, images: np.ndarray, in_channels: int = 1,
              chunk: int = 250) -> tuple[np.ndarray, np.ndarray]:
    wrapper = LogitsAndFeatures(model, in_channels).eval()
    logits, features = [], []
    for start in range(0, len(images), chunk):
        lg, ft = wrapper(torch.from_numpy(images[start : start + chunk, None]))
        logits.append(lg.numpy())
        features.append(ft.numpy())
    return np.concatenate(logits), np.concatenate(features)


# ---------------------------------------------------------------------------------------------
# Checks: parity with torch, and the whole test part through the app's runtime


def parity_sample(data: SplitData, n: int = PARITY_IMAGES, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """n seeded test images as float32 [n, 28, 28] in [0, 1] (all of them when the part is smaller).

    A seeded draw rather than the first n: the pool's test part is ordered by pixel bytes.
    """
    x, y = data.parts["test"]
    idx = sample_indices(len(y), n, seed)
    return x[idx].astype(np.float32) / 255.0, y[idx]


def sample_indices(total: int, n: int | None, seed: int = 42) -> np.ndarray:
    """n indices out of total drawn with a seed, sorted (all of them when n is None or larger)."""
    if n is None or n >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, n, replace=False))


def parity_verdict(result: dict, torch_logits: np.ndarray, fp16: bool) -> tuple[bool, float]:
    """Whether a parity result passes, and the logit tolerance it was held to (recorded in ``result``)."""
    if fp16:
        tolerance = FP16_RELATIVE_TOLERANCE * max(1.0, float(np.abs(torch_logits).max()))
        ok = (result["max_abs_logit_diff"] <= tolerance and result["prediction_agreement"] >= FP16_MIN_AGREEMENT
              and abs(result["onnx_accuracy"] - result["torch_accuracy"]) <= FP16_MAX_ACCURACY_GAP)
        result["tolerance"] = {"max_abs_logit_diff": tolerance, "min_agreement": FP16_MIN_AGREEMENT,
                               "max_accuracy_gap": FP16_MAX_ACCURACY_GAP}
    else:
        tolerance = PARITY_TOLERANCE
        ok = result["max_abs_logit_diff"] <= tolerance and result["onnx_accuracy"] == result["torch_accuracy"]
        result["tolerance"] = {"max_abs_logit_diff": tolerance, "accuracy": "identical"}
    return ok and result["batch_of_one_diff"] <= tolerance, tolerance


def check_parity(model: nn.Module, onnx_bytes: bytes, images: np.ndarray, labels: np.ndarray,
                 in_channels: int = 1, fp16: bool = False) -> dict:
    """ONNX Runtime against torch on the same images; raises ExportError when they disagree."""
    torch_logits, torch_features = run_torch(model, images, in_channels)
    session = ort_session(onnx_bytes)
    onnx_logits, onnx_features = run_session(session, images)
    single, _ = run_session(session, images[:1])  # a batch of one through the dynamic axis
    torch_acc = float((torch_logits.argmax(1) == labels).mean())
    onnx_acc = float((onnx_logits.argmax(1) == labels).mean())
    result = {
        "n": len(labels),
        "max_abs_logit_diff": float(np.abs(onnx_logits - torch_logits).max()),
        "max_abs_feature_diff": float(np.abs(onnx_features - torch_features).max()),
        "batch_of_one_diff": float(np.abs(single[0] - onnx_logits[0]).max()),
        "torch_accuracy": torch_acc,
        "onnx_accuracy": onnx_acc,
        "prediction_agreement": float((onnx_logits.argmax(1) == torch_logits.argmax(1)).mean()),
        "weights": "float16" if fp16 else "float32",
        "provider": "CPUExecutionProvider",
    }
    ok, tolerance = parity_verdict(result, torch_logits, fp16)
    result["passed"] = bool(ok)
    if not ok:
        raise ExportError(
            f"ONNX Runtime disagrees with torch on {len(labels)} test images: max |logit diff| "
            f"{result['max_abs_logit_diff']:.3g} (tolerance {tolerance:.3g}), batch-of-one diff "
            f"{result['batch_of_one_diff']:.3g}, accuracy torch {torch_acc:.4f} vs onnx {onnx_acc:.4f}"
        )
    return result


def evaluate_exported(model_dir: str | os.PathLike, name: str, data: SplitData | None = None,
                      limit: int | None = None, progress: bool = True, threads: int | None = None) -> dict:
    """Accuracy of an exported model on its split's test part via ``Recognizer.predict_batch``.

    This is the path the app takes, so the figure checks the manifest's torch-side test_accuracy.
    """
    recognizer = Recognizer(model_dir, intra_op_num_threads=threads or os.cpu_count() or 1)
    if name in recognizer.unavailable:
        raise ExportError(f"{name} does not load through the runtime: {recognizer.unavailable[name]}")
    entry = recognizer.entry(name)
    data = data or load_split(entry.split, entry.protocol or "auto")
    x, y = data.parts["test"]
    idx = sample_indices(len(y), limit)
    x, y = x[idx], y[idx]
    started = time.perf_counter()
    correct, chunk = 0, 4096
    for start in tqdm(range(0, len(y), chunk), desc=f"{name} test via runtime", leave=False, disable=not progress):
        probs, _ = recognizer.predict_batch(name, x[start : start + chunk].astype(np.float32) / 255.0)
        correct += int((probs.argmax(1) == y[start : start + chunk]).sum())
    return {"accuracy": correct / max(len(y), 1), "n": int(len(y)), "seconds": time.perf_counter() - started}


# ---------------------------------------------------------------------------------------------
# One run: read its record, convert, check, describe, write


class SplitCache:
    """Each (split, protocol) decoded once per export or embed command."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], SplitData] = {}

    def get(self, split: str, protocol: str) -> SplitData:
        key = (split, protocol)
        if key not in self._data:
            self._data[key] = load_split(split, protocol)
        return self._data[key]


def read_run(run_dir: Path) -> Metrics:
    """A finished run's metrics; SkipRun says what is missing when the folder holds no exportable run."""
    run = RunFolder(run_dir)
    if not run.done or not run.best_path.exists():
        what = ("does not exist" if not run_dir.exists()
                else f"has no {Metrics.FILE} (unfinished)" if not run.done
                else f"has no {run.best_path.name} (finished elsewhere; its weights were not copied here)")
        raise SkipRun(f"run folder {shown(run_dir)} {what}")
    try:
        return run.metrics()
    except (ValueError, TypeError) as err:  # RecordError, or a config RunConfig does not know
        reason = str(err).removeprefix(f"{run.metrics_path}: ")  # the path is named below, relative to the repo
        raise SkipRun(f"{shown(run.metrics_path)} is not a finished run's record ({reason}): "
                      "not written by training.trainer.train") from err


def float16_needed(name: str, family: str, params: int, max_mb: float) -> bool:
    """Whether the weights must be stored as float16 to fit; SkipRun when even that is over the limit."""
    fp16 = params * 4 / 1e6 > max_mb
    if params * (2 if fp16 else 4) / 1e6 > max_mb:
        raise SkipRun(
            f"{name} ({family}, {params / 1e6:.1f}M parameters) would be {params * 4 / 1e6:.0f} MB in float32 and "
            f"{params * 2 / 1e6:.0f} MB with float16 weights, over the {max_mb:g} MB limit; "
            f"pass --max-mb {math.ceil(params * 2 / 1e6 * 1.1)} to export it with float16 weights"
        )
    return fp16


def build_onnx(model: nn.Module, in_channels: int, exporter: str, name: str) -> tuple[onnx.ModelProto, str]:
    """The graph and the exporter that made it: dynamo falls back to the legacy exporter, saying so."""
    try:
        return to_onnx(model, in_channels, exporter), exporter
    except Exception as err:  # noqa: BLE001 - fall back to the other exporter, say so, and let parity judge
        if exporter != "dynamo":
            raise
        print(f"warning: dynamo export of {name} failed ({type(err).__name__}: {err}); using the legacy exporter",
              file=sys.stderr)
        return to_onnx(model, in_channels, "legacy"), "legacy"


def checked_bytes(proto: onnx.ModelProto, name: str, max_mb: float) -> bytes:
    """The serialised graph once onnx.checker accepts it and it fits the size limit."""
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as err:
        raise ExportError(f"{name}: onnx.checker rejects the exported graph: {err}") from err
    staged = proto.SerializeToString()
    if len(staged) / 1e6 > max_mb:
        raise SkipRun(f"{name} is {len(staged) / 1e6:.1f} MB as ONNX, over the {max_mb:g} MB limit")
    return staged


def opset(proto: onnx.ModelProto) -> int:
    return max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def make_entry(candidate: Candidate, metrics: Metrics, parity: dict, export: dict) -> ModelEntry:
    """The manifest entry of a checked model, before its runtime score, run record and sha256 are known."""
    config = metrics.config
    return ModelEntry(
        name=candidate.name,
        file=f"{candidate.name}.onnx",
        sha256="",
        family=config.model,
        split=metrics.split,
        protocol=metrics.protocol,
        profile=config.profile,
        labels=[str(c) for c in metrics.chars],
        input=dict(INPUT),
        outputs=dict(OUTPUTS),
        metrics={"test_accuracy": metrics.test_accuracy, "test_loss": metrics.test_loss,
                 "weighted_f1": metrics.weighted_f1, "n_test": metrics.n_test, "train_seconds": metrics.train_seconds,
                 "epochs_run": metrics.epochs_run, "best_val_accuracy": metrics.best_val_accuracy},
        training={**config.to_dict(), "run_id": metrics.run_id, "device": metrics.device,
                  "environment": metrics.environment},
        slot=candidate.slot,
        parity=parity,
        export=export,
    )


def score_through_runtime(entry: ModelEntry, staged: bytes, out_dir: Path, data: SplitData, metrics: Metrics,
                          options: ExportOptions) -> None:
    """The whole test part scored through the app's runtime on the staged file (same graph as the final one)."""
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".staging-") as tmp:
        write_atomic(Path(tmp) / entry.file, staged)
        Manifest([dataclasses.replace(entry, sha256=sha256_bytes(staged))]).write(Path(tmp))
        runtime = evaluate_exported(tmp, entry.name, data, limit=options.eval_limit, progress=options.progress)
    entry.metrics["runtime_test_accuracy"] = runtime["accuracy"]
    entry.metrics["runtime_n_test"] = runtime["n"]
    if options.eval_limit is None and abs(runtime["accuracy"] - metrics.test_accuracy) > 0.002:
        # Expected only when torch scored in bf16 on a GPU; fp32 CPU scoring agrees to the image.
        print(f"note: {entry.name} scores {runtime['accuracy']:.4f} through the runtime vs "
              f"{metrics.test_accuracy:.4f} in training ({metrics.device})", file=sys.stderr)


def write_model(proto: onnx.ModelProto, entry: ModelEntry, staged: bytes, probe: np.ndarray, out_dir: Path) -> None:
    """The final file: the checked graph with the entry in its metadata; sets the entry's sha256."""
    entry.run_record = f"runs/{entry.name}"  # config, log, history and metrics of the run, copied beside the model
    set_metadata(proto, entry)
    final = proto.SerializeToString()
    # The metadata changes no computation: the final bytes must give exactly the staged logits.
    if not np.array_equal(run_session(ort_session(final), probe)[0], run_session(ort_session(staged), probe)[0]):
        raise ExportError(f"{entry.name}: the file with metadata computes differently from the checked one")
    write_atomic(out_dir / entry.file, final)
    entry.sha256 = sha256_bytes(final)


def export_run(candidate: Candidate, out_dir: Path, splits: SplitCache, runs: Path,
               options: ExportOptions) -> ModelEntry:
    """Export, check and write one run; returns its manifest entry."""
    run_dir = runs / candidate.run_id
    metrics = read_run(run_dir)
    model, _ = load_trained(run_dir)
    family = metrics.config.model
    default_name = lab_name(family, metrics.split) if candidate.lab else f"{family}-{metrics.split}"
    name = candidate.name = candidate.name or default_name
    in_channels = model_info(family).in_channels
    params = count_parameters(model)
    fp16 = float16_needed(name, family, params, options.max_mb)

    started = time.perf_counter()
    proto, used = build_onnx(model, in_channels, options.exporter, name)
    if fp16:
        weights_to_fp16(proto)
    export = {"exporter": used, "opset": opset(proto), "torch": torch.__version__, "onnx": onnx.__version__,
              "parameters": params, "weights": "float16" if fp16 else "float32",
              "seconds": round(time.perf_counter() - started, 2), "source": candidate.source}
    staged = checked_bytes(proto, name, options.max_mb)

    data = splits.get(metrics.split, metrics.protocol)
    images, labels = parity_sample(data)
    entry = make_entry(candidate, metrics, check_parity(model, staged, images, labels, in_channels, fp16), export)
    score_through_runtime(entry, staged, out_dir, data, metrics, options)
    if candidate.lab and options.lab is not None:
        options.lab.apply(entry, staged, metrics)
    write_model(proto, entry, staged, images[:PROBE_IMAGES], out_dir)
    # The run's own record travels with the model: where every shipped number came from.
    RunFolder(run_dir).copy_record(out_dir / entry.run_record)
    return entry


# ---------------------------------------------------------------------------------------------
# Every run, then the manifest


@dataclass
class Outcome:
    """What one export command did: the models written, the runs left out (with why) and the failures."""

    exported: list[ModelEntry] = field(default_factory=list)
    skipped: list[SkippedModel] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def report_exported(entry: ModelEntry, out_dir: Path) -> None:
    p, m, e = entry.parity, entry.metrics, entry.export
    size = (out_dir / entry.file).stat().st_size
    tqdm.write(f"exported {entry.name} ({size / 1e6:.1f} MB, {e['weights']}, {e['exporter']} {e['seconds']:.1f} s): "
               f"parity max |dlogit| {p['max_abs_logit_diff']:.2g} on {p['n']} images, accuracy torch "
               f"{p['torch_accuracy']:.4f} = onnx {p['onnx_accuracy']:.4f}; test accuracy "
               f"{m['test_accuracy']:.4f}, via runtime {m['runtime_test_accuracy']:.4f} ({m['runtime_n_test']} images)")
    if entry.slot_rule:
        tqdm.write(describe(entry))


def export_all(candidates: list[Candidate], out_dir: Path, runs: Path, options: ExportOptions) -> Outcome:
    """Each candidate exported in turn; a skipped or failed one is reported and does not stop the others."""
    outcome, splits = Outcome(), SplitCache()
    for candidate in tqdm(candidates, desc="export", disable=not options.progress or len(candidates) < 2):
        label = candidate.name or candidate.run_id
        try:
            entry = export_run(candidate, out_dir, splits, runs, options)
        except (SkipRun, OverBudget) as err:
            print(f"skipped {label}: {err}", file=sys.stderr)
            outcome.skipped.append(SkippedModel(candidate.name, candidate.run_id, str(err)))
            continue
        except (ExportError, DataError) as err:
            print(f"FAILED {label}: {err}", file=sys.stderr)
            outcome.failed.append(label)
            continue
        except Exception:  # noqa: BLE001 - an unforeseen error fails this model loudly, not the others
            traceback.print_exc()
            print(f"FAILED {label}: unexpected error (traceback above)", file=sys.stderr)
            outcome.failed.append(label)
            continue
        outcome.exported.append(entry)
        report_exported(entry, out_dir)
    return outcome


def earlier_entries(out_dir: Path) -> list[ModelEntry]:
    """The entries of the manifest already in ``out_dir``, or [] when there is none (or it is unreadable)."""
    path = manifest_path(out_dir)
    if not path.exists():
        return []
    try:
        return Manifest.read(path).models
    except ManifestError as err:
        print(f"warning: the existing {path} is unreadable ({err}); writing a fresh one", file=sys.stderr)
        return []


def kept_entries(out_dir: Path, exported: list[ModelEntry], clean: bool) -> list[ModelEntry]:
    """The earlier entries that stay beside the new ones (none with --clean, whose files are removed)."""
    names = {e.name for e in exported}
    new_slots = {e.slot for e in exported} - {None}
    kept = []
    for old in earlier_entries(out_dir):
        if old.name in names:
            continue
        if clean:
            stale = out_dir / old.file
            if old.file and stale.is_file() and stale.suffix == ".onnx":
                stale.unlink()
            continue
        if old.slot in new_slots:  # a slot belongs to one model: the new export takes it
            old = dataclasses.replace(old, slot=None)
        kept.append(old)
    return kept


# ---------------------------------------------------------------------------------------------
# Command line


class _RunOption(argparse.Action):
    """``--run ID [--name N] [--slot S]`` groups: --name and --slot apply to the --run before them."""

    def __call__(self, parser, namespace, value, option_string=None):
        runs = getattr(namespace, "runs", None) or []
        if self.dest == "run_id":
            runs.append(Candidate(value))
        elif not runs:
            parser.error(f"{option_string} must follow a --run")
        else:
            setattr(runs[-1], self.dest, value)
        namespace.runs = runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="use the results of this profile (quick, paper, ...)")
    parser.add_argument("--results", type=Path, help="results folder (default: $RESULTS_DIR or assets/results); "
                                                     "read when no --run is given, or when given explicitly")
    parser.add_argument("--out", type=Path, help="where .onnx files and manifest.json go "
                                                 "(default: $MODELS_DIR or exported_models/)")
    parser.add_argument("--runs-dir", type=Path, help="run folders (default: $RUNS_DIR or runs/)")
    parser.add_argument("--run", dest="run_id", action=_RunOption, metavar="RUN_ID",
                        help="export this run (the tables are then read only with --results)")
    parser.add_argument("--name", action=_RunOption, help="model name for the --run before it")
    parser.add_argument("--slot", action=_RunOption, choices=SLOTS, help="comparison slot for the --run before it")
    parser.add_argument("--exporter", default="dynamo", choices=["dynamo", "legacy"])
    parser.add_argument("--max-mb", type=float, default=MAX_MB, help="size limit per model file (default 10)")
    parser.add_argument("--eval-limit", type=int, help="score at most this many test images through the runtime")
    parser.add_argument("--clean", action="store_true", help="drop manifest entries (and files) not exported now")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--table", dest="tables", action="append",
                        help="only the runs this results table picks (repeatable), e.g. studyB_ssl")
    lab = parser.add_argument_group("the lab family (training/labexport.py)")
    lab.add_argument("--lab", action="store_true",
                     help=f"export the best lab run per split (on validation) from --results (default: "
                          f"$RESULTS_DIR/{LAB_RESULTS}) as <model>_lab-<split>, with the drawing benchmark, the "
                          f"{LAB_MAX_MB:g} MB / {LAB_MAX_MS:g} ms checks and the default-slot rule; --run runs are "
                          "lab models too")
    lab.add_argument("--against", type=Path,
                     help="the manifest folder holding the reproduction's residual_cnn-<split> models the default-slot "
                          "rule compares with (default: $MODELS_DIR or exported_models/)")
    lab.add_argument("--drawbench-per-class", type=int, default=BenchConfig().per_class,
                     help="drawing-benchmark source images per merged class (default: the committed benchmark's)")
    lab.add_argument("--max-ms", type=float, default=LAB_MAX_MS,
                     help="median milliseconds per drawing on one CPU thread (default 5)")
    parser.add_argument("--list", action="store_true",
                        help="print the chosen runs (run id, name, why) and stop: e.g. which run folders to copy back")
    parser.set_defaults(runs=[])


def lab_candidates(args: argparse.Namespace) -> list[Candidate]:
    """The lab run per split chosen on validation (unless only --run is given), then every --run, all as lab models."""
    candidates: list[Candidate] = []
    if not args.runs or args.results is not None:
        picks, messages = lab_picks(args.results or results_dir() / LAB_RESULTS, args.profile)
        for message in messages:
            print(message, file=sys.stderr)
        candidates = [Candidate(p.run_id, p.name, None, p.source) for p in picks]
    for candidate in candidates + args.runs:
        candidate.lab = True
    return candidates + args.runs


def candidates_from_args(args: argparse.Namespace) -> list[Candidate]:
    """The winners of the results tables (unless only --run is given), then every --run; the lab's with --lab."""
    if args.lab:
        return lab_candidates(args)
    candidates: list[Candidate] = []
    if not args.runs or args.results is not None:
        candidates, messages = select_candidates(args.results or results_dir(), args.profile, args.tables)
        for message in messages:
            print(message, file=sys.stderr)
    return candidates + args.runs


def export_options(args: argparse.Namespace) -> ExportOptions:
    """How this command exports; with --lab, the benchmark set and the reproduction's models to compare with."""
    if not args.lab:
        return ExportOptions(args.exporter, args.max_mb, args.eval_limit, progress=not args.quiet)
    checks = LabChecks.build(args.against or models_dir(), args.drawbench_per_class, args.max_ms, not args.quiet)
    return ExportOptions(args.exporter, min(args.max_mb, LAB_MAX_MB), args.eval_limit, not args.quiet, checks)


def run(args: argparse.Namespace) -> int:
    candidates = candidates_from_args(args)
    if not candidates:
        print("nothing to export: no results table names a run and no --run was given", file=sys.stderr)
        return 1
    if args.list:
        print("\n".join(f"{c.run_id}\t{c.name or ''}\t{c.source}" for c in candidates))
        return 0
    out_dir: Path = args.out or models_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    options = export_options(args)
    outcome = export_all(candidates, out_dir, args.runs_dir or runs_dir(), options)
    if not outcome.exported:
        failed = f" ({len(outcome.failed)} failed)" if outcome.failed else ""
        print(f"nothing was exported{failed}", file=sys.stderr)
        return 1
    kept = kept_entries(out_dir, outcome.exported, args.clean)
    settle_slots(outcome.exported + kept)  # the lab's default-slot decisions, either way
    path = Manifest(outcome.exported + kept, outcome.skipped).write(out_dir)
    print(f"wrote {len(outcome.exported)} model(s) to {out_dir}" + (f", kept {len(kept)} earlier" if kept else "")
          + f"; manifest {path}")
    if outcome.failed:
        print(f"FAILED: {', '.join(outcome.failed)} (not written; see above)", file=sys.stderr)
        return 3
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
