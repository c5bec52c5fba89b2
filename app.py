"""The EMNIST lab's web app: draw a character, compare three models, see why, browse the maps and results.

    python app.py [--host 127.0.0.1] [--port 7860] [--share] [--models exported_models] [--assets assets] [--cuda]

This file only lays out the page and wires events; what happens lives in ``recognizer.app_logic``
(no torch anywhere on this path). ``build_demo(models_dir, assets_dir)`` gives the Blocks for
tests; ``launch(demo, ...)`` starts it with the app's settings (upload limit, allowed paths, CSS).

API (gradio_client): ``/predict`` (image file -> JSON per slot) and ``/models`` (the manifest summary);
every UI event is private.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no telemetry, no version check

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from recognizer.app_logic import (  # noqa: E402
    MAP_TITLES,
    MAX_UPLOAD_MB,
    TOP_K,
    Analysis,
    Lab,
    class_colours,
    duration,
    enlarge,
    percent,
)
from recognizer.inference import SLOTS  # noqa: E402
from recognizer.labels import same_character  # noqa: E402

ROOT = Path(__file__).resolve().parent
CANVAS = 400  # the drawing canvas, in pixels
BRUSH = 12  # brush radius: ~24 px strokes, about 2 of 28 pixels for a character 300 px tall (EMNIST: about 2.3)
MAX_FILE_SIZE = f"{4 * MAX_UPLOAD_MB}mb"  # Gradio refuses bigger uploads outright; app_logic refuses > MAX_UPLOAD_MB
PRIVATE = {"api_visibility": "private"}

CSS = """
#model-input img, .saliency img { image-rendering: pixelated; }
.slot-info p { margin: 0.1em 0; }
footer { visibility: visible; }
"""

# Strokes register only once the Brush tool is active: activate it as soon as the canvas appears,
# so a person can draw straight away (a real browser otherwise needs a click on "Brush" first).
JS = """
() => {
  // Re-select the brush whenever a new canvas appears (first load, a re-mounted editor), never after that,
  // so a person who picks the eraser keeps it.
  let seen = null;
  setInterval(() => {
    const root = document.querySelector('#sketch');
    const canvas = root && root.querySelector('canvas');
    if (!canvas || canvas === seen) return;
    const brush = root.querySelector('button[aria-label="Brush"]');
    if (!brush) return;
    if (!brush.classList.contains('highlight')) brush.click();
    seen = canvas;
  }, 300);
}
"""


# ---------------------------------------------------------------------------------------------
# Turning an Analysis into component values


def label_value(analysis: Analysis, i: int) -> dict[str, float] | None:
    r = analysis.slots[i] if i < len(analysis.slots) else None
    if r is None or r.prediction is None:
        return None
    return {display: probability for _, display, probability in r.prediction.top}


def slot_info(analysis: Analysis, i: int) -> str:
    r = analysis.slots[i] if i < len(analysis.slots) else None
    if r is None or analysis.message:
        return ""
    if r.prediction is None:
        return f"⚠ {r.error}" if r.error else ""
    p = r.prediction
    chars = [s.prediction.char for s in analysis.slots if s.prediction is not None]
    others = [c for j, c in enumerate(chars) if j != i]
    mark = "" if not others else ("✓" if all(same_character(p.char, c) for c in others) else "✗")
    return f"{mark} **{p.top[0][1]}** {p.confidence:.1%} · {p.latency_ms:.2f} ms"


def agreement(analysis: Analysis) -> str:
    if analysis.message:
        return ""
    answered = [(i, r) for i, r in enumerate(analysis.slots) if r.prediction is not None]
    if not answered:
        return "⚠ No model could answer."
    reads = " · ".join(f"{r.model}: **{r.prediction.top[0][1]}**" for _, r in answered)
    if analysis.agree is None:
        return f"Only one model answered: {reads}"
    if analysis.agree:
        return f"✓ **They agree** (upper and lower case of merged letters count as one): {reads}"
    return f"⚠ **They disagree**: {reads}"


def status(analysis: Analysis) -> str:
    if analysis.message is None:
        return "Each model's answer is below; the heat maps show which parts of the input mattered most to it."
    return ("✎ " if analysis.kind == "empty" else "⚠ ") + analysis.message


def outputs_for(analysis: Analysis) -> list[Any]:
    """State, model-input preview, status, agreement, then per slot: label and info (saliency comes after)."""
    values: list[Any] = [
        analysis.x28,
        enlarge(analysis.x28) if analysis.x28 is not None else None,
        status(analysis),
        agreement(analysis),
    ]
    for i in range(len(SLOTS)):
        values += [label_value(analysis, i), slot_info(analysis, i)]
    return values


def warn(analysis: Analysis) -> None:
    """A bad upload gets a toast as well as the status line (an empty canvas only the status line)."""
    if analysis.kind == "bad" and analysis.message:
        gr.Warning(analysis.message)


# ---------------------------------------------------------------------------------------------
# The page


def models_table(lab: Lab) -> str:
    if lab.problem:
        return lab.status_markdown()
    rows = ["| model | family | split | protocol | profile | slot | test accuracy | weighted F1 | epochs | training |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for e in lab.models:
        m = e.metrics
        rows.append(f"| {e.name} | {e.family} | {e.split} | {e.protocol} | {e.profile} | {e.slot or ''} | "
                    f"{percent(m.get('test_accuracy'))} | {percent(m.get('weighted_f1'))} | "
                    f"{m.get('epochs_run', e.training.get('epochs', '–'))} | {duration(m.get('train_seconds'))} |")
    text = "\n".join(rows)
    if lab.unavailable:
        text += "\n\n**Unavailable**\n\n" + "\n".join(f"- **{n}**: {r}" for n, r in lab.unavailable.items())
    if lab.skipped:
        text += "\n\n**Not exported**\n\n" + "\n".join(
            f"- **{s.get('name') or s.get('run_id')}**: {s.get('reason', '')}" for s in lab.skipped)
    return text


API_HELP = """
### API

Two named endpoints; call them with [`gradio_client`](https://www.gradio.app/guides/getting-started-with-the-python-client):

```python
from gradio_client import Client, handle_file
client = Client("http://127.0.0.1:7860/")
answer = client.predict(handle_file("letter.png"), api_name="/predict")          # three default slots
answer = client.predict(handle_file("letter.png"), 3, False, "lenet5-byclass", api_name="/predict")
models = client.predict(api_name="/models")
```

`/predict(image, top_k=5, include_input=True, models="")` returns `{"ok", "error", "agree", "models": [{"slot",
"model", "top": [{"char", "display", "probability"}], "latency_ms"}], "input": 28x28 list or null}`; a bad image gives
`ok: false` and `error` saying why. `models` is an optional comma-separated list of model names to ask instead of
the three slots. `/models` returns the loaded models with their metrics, the slots, and the unavailable or skipped
models with the reason.
"""


def build_demo(models_dir: str | os.PathLike = ROOT / "exported_models",
               assets_dir: str | os.PathLike = ROOT / "assets", use_cuda: bool = False, threads: int = 1) -> gr.Blocks:
    """The whole app as a Blocks (not launched). Models load here, once; embeddings load when first shown."""
    lab = Lab(models_dir, assets_dir, use_cuda=use_cuda, threads=threads)
    choices = lab.model_choices()
    defaults = lab.slot_defaults()

    with gr.Blocks(title="EMNIST handwriting lab", analytics_enabled=False) as demo:
        gr.Markdown("# EMNIST handwriting lab\nDraw one character — a digit or a letter — and three models trained "
                    "on different EMNIST splits read it side by side.")
        gr.Markdown(lab.status_markdown(), elem_id="model-status")
        x28_state = gr.State(None)

        with gr.Tab("Draw and compare"), gr.Row(equal_height=False):
            with gr.Column(scale=4, min_width=320):
                with gr.Tab("Draw"):
                    sketch = gr.Sketchpad(
                        type="numpy", canvas_size=(CANVAS, CANVAS), fixed_canvas=True, image_mode="RGBA",
                        brush=gr.Brush(default_size=BRUSH, colors=["#000000"], color_mode="fixed"),
                        eraser=gr.Eraser(default_size=BRUSH * 2), layers=False, transforms=(),
                        format="png", label="Draw one character", elem_id="sketch", buttons=[], height=CANVAS + 140,
                    )
                with gr.Tab("Upload"):
                    upload = gr.Image(
                        type="filepath", image_mode=None, sources=["upload", "clipboard"], format="png",
                        label=f"A photo or scan of one handwritten character (up to {MAX_UPLOAD_MB} MB)",
                        elem_id="upload", height=CANVAS,
                    )
                clear = gr.Button("Clear", variant="secondary", elem_id="clear")
                with gr.Row():
                    preview = gr.Image(label="What the models see (28×28)", interactive=False, height=240,
                                       width=240, elem_id="model-input", buttons=[], format="png")
                saliency_on = gr.Checkbox(value=True, label="Saliency maps (occlusion)")
            with gr.Column(scale=7):
                status_md = gr.Markdown("✎ Draw a character (or upload a photo of one).", elem_id="status")
                agreement_md = gr.Markdown(elem_id="agreement")
                dropdowns, cards, labels, infos, saliencies = [], [], [], [], []
                with gr.Row(equal_height=False):
                    for i, slot in enumerate(SLOTS):
                        with gr.Column(min_width=200, elem_id=f"slot-{i}"):
                            dropdowns.append(gr.Dropdown(choices=choices, value=defaults[i],
                                                         label=f"Slot {i + 1} (default: {slot})",
                                                         interactive=True))
                            cards.append(gr.Markdown(lab.model_card(defaults[i]), elem_classes=["card"]))
                            infos.append(gr.Markdown(elem_classes=["slot-info"], elem_id=f"info-{i}"))
                            labels.append(gr.Label(num_top_classes=TOP_K, label="Top 5", show_heading=True,
                                                   elem_id=f"label-{i}"))
                            saliencies.append(gr.Image(label="Where it looked", interactive=False, height=200,
                                                       elem_classes=["saliency"], buttons=[], format="png"))

        outputs = [x28_state, preview, status_md, agreement_md]
        for i in range(len(SLOTS)):
            outputs += [labels[i], infos[i]]

        # Predictions first (milliseconds), then the saliency maps (tens of ms per model), as a second step.
        def on_image(image: Any, *names: str | None) -> list[Any]:
            analysis = lab.analyse(image, list(names), saliency=False)
            warn(analysis)
            return outputs_for(analysis)

        def on_slots(x28: np.ndarray | None, *names: str | None) -> list[Any]:
            analysis = lab.analyse_x28(x28, list(names), saliency=False)
            return outputs_for(analysis) + [lab.model_card(n) for n in names]

        def on_saliency(x28: np.ndarray | None, use_saliency: bool, *names: str | None) -> list[Any]:
            return lab.saliency_maps(x28 if use_saliency else None, list(names))

        common = {"show_progress": "hidden", **PRIVATE}
        saliency_step = ([x28_state, saliency_on, *dropdowns], saliencies)
        sketch.change(on_image, [sketch, *dropdowns], outputs, trigger_mode="always_last", **common).then(
            on_saliency, *saliency_step, **common)
        upload.change(on_image, [upload, *dropdowns], outputs, trigger_mode="always_last", **common).then(
            on_saliency, *saliency_step, **common)
        for dropdown in dropdowns:
            dropdown.change(on_slots, [x28_state, *dropdowns], outputs + cards, **common).then(
                on_saliency, *saliency_step, **common)
        saliency_on.change(on_saliency, *saliency_step, **common)
        clear.click(lambda: (None, None), None, [sketch, upload], **common)

        # ---------------------------------------------------------------- embeddings
        with gr.Tab("Embeddings") as embeddings_tab:
            gr.Markdown("Each model's test sample mapped to 2-D from its penultimate features (computed offline). "
                        "Hover a point to see its class; your drawing is placed by its nearest neighbours.")
            first = next((n for n in defaults if n), None)
            with gr.Row():
                emb_model = gr.Dropdown(choices=choices, value=first, label="Model", interactive=True)
                emb_method = gr.Radio(choices=[(title, m) for m, title in MAP_TITLES.items()], value="umap",
                                      label="Map", interactive=True)
                emb_classes = gr.Dropdown(choices=lab.class_choices(first), value=[], multiselect=True,
                                          label="Only these classes (empty: all)", interactive=True)
            scatter = gr.ScatterPlot(x="x", y="y", color="class", color_map=class_colours(), colors_in_legend=[],
                                     tooltip=["class", "predicted", "correct"], height=560, label="Embedding",
                                     x_title=" ", y_title=" ", elem_id="scatter")
            emb_note = gr.Markdown(elem_id="embedding-note")
            gr.Markdown("#### Test images this model gets wrong (true → predicted)")
            mistakes_note = gr.Markdown()
            gallery = gr.Gallery(columns=10, height=420, label="Mistakes", object_fit="contain", allow_preview=True,
                                 elem_id="mistakes")

        def on_embedding(name: str | None, method: str | None, classes: list[str] | None,
                         x28: np.ndarray | None) -> list[Any]:
            import pandas as pd  # a Gradio dependency, already loaded with it

            points, note = lab.embedding_points(name, method, classes, x28)
            items, mistake_note = lab.mistakes(name, classes)
            return [pd.DataFrame(points), note, items, mistake_note]

        def on_embedding_model(name: str | None, method: str | None, x28: np.ndarray | None) -> list[Any]:
            methods = lab.embedding_methods(name)
            values = [m for _, m in methods]
            method = method if method in values else (values[0] if values else None)
            return [gr.Radio(choices=methods, value=method), gr.Dropdown(choices=lab.class_choices(name), value=[]),
                    *on_embedding(name, method, [], x28)]

        emb_outputs = [scatter, emb_note, gallery, mistakes_note]
        emb_model.change(on_embedding_model, [emb_model, emb_method, x28_state],
                         [emb_method, emb_classes, *emb_outputs], **common)
        emb_method.input(on_embedding, [emb_model, emb_method, emb_classes, x28_state], emb_outputs, **common)
        emb_classes.input(on_embedding, [emb_model, emb_method, emb_classes, x28_state], emb_outputs, **common)
        def on_embedding_tab(name: str | None, method: str | None, classes: list[str] | None,
                             x28: np.ndarray | None) -> list[Any]:
            methods = lab.embedding_methods(name)
            values = [m for _, m in methods]
            method = method if method in values else (values[0] if values else method)
            radio = gr.Radio(choices=methods, value=method) if methods else gr.skip()
            return [radio, *on_embedding(name, method, classes, x28)]

        # Opening the tab loads the model's map (lazily, once) and places the current drawing; filters are kept.
        embeddings_tab.select(on_embedding_tab, [emb_model, emb_method, emb_classes, x28_state],
                              [emb_method, *emb_outputs], **common)

        # ---------------------------------------------------------------- results and models
        with gr.Tab("Results"), gr.Tabs():
            for view in lab.results_views():  # one tab per profile's results, the paper profile first
                with gr.Tab(view.label):
                    if view.message:
                        gr.Markdown(f"⚠ {view.message}" if not view.message.startswith("⚠") else view.message)
                    if view.readme:
                        gr.Markdown(view.readme, elem_classes="results-readme")
                    for title, headers, rows in view.tables:
                        width = len(headers)
                        rows = [(row + [""] * width)[:width] for row in rows]
                        with gr.Accordion(f"Table: {title}", open=False):
                            gr.Dataframe(value=rows, headers=headers, interactive=False, wrap=True, max_height=420)
                    if view.images:
                        gr.Markdown("### All figures")
                        gr.Gallery(value=view.images, columns=2, height="auto", object_fit="contain",
                                   label="Plots", allow_preview=True)

        with gr.Tab("Models and API"):
            gr.Markdown(models_table(lab))
            gr.Markdown(API_HELP)

        # ---------------------------------------------------------------- the API
        with gr.Column(visible=False):
            api_image = gr.File(type="filepath", label="image")
            api_k = gr.Number(value=TOP_K, precision=0, label="top_k")
            api_include = gr.Checkbox(value=True, label="include_input")
            api_models = gr.Textbox(value="", label="models")
            api_out = gr.JSON(label="prediction")
            api_button = gr.Button("predict")

        def predict(image: str | None, top_k: float = TOP_K, include_input: bool = True, models: str = "") -> dict:
            """Read one image file: for each slot the model, its top-k characters with probabilities and its
            latency, plus whether the models agree. A bad image gives ok=false and the reason in error."""
            return lab.predict_json(image, k=int(top_k or TOP_K), include_input=bool(include_input), models=models)

        api_button.click(predict, [api_image, api_k, api_include, api_models], api_out, api_name="predict")

        def models() -> dict:
            """The models the app serves (metrics, training settings, slots) and those unavailable, with why."""
            return lab.models_summary()

        gr.api(models, api_name="models")

    demo.emnist_lab = lab  # for launch() (allowed paths) and tests
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, share: bool = False,
           prevent_thread_lock: bool = False, quiet: bool = False, concurrency: int | None = None):
    """Start the server with the app's settings; returns what ``Blocks.launch`` returns (app, local url, share url)."""
    lab: Lab | None = getattr(demo, "emnist_lab", None)
    demo.queue(default_concurrency_limit=concurrency or max(1, min(4, os.cpu_count() or 1)))
    return demo.launch(
        server_name=host, server_port=port, share=share, prevent_thread_lock=prevent_thread_lock, quiet=quiet,
        max_file_size=MAX_FILE_SIZE, ssr_mode=False, footer_links=["api", "gradio"], css=CSS, js=JS,
        allowed_paths=[str(lab.assets_dir.resolve())] if lab else None, show_error=False,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The EMNIST lab's web app.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument("--models", type=Path, default=ROOT / "exported_models", help="folder with manifest.json")
    parser.add_argument("--assets", type=Path, default=ROOT / "assets", help="folder with embeddings/ and results/")
    parser.add_argument("--cuda", action="store_true", help="run the models on CUDA when available")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per model")
    parser.add_argument("--concurrency", type=int, help="requests processed at once (default: CPU cores, up to 4)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    demo = build_demo(args.models, args.assets, use_cuda=args.cuda, threads=args.threads)
    launch(demo, args.host, args.port, args.share, concurrency=args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
