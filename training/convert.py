"""Converting one model to ONNX and checking the file: the graph (``to_onnx``, dynamo or the legacy exporter, with
float16 weights when the size limit asks for them), onnx.checker and the size limit (``checked_bytes``), parity of
ONNX Runtime with torch (``check_parity``), the test part scored through the app's runtime (``evaluate_exported``)
and the final file with its manifest entry in its metadata (``write_model``), with the trained torch weights beside
it (``write_torch_weights``). ``training/export.py`` calls these for every candidate it exports.

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

import dataclasses
import json
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import safetensors.torch
import torch
from onnx import TensorProto, numpy_helper
from torch import nn
from tqdm import tqdm

from recognizer.files import sha256_bytes, write_atomic
from recognizer.inference import Recognizer
from recognizer.manifest import Manifest, ModelEntry
from training.data import SplitData, load_split

PARITY_IMAGES = 1000
PARITY_TOLERANCE = 1e-4  # largest |logit difference| for float32 weights
FP16_RELATIVE_TOLERANCE = 1e-2  # for float16 weights, as a fraction of the largest |logit|
FP16_MIN_AGREEMENT = 0.99
FP16_MAX_ACCURACY_GAP = 0.005
MAX_MB = 10.0  # the size limit of one model file (the drawing recipe's models are held to it too)
METADATA_KEY = "emnist_lab.model"  # metadata_props key holding the manifest entry (minus sha256)
PROBE_IMAGES = 64  # the final file (with metadata) must compute exactly what the checked one did on these


class ExportError(RuntimeError):
    """A model could not be exported faithfully (checker, parity, size); the message says why."""


class SkipRun(RuntimeError):
    """A run cannot be exported (folder missing, over the size limit); not an error of the export."""


# ---------------------------------------------------------------------------------------------
# The graph


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


def stage_model(entry: ModelEntry, staged: bytes, folder: Path) -> None:
    """The staged file alone under a one-entry manifest in ``folder``: the one way every runtime check (the export's
    test score, a recipe model's drawing benchmark and latency, a kept fine-tune's figures) opens a model not yet
    written, as the app would open it."""
    write_atomic(folder / entry.file, staged)
    Manifest([dataclasses.replace(entry, sha256=sha256_bytes(staged))]).write(folder)


def staged_recognizer(entry: ModelEntry, staged: bytes, folder: Path) -> Recognizer:
    """A runtime on the staged file alone, as the app would open it."""
    stage_model(entry, staged, folder)
    return Recognizer(folder, intra_op_num_threads=1)


# ---------------------------------------------------------------------------------------------
# Size, checker, the final file


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


def write_torch_weights(model: nn.Module, entry: ModelEntry, out_dir: Path) -> None:
    """The trained torch weights beside the ONNX file (``<name>.safetensors``: float32, BatchNorm unfolded), named
    with their sha256 in ``entry.export``, so a fine-tune starts from them rather than from the folded graph."""
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    data = safetensors.torch.save(state, metadata={"model": entry.name, "family": entry.family})
    name = f"{entry.name}.safetensors"
    write_atomic(out_dir / name, data)
    entry.export.torch_weights, entry.export.torch_weights_sha256 = name, sha256_bytes(data)


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
