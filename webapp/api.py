"""The app's API: named Gradio endpoints (``gr.api``) ``/predict``, ``/models`` and ``/keep``, and plain HTTP routes.

``/predict(image, top_k=5, include_input=True, models="", only="")`` reads one uploaded image file
(``gradio_client.handle_file``) and answers per slot with the model, its top-k, its calibrated ``set`` at
``coverage``, the ``mode`` (``only``: digits or letters restricts every answer) and its latency;
``/models`` lists what the app serves. ``POST /api/predict`` gives the same answer for an image sent as the
request body (curl, any HTTP client), at about two thirds of the server CPU of a Gradio call. The answers
are plain JSON built by ``predict_json`` and ``models_summary``, which the tests also call directly.
``/keep(image, character)`` and ``POST /api/keep?char=X`` (the image as the body) keep a drawing as the character
(``keep_json`` -> ``webapp.keep_store.keep_drawing``) and answer its id; a refusal says why (HTTP: 400 a bad character,
422 nothing drawn, 413 too large, 403 keeping off).
"""

# No ``from __future__ import annotations`` here: gr.api reads the endpoints' type hints at run time
# (the return type through inspect.signature, which would see the string "dict").

import asyncio
import concurrent.futures
import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from recognizer.answers import AnswerSet, ModeError, parse_mode
from recognizer.drawings import MAX_PNG_BYTES
from recognizer.manifest import SLOTS, ModelEntry

from .analysis import analyse
from .analysis_records import MAX_UPLOAD_MB, TOP_K
from .keep_store import KeepRefused, keep_drawing, take_keep
from .limits import RateLimited, client_keys
from .served import ServedModels

MAX_API_MODELS = 8  # models one /predict call may ask for
# How many /predict calls waiting in Gradio's queue are handed over at once (batch=True). Measured with
# benchmarks/app_load.py it saved under 1 ms of server CPU per call (one queue event and thread hop for the
# lot; each image still runs alone), while only an unbatched /predict can take queue=False, whose direct
# route saves about 3 ms: so 1 (no batching) by default.
API_BATCH = 1
MAX_TOP_K = 62  # the most classes a split has
TRAINING_KEYS = ("run_id", "model", "optimizer", "lr", "loss", "epochs", "batch_size", "seed", "device")
RAW_ROUTE = "/api/predict"
KEEP_ROUTE = "/api/keep"
# Calls the app works on at once: the queue's default concurrency (webapp.launch) and the threads that run /predict
# calls skipping the queue (the cores, up to 4). Measured with 50 users on 2 cores: 2 threads 16 ms of server CPU
# per raw call, p95 0.33 s; Starlette's 40 threads 18.5 ms, p95 0.39 s; 1 thread 17 ms, p95 0.87 s.
API_WORKERS = max(1, min(4, os.cpu_count() or 1))
MAX_RAW_BYTES = MAX_UPLOAD_MB * 2**20
NO_BODY = "Send the image file as the request body, e.g. curl --data-binary @drawing.png."
NOT_A_FILE = "Send the image as a file: gradio_client.handle_file(path)."


def predict_json(lab: ServedModels, image: Any, k: int = TOP_K, include_input: bool = True,
                 models: str | list[str] | None = None, only: str | None = None) -> dict:
    """The /predict answer for one image: per slot the model, its top-k, its calibrated ``set`` (characters, best
    first) at ``coverage``, the ``mode`` it answered under (``only``: digits or letters) and its latency; ``agree``.
    ``ModeError`` for an ``only`` that is no mode."""
    mode = parse_mode(only)
    names = _asked_models(models) or lab.slot_defaults()
    k = int(max(1, min(int(k or TOP_K), MAX_TOP_K)))
    analysis = analyse(lab, image, names, k=k, saliency=False, mode=mode)
    results = []
    for i, r in enumerate(analysis.slots):
        item: dict[str, Any] = {"slot": SLOTS[i] if i < len(SLOTS) else f"slot{i + 1}", "model": r.model}
        if r.prediction is not None:
            item["top"] = [{"char": c, "display": d, "probability": round(p, 6)} for c, d, p in r.prediction.top]
            item |= answer_set_json(r.prediction.answer_set, mode)
            item["latency_ms"] = round(r.prediction.latency_ms, 3)
        elif analysis.message is None:
            item["error"] = r.error
        results.append(item)
    return {
        "ok": analysis.message is None and any(r.ok for r in analysis.slots),
        "error": analysis.message,
        "mode": mode,
        "models": results,
        "agree": analysis.agree,
        "together": answer_set_json(analysis.together, mode) if analysis.together else None,
        "input": np.round(analysis.x28, 3).tolist() if include_input and analysis.x28 is not None else None,
    }


def answer_set_json(answer_set: AnswerSet | None, mode: str) -> dict:
    """``set`` (characters, best first; null where the model has no calibrated set), ``set_probabilities``,
    ``coverage`` (the stated level) and ``mode``."""
    if answer_set is None:
        return {"set": None, "set_probabilities": None, "coverage": None, "mode": mode}
    return {"set": answer_set.chars, "set_probabilities": [round(p, 6) for _, p in answer_set.members],
            "coverage": answer_set.level, "mode": mode}


def keep_json(lab: ServedModels, image: bytes | str | None, character: str | None,
              client: tuple[str | None, ...] = ()) -> tuple[dict, int]:  # fmt: skip
    """The /keep answer for one image (bytes, or the path of an uploaded file) and its HTTP status; ``client``
    (address, session) is charged one keep before any work."""
    try:
        if lab.keep_off or lab.store is None:  # refused before any work
            keep_drawing(lab, None, None, character)
        take_keep(lab, client)
        data = Path(image).read_bytes() if isinstance(image, str) else image
        if data is not None and len(data) > MAX_PNG_BYTES:
            raise KeepRefused(f"Not kept: the image is over {MAX_PNG_BYTES / 1e6:g} MB.", 413)
        analysis = analyse(lab, data, lab.slot_defaults(), saliency=False) if data else None
        drawing_id = keep_drawing(lab, data, analysis, character)
    except KeepRefused as err:
        return {"ok": False, "id": None, "error": err.message, **_retry(err.retry_after)}, err.status
    except OSError:
        return {"ok": False, "id": None, "error": "The uploaded file cannot be read."}, 422
    return {"ok": True, "id": drawing_id, "error": None}, 200


def _asked_models(models: str | list[str] | None) -> list[str | None]:
    """The model names a call asks for (comma-separated or a list), at most MAX_API_MODELS; [] for the slots."""
    if not models:
        return []
    wanted = [n.strip() for n in (models.split(",") if isinstance(models, str) else models) if n.strip()]
    return wanted[:MAX_API_MODELS]


def training_summary(e: ModelEntry) -> dict:
    """The run's settings /models shows (``TRAINING_KEYS``, those the entry's training record holds)."""
    training = e.training.to_dict()
    return {k: training[k] for k in TRAINING_KEYS if k in training}


def models_summary(lab: ServedModels) -> dict:
    """The /models answer: the manifest's models, the slots, and what is unavailable or skipped, with why."""
    models = [{
        "name": e.name, "family": e.family, "split": e.split, "protocol": e.protocol, "profile": e.profile,
        "slot": e.slot, "classes": len(e.labels), "labels": e.displays, "metrics": e.metrics.to_dict(),
        "training": training_summary(e),
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
    """The endpoints' functions, bound to the lab; their signatures and docstrings are the API's documentation.

    Calls that skip the queue run on ``workers`` threads of their own, in arrival order: Gradio's direct route
    and Starlette would otherwise run each call on its thread pool of 40, and 40 threads taking turns at the
    GIL over numpy's small steps cost 2-4 ms more CPU per call and a longer tail (benchmarks/app_load.py).
    """

    def __init__(self, lab: ServedModels, workers: int = API_WORKERS) -> None:
        self.lab = lab
        self.pool = concurrent.futures.ThreadPoolExecutor(max(1, workers), thread_name_prefix="predict")

    def predict(self, image: gr.FileData | None, top_k: int = TOP_K, include_input: bool = True,
                models: str = "", only: str = "") -> dict:
        """Read one image file: for each slot the model, its top-k characters with probabilities, its calibrated
        set (set, coverage), the mode and its latency, plus whether the models agree. only='digits' or 'letters'
        keeps every answer to that kind. A bad image or mode gives ok=false and the reason in error."""
        path = uploaded_path(image)
        if path is None and image is not None:
            return _refusal(NOT_A_FILE)
        try:
            return predict_json(self.lab, path, k=top_k, include_input=bool(include_input), models=models, only=only)
        except ModeError as err:
            return _refusal(str(err))

    async def predict_in_pool(self, image: gr.FileData | None, top_k: int = TOP_K, include_input: bool = True,
                              models: str = "", only: str = "") -> dict:
        """Read one image file: for each slot the model, its top-k characters with probabilities, its calibrated
        set (set, coverage), the mode and its latency, plus whether the models agree. only='digits' or 'letters'
        keeps every answer to that kind. A bad image or mode gives ok=false and the reason in error."""
        return await self._in_pool(self.predict, image, top_k, include_input, models, only)

    async def predict_raw(self, request: Request) -> Response:
        """``POST /api/predict``: the image file itself as the request body, the /predict answer as JSON.

        One request per drawing, with no upload step and none of Gradio's per-call work (session state, file
        records, events): Gradio alone costs about 7 ms of server CPU per call on the 2-core machine
        (``benchmarks/app_load.py --floor``). Query parameters as /predict's (top_k, include_input, models, only).
        Status 200 with the answer; 422 when the image cannot be read or holds no character (the answer says
        why); 400 for an empty body or a bad parameter; 413 over the size limit; 429 past the client's rate
        (``Retry-After`` says when to try again).
        """
        try:
            self.lab.limits.predicts.take(*client_keys(request))
        except RateLimited as err:
            return JSONResponse(_refusal(err.message) | _retry(err.retry_after), status_code=429,
                                headers={"Retry-After": str(err.retry_after)})  # fmt: skip
        body = await _read_limited(request, MAX_RAW_BYTES)
        if body is None:
            return JSONResponse(_refusal(f"The image is over {MAX_UPLOAD_MB} MB."), status_code=413)
        if not body:
            return JSONResponse(_refusal(NO_BODY), status_code=400)
        query = request.query_params
        try:
            k = int(query.get("top_k", TOP_K))
        except ValueError:
            return JSONResponse(_refusal("top_k must be a whole number."), status_code=400)
        include_input = query.get("include_input", "true").lower() not in ("0", "false", "no")
        try:
            only = parse_mode(query.get("only", ""))
        except ModeError as err:
            return JSONResponse(_refusal(str(err)), status_code=400)
        answer = await self._in_pool(predict_json, self.lab, body, k, include_input, query.get("models", ""), only)
        return JSONResponse(answer, status_code=200 if answer["ok"] else 422)

    async def _in_pool(self, work: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(work, *args))

    def keep(self, image: gr.FileData | None, character: str = "", request: gr.Request = None) -> dict:
        """Keep one drawing (an image file) as the character the person meant: one of the 62 EMNIST characters,
        or 'O/o' to leave the case of a merged letter open. Returns ok, the kept drawing's id, or error (why not)."""
        path = uploaded_path(image)
        if path is None:
            return {"ok": False, "id": None, "error": NOT_A_FILE if image is not None else "Send the image file."}
        return keep_json(self.lab, path, character, client_keys(request))[0]

    async def keep_raw(self, request: Request) -> Response:
        """``POST /api/keep?char=X``: the image file as the body; 200 with the id, else 4xx and the reason (429 past
        the client's rate, with ``Retry-After``; 507 when the store is full)."""
        try:
            if not self.lab.keep_off and self.lab.store is not None:  # keeping off: keep_json says so below
                take_keep(self.lab, client_keys(request))
        except KeepRefused as err:  # refused before the body is read
            return JSONResponse({"ok": False, "id": None, "error": err.message, **_retry(err.retry_after)},
                                status_code=429, headers={"Retry-After": str(err.retry_after)})  # fmt: skip
        body = await _read_limited(request, MAX_PNG_BYTES)
        if body is None:
            error = f"Not kept: the image is over {MAX_PNG_BYTES / 1e6:g} MB."
            return JSONResponse({"ok": False, "id": None, "error": error}, status_code=413)
        answer, status = await self._in_pool(
            lambda: keep_json(self.lab, body or None, request.query_params.get("char", "")))
        return JSONResponse(answer, status_code=status)

    def models(self) -> dict:
        """The models the app serves (metrics, training settings, slots) and those unavailable, with why."""
        return models_summary(self.lab)


def _refusal(message: str) -> dict:
    return {"ok": False, "error": message, "models": [], "agree": None, "input": None}


def _retry(seconds: int | None) -> dict:
    """``retry_after`` in a 429's body, beside its ``Retry-After`` header."""
    return {"retry_after": seconds} if seconds else {}


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The request's body, or None as soon as it passes ``limit`` bytes (nothing more is read)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def batched(predict: Callable[..., dict]) -> Callable[..., tuple[list[dict]]]:
    """``predict`` over a batch from Gradio's queue: lists in (one per parameter), a tuple of one list out.

    It carries ``predict``'s signature, type hints and docstring (functools.update_wrapper), which is what
    gr.api documents: a client still sends one image per call and Gradio gathers the calls into batches.
    """
    def predict_batch(*columns: list[Any]) -> tuple[list[dict]]:
        return ([predict(*call) for call in zip(*columns, strict=True)],)

    return functools.update_wrapper(predict_batch, predict)


def raw_routes(endpoints: Endpoints) -> list[APIRoute]:
    """``POST /api/predict`` and ``POST /api/keep`` as routes the server's app is built with (``webapp.launch``
    hands them to Gradio's FastAPI app before it serves), so they answer from the first request."""
    return [APIRoute(RAW_ROUTE, endpoints.predict_raw, methods=["POST"], include_in_schema=False),
            APIRoute(KEEP_ROUTE, endpoints.keep_raw, methods=["POST"], include_in_schema=False)]  # fmt: skip


def add_api(lab: ServedModels, batch: int = API_BATCH) -> Endpoints:
    """Declare /predict and /models on the Blocks being built; ``batch`` > 1 lets the queue batch /predict.
    Returns the endpoints, whose ``predict_raw`` and ``keep_raw`` ``raw_routes`` serves.

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
        gr.api(endpoints.predict_in_pool, api_name="predict", queue=False)
    gr.api(endpoints.models, api_name="models")
    gr.api(endpoints.keep, api_name="keep")
    return endpoints
