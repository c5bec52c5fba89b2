"""The app's two named API endpoints, both declared with ``gr.api``: ``/predict`` and ``/models``.

``/predict(image, top_k=5, include_input=True, models="")`` reads one uploaded image file
(``gradio_client.handle_file``) and answers per slot with the model, its top-k and its latency;
``/models`` lists what the app serves. The answers are plain JSON built by ``predict_json`` and
``models_summary``, which the tests also call directly.
"""

# No ``from __future__ import annotations`` here: gr.api reads the endpoints' type hints at run time
# (the return type through inspect.signature, which would see the string "dict").

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import gradio as gr
import numpy as np

from recognizer.manifest import SLOTS

from .analysis import TOP_K, analyse
from .lab import Lab

MAX_API_MODELS = 8  # models one /predict call may ask for
# How many /predict calls waiting in Gradio's queue are handed over at once (batch=True). Measured with
# benchmarks/app_load.py it saved under 1 ms of server CPU per call (one queue event and thread hop for the
# lot; each image still runs alone), while only an unbatched /predict can take queue=False, whose direct
# route saves about 3 ms: so 1 (no batching) by default.
API_BATCH = 1
MAX_TOP_K = 62  # the most classes a split has
TRAINING_KEYS = ("run_id", "model", "optimizer", "lr", "loss", "epochs", "batch_size", "seed", "device")
NOT_A_FILE = "Send the image as a file: gradio_client.handle_file(path)."


def predict_json(lab: Lab, image: Any, k: int = TOP_K, include_input: bool = True,
                 models: str | list[str] | None = None) -> dict:
    """The /predict answer for one image: per slot the model, its top-k and its latency, and ``agree``."""
    names = _asked_models(models) or lab.slot_defaults()
    k = int(max(1, min(int(k or TOP_K), MAX_TOP_K)))
    analysis = analyse(lab, image, names, k=k, saliency=False)
    results = []
    for i, r in enumerate(analysis.slots):
        item: dict[str, Any] = {"slot": SLOTS[i] if i < len(SLOTS) else f"slot{i + 1}", "model": r.model}
        if r.prediction is not None:
            item["top"] = [{"char": c, "display": d, "probability": round(p, 6)} for c, d, p in r.prediction.top]
            item["latency_ms"] = round(r.prediction.latency_ms, 3)
        elif analysis.message is None:
            item["error"] = r.error
        results.append(item)
    return {
        "ok": analysis.message is None and any(r.ok for r in analysis.slots),
        "error": analysis.message,
        "models": results,
        "agree": analysis.agree,
        "input": np.round(analysis.x28, 3).tolist() if include_input and analysis.x28 is not None else None,
    }


def _asked_models(models: str | list[str] | None) -> list[str | None]:
    """The model names a call asks for (comma-separated or a list), at most MAX_API_MODELS; [] for the slots."""
    if not models:
        return []
    wanted = [n.strip() for n in (models.split(",") if isinstance(models, str) else models) if n.strip()]
    return wanted[:MAX_API_MODELS]


def models_summary(lab: Lab) -> dict:
    """The /models answer: the manifest's models, the slots, and what is unavailable or skipped, with why."""
    models = [{
        "name": e.name, "family": e.family, "split": e.split, "protocol": e.protocol, "profile": e.profile,
        "slot": e.slot, "classes": len(e.labels), "labels": e.displays, "metrics": e.metrics,
        "training": {k: e.training[k] for k in TRAINING_KEYS if k in e.training},
        "providers": lab.recognizer.providers.get(e.name, []),
    } for e in lab.models]  # fmt: skip
    return {
        "models_dir": str(lab.models_dir),
        "problem": lab.problem,
        "slots": dict(zip(SLOTS, lab.slot_defaults(), strict=True)),
        "models": models,
        "unavailable": [{"name": n, "reason": r} for n, r in lab.unavailable.items()],
        "skipped": [dataclasses.asdict(s) for s in lab.skipped],
    }


def uploaded_path(image: Any) -> str | None:
    """The server-side path of a file the client uploaded; None for anything else.

    Gradio has already checked that an uploaded file lies in its upload folder; a bare string could
    name any file on the server, so it is not read.
    """
    path = image.get("path") if isinstance(image, dict) else getattr(image, "path", None)
    return path if isinstance(path, str) and path else None


class Endpoints:
    """The endpoints' functions, bound to the lab; their signatures and docstrings are the API's documentation."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def predict(self, image: gr.FileData | None, top_k: int = TOP_K, include_input: bool = True,
                models: str = "") -> dict:
        """Read one image file: for each slot the model, its top-k characters with probabilities and its
        latency, plus whether the models agree. A bad image gives ok=false and the reason in error."""
        path = uploaded_path(image)
        if path is None and image is not None:
            return {"ok": False, "error": NOT_A_FILE, "models": [], "agree": None, "input": None}
        return predict_json(self.lab, path, k=top_k, include_input=bool(include_input), models=models)

    def models(self) -> dict:
        """The models the app serves (metrics, training settings, slots) and those unavailable, with why."""
        return models_summary(self.lab)


def batched(predict: Callable[..., dict]) -> Callable[..., tuple[list[dict]]]:
    """``predict`` over a batch from Gradio's queue: lists in (one per parameter), a tuple of one list out.

    It carries ``predict``'s signature, type hints and docstring (functools.update_wrapper), which is what
    gr.api documents: a client still sends one image per call and Gradio gathers the calls into batches.
    """
    def predict_batch(*columns: list[Any]) -> tuple[list[dict]]:
        return ([predict(*call) for call in zip(*columns, strict=True)],)

    return functools.update_wrapper(predict_batch, predict)


def add_api(lab: Lab, batch: int = API_BATCH) -> None:
    """Declare /predict and /models on the Blocks being built; ``batch`` > 1 lets the queue batch /predict.

    Unbatched, /predict sets queue=False, which in Gradio 6 only opens ``POST /gradio_api/run/predict``: one
    request with the answer in its body, about half the server CPU of the queue's POST + SSE pair.
    gradio_client and ``/gradio_api/call/predict`` still go through the queue (routes.py: queue_join_helper
    does not read fn.queue), where concurrency_limit and max_size apply. A batched /predict stays queued:
    Gradio's direct route hands a batch function with several inputs a malformed batch.
    """
    endpoints = Endpoints(lab)
    if batch > 1:
        gr.api(batched(endpoints.predict), api_name="predict", batch=True, max_batch_size=batch)
    else:
        gr.api(endpoints.predict, api_name="predict", queue=False)
    gr.api(endpoints.models, api_name="models")
