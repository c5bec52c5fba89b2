"""The files the page needs to answer a drawing itself, served as plain routes, and whether it can.

    GET /page/config.json       what the page reads first: enabled, the reason when not, the runtime, modules, slots
    GET /page/ort/<file>        onnxruntime-web's single-threaded WebAssembly build (ORT_FILES), from node_modules
    GET /page/js/<file>         the page's ES modules in webapp/static/ (PAGE_MODULES)
    GET /page/models/<file>     the int8 copies of the three default slot models (exported_models/page/)

Only the files named here are served: each route looks its name up in a fixed table built at start, never joins a
path from the request. The URLs in the configuration are relative (no leading slash), so a proxy's root path works:
the page resolves them against its own address (``new URL(url, document.baseURI)``). The ES module build of the
runtime finds its two sibling files (the ``.mjs`` factory and the ``.wasm``) next to its own URL by itself; a page
that sets ``ort.env.wasm.wasmPaths`` to ``runtime.wasm`` resolves it first (onnxruntime-web would import a relative
prefix against its own URL, page/ort/page/ort/...).

A page model is served only as the served model's own copy: its manifest entry (exported_models/page/manifest.json,
written by training/page_models.py) names the served file's sha256 (``source_sha256``) and its own, and both must
match. Anything missing or not matching turns the page's inference off with the reason (``PageFiles.reason``); the
server still answers every drawing, as it does without the page.

Caching: ``Cache-Control: no-cache`` with a strong ETag (the content's sha256). The URLs carry no version, so a long
max-age would keep a stale model or module after the server is updated; revalidation costs one request per file and
a 304 with no body. Gzip when the request accepts it: each file is compressed once, on its first such request, and
kept in memory (``ServedFile``).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import threading
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from recognizer.files import sha256_bytes
from recognizer.manifest import SLOTS, Manifest, ManifestError, ModelEntry

from .analysis_records import EMPTY_MESSAGE
from .page_config import slot_config
from .served import ServedModels

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_DIR = ROOT / "node_modules" / "onnxruntime-web" / "dist"  # read at call time: tests point it elsewhere
STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE_DIR = "page"  # the page models' folder inside the served models' folder
ORT_MODULE = "ort.wasm.min.mjs"  # the runtime as an ES module: WebAssembly only, no WebGPU/WebNN
ORT_FILES = (ORT_MODULE, "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
PAGE_MODULES = ("preprocess.js", "inference.js", "labels.js", "answers.js", "words.js", "page.js")
CONFIG_ROUTE = "/page/config.json"
FILE_ROUTE = "/page/{group}/{name}"
OFF = "turned off by the server (--no-browser-inference)"
NO_RUNTIME = "onnxruntime-web is not installed on the server (run npm ci, or make run)"
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
               ".wasm": "application/wasm", ".onnx": "application/octet-stream", ".json": "application/json"}
CACHE_CONTROL = "no-cache"  # revalidate every time (ETag): the URLs carry no version
GZIP_LEVEL = 6  # a web server's usual setting


class ServedFile:
    """One file's bytes (read on first use, or given), its ETag and its gzip form (made on first use), kept: a file
    changed on disk after that is not served (the models too are the ones opened at start)."""

    def __init__(self, path: Path | None = None, data: bytes | None = None, media_type: str = "") -> None:
        self.path, self._data = path, data
        self.media_type = media_type or MEDIA_TYPES.get((path or Path()).suffix, "application/octet-stream")
        self._etag: str | None = None
        self._gzip: bytes | None = None
        self._lock = threading.Lock()  # one reading and one compression per file, however many ask at once

    def data(self) -> bytes:
        with self._lock:
            if self._data is None:
                self._data = self.path.read_bytes()
            return self._data

    def etag(self) -> str:
        """A strong ETag: the first 32 hex digits of the content's sha256, quoted."""
        if self._etag is None:
            self._etag = f'"{sha256_bytes(self.data())[:32]}"'
        return self._etag

    def gzipped(self) -> bytes:
        data = self.data()
        with self._lock:
            if self._gzip is None:
                self._gzip = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
            return self._gzip


@dataclasses.dataclass
class PageFiles:
    """What the page may load (``files``: URL path under /page/ -> file) and whether it can answer: ``enabled``,
    ``reason`` (None when enabled) and ``config`` (what /page/config.json answers)."""

    enabled: bool
    reason: str | None
    config: dict[str, Any]
    files: dict[str, ServedFile]

    def routes(self) -> list[APIRoute]:
        """/page/config.json and /page/<group>/<file>, for the server's app (``webapp.demo.launch``)."""
        config = ServedFile(data=json.dumps(self.config, indent=1).encode(), media_type=MEDIA_TYPES[".json"])

        def page_config(request: Request) -> Response:
            return respond(config, request)

        def page_file(group: str, name: str, request: Request) -> Response:
            file = self.files.get(f"{group}/{name}")  # the whitelist: nothing else is ever read
            return respond(file, request) if file else Response("Not found", status_code=404, media_type="text/plain")

        return [APIRoute(CONFIG_ROUTE, page_config, methods=["GET", "HEAD"], include_in_schema=False),
                APIRoute(FILE_ROUTE, page_file, methods=["GET", "HEAD"], include_in_schema=False)]  # fmt: skip


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header takes gzip: named (or ``*``) with a q above 0."""
    for part in header.lower().split(","):
        coding, *params = (p.strip() for p in part.split(";"))
        if coding in ("gzip", "*"):
            q = next((p[2:] for p in params if p.startswith("q=")), "1")
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


def respond(file: ServedFile, request: Request) -> Response:
    """The file, gzip-compressed when the request takes it; 304 when the request already holds this version (its
    ETag, plain or gzip's). HEAD: the headers only."""
    zipped = accepts_gzip(request.headers.get("accept-encoding", ""))
    etag = file.etag()
    tag = etag[:-1] + '-gz"' if zipped else etag
    headers = {"ETag": tag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding",
               "X-Content-Type-Options": "nosniff"}  # fmt: skip
    held = [t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")]
    if "*" in held or etag in held or tag in held:
        return Response(status_code=304, headers=headers)
    if zipped:
        headers["Content-Encoding"] = "gzip"
    body = file.gzipped() if zipped else file.data()
    return Response(body if request.method != "HEAD" else b"", media_type=file.media_type,
                    headers=headers | {"Content-Length": str(len(body))})  # fmt: skip


def page_files(lab: ServedModels, enabled: bool = True, runtime_dir: Path | None = None,
               static_dir: Path | None = None) -> PageFiles:
    """The page's files and configuration for the served models. ``enabled=False``: the server's choice
    (--no-browser-inference). ``runtime_dir`` (default ``RUNTIME_DIR``) and ``static_dir`` (``STATIC_DIR``) are
    where onnxruntime-web's files and the page's modules are."""
    runtime_dir, static_dir = Path(runtime_dir or RUNTIME_DIR), Path(static_dir or STATIC_DIR)
    files = {f"ort/{n}": ServedFile(runtime_dir / n) for n in ORT_FILES if (runtime_dir / n).is_file()}
    files |= {f"js/{n}": ServedFile(static_dir / n) for n in PAGE_MODULES if (static_dir / n).is_file()}
    slots, problems = page_slots(lab)
    for slot in slots:  # the copies' bytes as read and checked, served as they are
        data = slot.pop("data")
        if data is not None:
            files[slot["file"]] = ServedFile(data=data, media_type=MEDIA_TYPES[".onnx"])
    if not enabled:
        problems.insert(0, OFF)
    if len(ORT_FILES) > sum(f"ort/{n}" in files for n in ORT_FILES):
        problems.append(NO_RUNTIME)
    problems += [f"the page's module {n} is missing from the server" for n in PAGE_MODULES if f"js/{n}" not in files]
    config = {
        "enabled": not problems, "reason": "; ".join(problems) or None, "level": lab.level,
        "empty_message": EMPTY_MESSAGE,  # what the page says with nothing to read, as the server says it
        "runtime": {"module": f"page/ort/{ORT_MODULE}", "wasm": "page/ort/", "version": runtime_version(runtime_dir)},
        "modules": {Path(n).stem: f"page/js/{n}" for n in PAGE_MODULES},
        "slots": [s | {"file": f"page/{s['file']}" if s["file"] else None} for s in slots],
    }  # fmt: skip
    return PageFiles(not problems, config["reason"], config, files)


def runtime_version(runtime_dir: Path) -> str | None:
    """The installed onnxruntime-web's version (its package.json beside dist/), None when unreadable."""
    try:
        return str(json.loads((runtime_dir.parent / "package.json").read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def page_slots(lab: ServedModels) -> tuple[list[dict[str, Any]], list[str]]:
    """Per default slot: its configuration (``slot_config`` of the served model's entry) with the page copy's
    ``file`` (``models/<file>``, None when refused), ``sha256``, ``problem`` and the copy's bytes (``data``); and
    every problem in words."""
    page_dir = lab.models_dir / PAGE_DIR
    try:
        copies = {e.name: e for e in Manifest.read(page_dir).models}
        missing = None
    except ManifestError:
        copies, missing = {}, f"no page models ({PAGE_DIR}/manifest.json missing or unreadable: run python -m " \
                               "training.page_models)"
    slots, problems = [], [missing] if missing else []
    for slot, name in zip(SLOTS, lab.slot_defaults(), strict=True):
        served = lab.entry(name) if lab.serves(name) else None
        if served is None:
            problems.append(f"no served model for the {slot} slot")
            continue
        data, problem = page_copy(page_dir, served, copies.get(served.name)) if not missing else (None, missing)
        if problem and not missing:
            problems.append(problem)
        slots.append({"slot": slot, "file": f"models/{copies[served.name].file}" if data else None,
                      "sha256": copies[served.name].sha256 if data else None, "problem": problem, "data": data,
                      **slot_config(served)})  # fmt: skip
    return slots, problems


def page_copy(page_dir: Path, served: ModelEntry, copy: ModelEntry | None) -> tuple[bytes | None, str | None]:
    """The page copy's bytes when it is the served model's own copy, else None and why."""
    if copy is None:
        return None, f"no page copy of {served.name} in {PAGE_DIR}/manifest.json"
    source = copy.extra.get("source_sha256")
    if source is None:
        return None, (f"the page copy of {served.name} does not say which file it was made from (no source_sha256): "
                      "rerun python -m training.page_models")
    if source != served.sha256:
        return None, (f"the page copy of {served.name} was made from another file (source sha256 {source[:12]}, "
                      f"served {served.sha256[:12]}): rerun python -m training.page_models")
    try:
        data = (page_dir / Path(copy.file).name).read_bytes()
    except OSError:
        return None, f"{PAGE_DIR}/{copy.file} is missing"
    if sha256_bytes(data) != copy.sha256:
        return None, f"{PAGE_DIR}/{copy.file} does not match its sha256 in {PAGE_DIR}/manifest.json"
    return data, None
