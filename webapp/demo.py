"""The whole page: ``build_demo`` lays out the tabs around one ``Lab``; ``launch`` serves it with the app's settings.

Every tab has its own module and builder (draw, embeddings_tab, results, models_tab); ``webapp.api`` declares
the two API endpoints. The current drawing's model input lives in one ``gr.State`` that the draw tab writes
and the embeddings tab reads.
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from .analysis import MAX_UPLOAD_MB
from .api import API_BATCH, API_WORKERS, add_api, add_raw_route
from .draw import build_draw_tab
from .embeddings_tab import build_embeddings_tab
from .models_tab import build_models_tab, status_markdown
from .results import build_results_tab
from .served import ServedModels as Lab

ROOT = Path(__file__).resolve().parent.parent
MAX_FILE_SIZE = f"{4 * MAX_UPLOAD_MB}mb"  # Gradio refuses bigger uploads outright; analysis refuses > MAX_UPLOAD_MB
# Gradio's queue rebuilds a pandas summary of its last GRADIO_ANALYTICS_MAX_EVENTS events after every event
# (gradio/queueing.py, read when the queue is built): 1.8 ms of CPU per /predict at 100 events, 8.8 ms at the
# default 10,000. Nothing here reads the summary, so it is rebuilt every 1,000 events over the last 1,000.
QUEUE_ANALYTICS = {"GRADIO_ANALYTICS_CACHE_FREQUENCY": "1000", "GRADIO_ANALYTICS_MAX_EVENTS": "1000"}
STATUS_UPDATE_S = 1.0  # queue positions sent once a second, not to every waiting client after every event
QUEUE_MAX = 128  # calls waiting beyond this get 503 at once (about 4 s of work at 30 /predict a second)

CSS = """
#model-input img, .saliency img { image-rendering: pixelated; }
.slot-info p { margin: 0.1em 0; }
footer { visibility: visible; }
"""


def build_demo(models_dir: str | os.PathLike = ROOT / "exported_models",
               assets_dir: str | os.PathLike = ROOT / "assets", use_cuda: bool = False, threads: int = 1,
               api_batch: int = API_BATCH) -> gr.Blocks:
    """The whole app as a Blocks (not launched). Models load here, once; embeddings load when first shown.

    ``api_batch``: how many queued /predict calls Gradio may hand the endpoint at once (1: no batching).
    """
    lab = Lab(models_dir, assets_dir, use_cuda=use_cuda, threads=threads)
    with gr.Blocks(title="EMNIST handwriting lab", analytics_enabled=False) as demo:
        gr.Markdown("# EMNIST handwriting lab\nDraw one character — a digit or a letter — and three models trained "
                    "on different EMNIST splits read it side by side.")
        gr.Markdown(status_markdown(lab), elem_id="model-status")
        x28 = gr.State(None)  # the current drawing as the models see it: written by the draw tab, read by the maps
        draw = build_draw_tab(lab, x28)
        build_embeddings_tab(lab, x28)
        build_results_tab(lab.results_views())
        build_models_tab(lab)
        endpoints = add_api(lab, api_batch)
    demo.emnist_lab = lab  # for launch() (allowed paths) and tests
    demo.emnist_draw = draw  # for tests
    demo.emnist_api = endpoints  # for launch(): the plain HTTP route joins the server it starts
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, share: bool = False,
           prevent_thread_lock: bool = False, quiet: bool = False, concurrency: int | None = None):
    """Start the server with the app's settings; returns what ``Blocks.launch`` returns (app, local url, share url)."""
    lab: Lab | None = getattr(demo, "emnist_lab", None)
    for name, value in QUEUE_ANALYTICS.items():
        os.environ.setdefault(name, value)  # a deployment's own setting wins
    demo.queue(default_concurrency_limit=concurrency or API_WORKERS,
               status_update_rate=STATUS_UPDATE_S, max_size=QUEUE_MAX)
    launched = demo.launch(
        server_name=host, server_port=port, share=share, prevent_thread_lock=True, quiet=quiet,
        max_file_size=MAX_FILE_SIZE, ssr_mode=False, footer_links=["api", "gradio"], css=CSS,
        allowed_paths=[str(lab.assets_dir.resolve())] if lab else None, show_error=False,
    )
    if endpoints := getattr(demo, "emnist_api", None):
        add_raw_route(demo.server_app, endpoints)
    if not prevent_thread_lock:
        demo.block_thread()
    return launched
