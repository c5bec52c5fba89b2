"""One input through the lab's models: what the draw tab and the /predict endpoint both show.

``analyse`` reads a canvas value, an uploaded file or an array (``prepare``: the upload limit, a filled
canvas, then ``recognizer.preprocess.to_model_input``) and asks each slot's model (``run_slot``).
Anything a person can hand the app either gives a prediction or a message saying what is wrong; no
exception reaches the page. No Gradio here, so all of it is testable without a server.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from recognizer.answers import in_mode, shape, together_set
from recognizer.manifest import SLOTS
from recognizer.preprocess import FILLED, BadImage, InputError, NothingDrawn, to_model_input
from recognizer.saliency import overlay, segment_map, stroke_segments

from .analysis_records import EMPTY_MESSAGE, MAX_UPLOAD_MB, PREVIEW_SIZE, TOP_K, Analysis, SlotResult
from .canvas import CanvasDrawing
from .served import ServedModels

log = logging.getLogger(__name__)

# The slots' saliency maps are computed at once, one thread each: ONNX Runtime releases the GIL while a
# single-threaded session runs, so the three batches use as many cores as there are (measured by
# benchmarks/app_latency.py). One pool for the whole app bounds the threads however many requests come.
_SALIENCY_POOL = ThreadPoolExecutor(max_workers=len(SLOTS), thread_name_prefix="saliency")


# ---------------------------------------------------------------------------------------------
# Reading inputs


def prepare(image: Any, max_upload_mb: float = MAX_UPLOAD_MB) -> tuple[np.ndarray | None, str | None, str | None]:
    """(x28, message, kind): the model input, or a message for the person and its kind ("empty" or "bad")."""
    is_path = isinstance(image, (str, os.PathLike))
    name = Path(image).name if is_path else "the image" if isinstance(image, (bytes, bytearray)) else None
    if is_path and (refused := _refuse_upload(Path(image), max_upload_mb)):
        return None, refused, "bad"
    if canvas_ink(image) > FILLED:
        return None, f"{EMPTY_MESSAGE} (the canvas is filled: clear it and draw one character)", "empty"
    try:
        return to_model_input(image.composite if isinstance(image, CanvasDrawing) else image), None, None
    except NothingDrawn as err:
        if name is None:  # the canvas: empty, a dot, or filled
            detail = f" ({err.detail})" if err.detail and "blank" not in err.detail else ""
            return None, EMPTY_MESSAGE + detail, "empty"
        return None, f"No character found in {name}: {err.detail or 'the image is blank'}.", "empty"
    except BadImage as err:  # the message names the file, never the server's folder
        text = str(err).replace(repr(str(image)), name).replace(str(image), name) if is_path else str(err)
        return None, text, "bad"
    except InputError as err:
        return None, str(err), "bad"
    except Exception as err:  # a reader bug must not reach the page: say so, log it
        log.exception("preprocessing failed")
        return None, f"This input could not be read ({type(err).__name__}).", "bad"


def _refuse_upload(path: Path, max_upload_mb: float) -> str | None:
    """Why an uploaded file is not even decoded (unreadable, or too many bytes), else None."""
    try:
        size = path.stat().st_size
    except OSError:
        return f"Cannot read the uploaded file {path.name}."
    if size > max_upload_mb * 1e6:
        return (f"The file is too large ({size / 1e6:.1f} MB; the limit is {max_upload_mb:g} MB). "
                "A photo of one character needs far less: crop it or save it smaller.")
    return None


def canvas_ink(value: Any) -> float:
    """Fraction of a drawing's canvas covered by strokes: a ``CanvasDrawing``, or a Sketchpad value's layers
    (0 for anything else).

    The layers' alpha says exactly where the person drew, which the flattened picture cannot: a canvas
    inked nearly everywhere would otherwise read as its few unpainted spots, white on black.
    """
    if isinstance(value, CanvasDrawing):
        layers = [value.layer]
    elif isinstance(value, Mapping):  # a Sketchpad value (the tests and the drawing benchmark make them)
        layers = value.get("layers") or []
    else:
        return 0.0
    covered = 0.0
    for layer in layers:
        if isinstance(layer, np.ndarray) and layer.ndim == 3 and layer.shape[-1] == 4 and layer.size:
            covered = max(covered, float((layer[..., 3] > 127).mean()))
    return covered


# ---------------------------------------------------------------------------------------------
# Asking the models


def analyse(lab: ServedModels, image: Any, names: list[str | None], k: int = TOP_K, saliency: bool = True,
            mode: str = "anything") -> Analysis:
    """Read any input and run every slot on it, answering under ``mode``."""
    x28, message, kind = prepare(image)
    if x28 is None:
        return Analysis(None, message, kind, [SlotResult(n) for n in names], mode, lab.level)
    return analyse_x28(lab, x28, names, k, saliency, mode)


def analyse_x28(lab: ServedModels, x28: np.ndarray | None, names: list[str | None], k: int = TOP_K,
                saliency: bool = True, mode: str = "anything") -> Analysis:
    """Run every slot on a prepared 28x28 input."""
    if x28 is None:
        return Analysis(None, EMPTY_MESSAGE, "empty", [SlotResult(n) for n in names], mode, lab.level)
    if not lab.models:
        return Analysis(x28, f"No models to ask: {lab.problem or 'none loaded'}.", "no_models",
                        [SlotResult(n) for n in names], mode, lab.level)
    slots = [run_slot(lab, name, x28, k, saliency, mode) for name in names]
    answered = [s for s in slots if s.prediction is not None]
    both = together_set([lab.recognizer.entry(s.model) for s in answered], [s.prediction for s in answered], mode,
                        lab.level) if len(answered) == len(slots) else None  # fmt: skip
    return Analysis(x28, None, None, slots, mode, lab.level, both)


def run_slot(lab: ServedModels, name: str | None, x28: np.ndarray, k: int = TOP_K, saliency: bool = True,
             mode: str = "anything") -> SlotResult:
    """One model's top-k and set under ``mode`` (and saliency map); a missing or failing model, or one that reads
    nothing of the mode, gives its slot an error instead."""
    if not name:
        return SlotResult(None, error="No model in this slot.")
    if not lab.serves(name):
        reason = lab.unavailable.get(name, "not in the manifest")
        return SlotResult(name, error=f"{name} is unavailable: {reason}")
    try:
        prediction = lab.recognizer.predict(name, x28, k=k)
        entry = lab.recognizer.entry(name)
        if not any(in_mode(c, mode) for c in entry.labels):
            return SlotResult(name, error=f"{name} reads no {mode}.")
        prediction = shape(entry, prediction, mode, lab.level, k)
        heat = saliency_map(lab, name, x28) if saliency else None
    except Exception as err:  # a model failing at run time takes only its slot down
        log.exception("model %s failed", name)
        return SlotResult(name, error=f"{name} failed: {type(err).__name__}: {err}")
    return SlotResult(name, prediction, heat)


def saliency_map(lab: ServedModels, name: str, x28: np.ndarray, segments: np.ndarray | None = None) -> np.ndarray:
    """Where the model looked: the stroke-segment occlusion map over the enlarged input, as an RGB picture.

    ``segments`` (``stroke_segments(x28)``) can be shared between slots: they depend on the drawing only.
    """
    heat = segment_map(lab.recognizer, name, x28, segments=segments)
    return overlay(x28, heat, size=PREVIEW_SIZE)


def saliency_maps(lab: ServedModels, x28: np.ndarray | None, names: list[str | None]) -> list[np.ndarray | None]:
    """One saliency picture per slot (None where there is no input or no working model), the slots in parallel."""
    if x28 is None:
        return [None] * len(names)
    segments = stroke_segments(x28)  # the same strokes blanked for every model, so the maps compare
    jobs = [_SALIENCY_POOL.submit(saliency_map, lab, name, x28, segments) if lab.serves(name) else None
            for name in names]
    maps: list[np.ndarray | None] = []
    for name, job in zip(names, jobs, strict=True):
        try:
            maps.append(None if job is None else job.result())
        except Exception:  # a failing model loses its heat map only
            log.exception("saliency of %s failed", name)
            maps.append(None)
    return maps
