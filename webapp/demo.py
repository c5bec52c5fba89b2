"""The whole page: ``build_demo`` lays out the tabs around one ``ServedModels``; ``launch`` serves it.

Every tab has its own module and builder (draw, kept_drawings_tab, embeddings_tab, results, models_tab), and the
Draw tab's correction row its own (correction_row, built here and placed by the Draw tab); ``webapp.api``
declares the API endpoints. The kept-drawings store opens here, once (``ServedModels.open_drawings``). The
current drawing's model input lives in one ``gr.State`` that the draw tab writes and the embeddings tab reads.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import gradio as gr

from recognizer.conformal import DEFAULT_LEVEL

from .analysis_records import MAX_UPLOAD_MB
from .api import API_BATCH, API_WORKERS, add_api, raw_routes
from .correction_row import build_keep_row
from .draw import build_draw_tab
from .embeddings_tab import build_embeddings_tab
from .kept_drawings_tab import build_kept_tab, follow
from .limits import Limits
from .models_tab import build_models_tab
from .page_files import page_files
from .results import build_results_tab, results_views
from .served import ServedModels

ROOT = Path(__file__).resolve().parent.parent
MAX_FILE_SIZE = f"{4 * MAX_UPLOAD_MB}mb"  # Gradio refuses bigger uploads outright; analysis refuses > MAX_UPLOAD_MB
# Gradio's queue rebuilds a pandas summary of its last GRADIO_ANALYTICS_MAX_EVENTS events after every event
# (gradio/queueing.py, read when the queue is built): 1.8 ms of CPU per /predict at 100 events, 8.8 ms at the
# default 10,000. Nothing here reads the summary, so it is rebuilt every 1,000 events over the last 1,000.
QUEUE_ANALYTICS = {"GRADIO_ANALYTICS_CACHE_FREQUENCY": "1000", "GRADIO_ANALYTICS_MAX_EVENTS": "1000"}
STATUS_UPDATE_S = 1.0  # queue positions sent once a second, not to every waiting client after every event
QUEUE_MAX = 128  # calls waiting beyond this get 503 at once (about 4 s of work at 30 /predict a second)

INTRO = """# EMNIST handwriting lab
Draw a digit or a letter on the canvas: three neural networks read it at once and show how sure each is.
Each learned from a different cut of EMNIST's handwriting: **byclass** (62 classes: digits, capitals and small
letters), **bymerge** and **balanced** (47 classes: 15 letters that look alike in both cases, such as o and O,
count as one)."""

# Phones and tablets: the canvas and a one-line answer on the first screen; wide screens keep the desktop page.
CSS = """
#model-input img, .saliency img { image-rendering: pixelated; }
.slot-info p { margin: 0.1em 0; }
footer { visibility: visible; }
#answer-line { min-height: 2.6em; text-align: center; }
#answer-line p { margin: 0.2em 0; font-size: 1.1em; }
@media (min-width: 1025px) { #answer-line { display: none !important; } }
@media (max-width: 1024px) { #intro h1 { font-size: 1.5em; margin-bottom: 0.2em; } }
@media (max-width: 640px) {
  #sketch .html-container { padding: 0 !important; }
  #intro p { font-size: 0.85em; line-height: 1.35; margin: 0; }
  #intro h1 { font-size: 1.25em; margin: 0 0 0.2em; }
  .tab-container button[role="tab"] { padding: 4px 5px !important; font-size: 12.5px !important; }
}
"""
# Gradio scopes the page's CSS to its content; the page's own margins need a rule of their own.
HEAD = """<style>@media (max-width: 640px) { .app { padding-left: 8px !important; padding-right: 8px !important; } }
</style>"""
log = logging.getLogger("webapp")


def page_notice(lab: ServedModels) -> str:
    """A line for visitors when models are missing (the why, with the server's paths, is in its log)."""
    if lab.problem:
        return "⚠ **No models are available yet**: the app's operator needs to export them (the server's log says why)."
    return "  \n".join(f"⚠ Model **{name}** is unavailable (see the Models and API tab)." for name in lab.unavailable)


def log_models(lab: ServedModels) -> None:
    """The server's log at start: which models it serves, which it skipped and why."""
    if lab.problem:
        log.warning("no models served from %s: %s", lab.models_dir, lab.problem)
        return
    providers = lab.providers
    log.info("serving %d model(s) from %s (%s): %s", len(lab.models), lab.models_dir, ", ".join(providers),
             ", ".join(e.name for e in lab.models))
    for name, reason in lab.unavailable.items():
        log.warning("skipped model %s: %s", name, reason)
    for skipped in lab.skipped:
        log.info("not shipped by the export: %s (%s)", skipped.name, skipped.reason)


def log_keeping(lab: ServedModels) -> None:
    """The server's log at start: where drawings are kept, or why keeping is off (with the store's path)."""
    if lab.keep_off:
        log.warning("keeping drawings is off: %s (store: %s)", lab.keep_off, lab.drawings_path or "none")
    elif lab.store is not None:
        log.info("keeping drawings in %s (%d kept)", lab.drawings_path, lab.store.count())


def log_page(lab: ServedModels) -> None:
    """The server's log at start: whether the page answers drawings itself, or why not."""
    if lab.page.enabled:
        log.info("the page answers drawings itself (onnxruntime-web %s; /page/config.json)",
                 lab.page.config["runtime"]["version"])
    else:
        log.info("the page does not answer drawings itself, the server does: %s", lab.page.reason)


def build_demo(models_dir: str | os.PathLike = ROOT / "exported_models",
               assets_dir: str | os.PathLike = ROOT / "assets", use_cuda: bool = False, threads: int = 1,
               api_batch: int = API_BATCH, drawings: str | os.PathLike | None = None, keep: bool = True,
               level: float = DEFAULT_LEVEL, limits: Limits | None = None, page_inference: bool = True) -> gr.Blocks:
    """The whole app as a Blocks (not launched). Models load here, once; embeddings load when first shown.

    ``api_batch``: how many queued /predict calls Gradio may hand the endpoint at once (1: no batching).
    ``drawings``: the kept-drawings store (None: keeping off; app.py passes ``data/drawings.sqlite3``);
    ``keep=False`` turns keeping off (``--no-keep``); ``level``: the answer sets' coverage (``--coverage``).
    ``limits``: the store's size and the per-client rates (``webapp.limits``; default ``Limits()``).
    ``page_inference=False`` (``--no-browser-inference``): the page never answers itself, the server answers every
    drawing; ``lab.page`` (``webapp.page_files.PageFiles``) holds the choice: ``.enabled``, ``.reason``, ``.config``.
    """
    lab = ServedModels(models_dir, assets_dir, use_cuda=use_cuda, threads=threads, level=level)
    lab.limits = limits or Limits()
    lab.open_drawings(drawings, keep)
    log_models(lab)
    log_keeping(lab)
    lab.page = page_files(lab, page_inference)
    log_page(lab)
    with gr.Blocks(title="EMNIST handwriting lab", analytics_enabled=False) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        gr.Markdown(page_notice(lab), elem_id="model-status")
        x28 = gr.State(None)  # the current drawing as the models see it: written by the draw tab, read by the maps
        draw = build_draw_tab(lab, x28, build_keep_row)
        kept = build_kept_tab(lab)
        follow(kept, draw.keep.events)
        build_embeddings_tab(lab, x28)
        build_results_tab(results_views(lab.assets_dir / "results"))
        build_models_tab(lab)
        endpoints = add_api(lab, api_batch)
    demo.emnist_lab = lab  # for launch() (allowed paths) and tests
    demo.emnist_draw = draw  # for tests
    demo.emnist_kept = kept  # for tests
    demo.emnist_api = endpoints  # for launch(): the plain HTTP routes the server is built with
    demo.emnist_page = lab.page  # for launch(): the page's files (/page/...)
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, share: bool = False,
           prevent_thread_lock: bool = False, quiet: bool = False, concurrency: int | None = None):
    """Start the server with the app's settings; returns what ``Blocks.launch`` returns (app, local url, share url)."""
    lab: ServedModels | None = getattr(demo, "emnist_lab", None)
    for name, value in QUEUE_ANALYTICS.items():
        os.environ.setdefault(name, value)  # a deployment's own setting wins
    demo.queue(default_concurrency_limit=concurrency or API_WORKERS,
               status_update_rate=STATUS_UPDATE_S, max_size=QUEUE_MAX)
    endpoints = getattr(demo, "emnist_api", None)
    page = getattr(demo, "emnist_page", None)
    routes = (raw_routes(endpoints) if endpoints else []) + (page.routes() if page else [])
    launched = demo.launch(
        server_name=host, server_port=port, share=share, prevent_thread_lock=True, quiet=quiet,
        max_file_size=MAX_FILE_SIZE, ssr_mode=False, footer_links=["api", "gradio"], css=CSS, head=HEAD,
        allowed_paths=[str(lab.assets_dir.resolve())] if lab else None, show_error=False,
        app_kwargs={"routes": routes} if routes else None,  # there before the first request
    )
    if not prevent_thread_lock:
        demo.block_thread()
    return launched
