"""The "Draw and compare" tab: a canvas (or an upload), three model slots side by side, where each model looked.

A drawing goes ``DrawTab.on_image`` -> ``webapp.analysis.analyse`` -> ``shown`` (the values the page shows);
then, as a second step so the predictions appear first, ``DrawTab.on_saliency`` draws the heat maps. Where the page
answers a drawing itself (webapp/canvas.js, webapp/static/page.js), its answers reach the same components through a
browser-only event (``PAGE_SHOWS``); the drawing then reaches the server as the canvas's ``input`` event (its value as
the event's data, not the canvas's value, so no ``change`` and no answers run): ``DrawTab.on_page_stroke`` keeps the
model input (for the embeddings and a keep, which answers it on the server when it is kept) and draws the heat maps in
the same step.
Handlers return dicts keyed by component, so no output is matched by position. The correction row under the
answers ("What did you mean?", "Keep this drawing") is ``webapp.correction_row``; it keeps what ``CanvasMemory`` holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import gradio as gr
import numpy as np

from recognizer.answers import MODE_TITLES
from recognizer.manifest import SLOTS

from .analysis import analyse, analyse_x28, prepare, saliency_maps
from .analysis_records import MAX_UPLOAD_MB, TOP_K, Analysis
from .answer_words import MODE_CHOICES, mode_of
from .canvas import CANVAS, CanvasDrawing, CanvasValueError, canvas_value, drawing_canvas
from .draw_display import READY, enlarge, shown, status
from .draw_memory import CanvasMemory, canvas_digest, maps_key
from .events import QUIET
from .model_cards import model_card
from .served import ServedModels

# The page's Clear empties the canvas on the page (its own trash icon), then the server resets the answers.
CLEAR_JS = "() => { document.querySelector('#sketch button[aria-label=\"Clear canvas\"]')?.click(); }"
# The page's own answers (webapp/canvas.js puts them in window.emnistCanvas.outputs, in DrawTab.shown_by_page's
# order, and raises the canvas's submit event): shown in the browser, no request.
PAGE_SHOWS = "() => window.emnistCanvas.outputs"
# The mode or a slot's model changed: the page reads under the new mode, and answers again where it answered the
# drawing and still runs every slot's model (else the server does: DrawTab.page_answers).
MODE_OF_TITLE = json.dumps({title: mode for mode, title in MODE_TITLES.items()})
PAGE_CHOICE = """(title, ...names) => {
  const page = window.emnistCanvas;
  if (!page) return;
  page.mode = (MODES)[title] || 'anything';
  page.names = names;
  if (!page.inPage()) page.answerer = 'server';
  page.say();
  if (page.answerer === 'page' && page.drawn()) page.answer();
}""".replace("MODES", MODE_OF_TITLE)


def remember(image: CanvasDrawing | None, memory: CanvasMemory, answerer: str) -> bool:
    """A canvas drawing reaching the server (``answerer``: "server" answers it, or the "page" did): False where it is
    one Clear wiped (raised before Clear, delivered after: the page stays cleared); else the session now holds it as
    the canvas's, with its strokes and who answers it."""
    digest = canvas_digest(image)
    if digest in memory.cleared:
        return False
    if digest is not None:
        memory.current.append(digest)
    memory.strokes = image.strokes if image is not None else None
    memory.source, memory.answerer = "canvas", answerer
    return True


# ---------------------------------------------------------------------------------------------
# The tab


class CorrectionRow(Protocol):
    """The row under the answers (webapp/correction_row.py's ``KeepRow``, built by the page and passed in): a new
    drawing unticks its "Keep this drawing"."""

    keep_on: gr.Checkbox


@dataclass(eq=False)
class DrawTab:
    """The tab's components and its event handlers."""

    lab: ServedModels
    x28: gr.State  # the current model input, shared with the embeddings tab
    memory: gr.State  # a CanvasMemory
    sketch: gr.HTML  # webapp.canvas.drawing_canvas
    upload: gr.Image
    clear: gr.Button
    preview: gr.Image
    saliency_on: gr.Checkbox
    status: gr.Markdown
    agreement: gr.Markdown
    line: gr.Markdown  # the compact answer line under the canvas
    dropdowns: list[gr.Dropdown]
    cards: list[gr.Markdown]
    labels: list[gr.Label]
    infos: list[gr.Markdown]
    saliencies: list[gr.Image]
    keep: CorrectionRow  # the correction row under the answers
    mode: gr.Radio  # "What are you drawing?": Anything, Digits, Letters

    def answers(self) -> list[gr.components.Component]:
        """What an analysis sets on the page."""
        return [self.x28, self.preview, self.status, self.agreement, self.line, *self.labels, *self.infos]

    def shown_by_page(self) -> list[gr.components.Component]:
        """What the page's own answers set (``PAGE_SHOWS``'s order): the texts and each slot's top 5."""
        return [self.status, self.agreement, self.line, *self.labels, *self.infos]

    def page_answers(self, names: tuple[str | None, ...] | list[str | None], memory: CanvasMemory) -> bool:
        """Whether the page answers this drawing itself: it read it, and runs every slot's model."""
        return memory.answerer == "page" and self.lab.page_runs(list(names))

    def show(self, analysis: Analysis) -> dict[gr.components.Component, Any]:
        values = shown(analysis)
        return {self.x28: values.x28, self.preview: values.preview, self.status: values.status,
                self.agreement: values.agreement, self.line: values.line,
                **dict(zip(self.labels, values.labels, strict=True)),
                **dict(zip(self.infos, values.infos, strict=True))}  # fmt: skip

    def on_image(self, image: Any, png: bytes | None, memory: CanvasMemory, *names: str | None) -> dict:
        """A new drawing or upload: the predictions (the saliency maps follow as a second step); the session
        remembers the drawing and what the slots said, for keeping it, and the new drawing is not kept yet."""
        analysis = analyse(self.lab, image, list(names), saliency=False, mode=memory.mode)
        if analysis.kind == "bad" and analysis.message:  # a bad upload gets a toast too; an empty canvas does not
            gr.Warning(analysis.message)
        memory.png, memory.analysis = (png, analysis) if analysis.x28 is not None else (None, None)
        memory.x28, memory.names = analysis.x28, tuple(names)
        return self.show(analysis) | {self.memory: memory, self.keep.keep_on: False}

    def on_upload(self, path: str | None, memory: CanvasMemory, *names: str | None) -> dict:
        """An uploaded file (its path in Gradio's upload folder)."""
        try:
            png = Path(path).read_bytes() if path else None
        except OSError:
            png = None
        memory.strokes, memory.source, memory.answerer = None, "upload", "server"
        return self.on_image(path, png, memory, *names)

    def on_drawing(self, value: str | None, memory: CanvasMemory, *names: str | None) -> dict:
        """A stroke on the canvas (its PNG): the predictions, unless it is the drawing that was just cleared."""
        try:
            image = canvas_value(value)
        except CanvasValueError as err:
            memory.png = memory.analysis = None
            return self.show(Analysis(None, str(err), "bad")) | {self.memory: memory, self.keep.keep_on: False}
        if not remember(image, memory, "server"):
            return dict.fromkeys([*self.answers(), self.memory, self.keep.keep_on], gr.skip())
        return self.on_image(image, image.png if image is not None else None, memory, *names)

    def on_page_stroke(self, evt: gr.EventData, memory: CanvasMemory, use_saliency: bool, *names: str | None) -> dict:
        """A drawing the page answered itself (its value in the event's data): one step for the server, no answer
        computed. It keeps the drawing and the server's own model input (the preview, the embeddings, a keep, which
        answers it then) and draws the heat maps."""
        data = evt._data if isinstance(getattr(evt, "_data", None), dict) else {}
        outputs = [self.x28, self.preview, self.memory, self.keep.keep_on, *self.saliencies]
        try:
            image = canvas_value(data.get("value"))
        except CanvasValueError:  # nothing this canvas sends: the page showed its own words, nothing is kept
            image = None
        if not remember(image, memory, "page"):
            return dict.fromkeys(outputs, gr.skip())
        x28 = prepare(image)[0] if image is not None else None
        memory.png = image.png if x28 is not None else None
        memory.analysis, memory.x28, memory.names = None, x28, tuple(names)
        memory.mapped = maps_key(x28 if use_saliency else None, names)
        maps = saliency_maps(self.lab, x28 if use_saliency else None, list(names))
        return {self.x28: x28, self.preview: enlarge(x28) if x28 is not None else None, self.memory: memory,
                self.keep.keep_on: False} | dict(zip(self.saliencies, maps, strict=True))

    def on_slots(self, x28: np.ndarray | None, memory: CanvasMemory, *names: str | None) -> dict:
        """Another model in a slot: every slot's answer again (what a keep stores), and the cards. Where the page
        answers (it runs every model now in the slots), it answers again itself (``PAGE_CHOICE``)."""
        cards = {card: model_card(self.lab, n) for card, n in zip(self.cards, names, strict=True)}
        memory.names = tuple(names)
        if self.page_answers(names, memory):
            return dict.fromkeys([*self.answers()], gr.skip()) | {self.memory: memory} | cards
        if x28 is not None:
            memory.answerer = "server"
        analysis = analyse_x28(self.lab, x28, list(names), saliency=False, mode=memory.mode)
        if memory.analysis is not None and x28 is not None:
            memory.analysis = analysis
        return self.show(analysis) | {self.memory: memory} | cards

    def on_mode(self, mode: str | None, x28: np.ndarray | None, memory: CanvasMemory, *names: str | None) -> dict:
        """Another answer to "What are you drawing?": the session answers under it from now on, this drawing too."""
        memory.mode = mode_of(mode)
        return self.on_slots(x28, memory, *names)

    def on_saliency(self, x28: np.ndarray | None, use_saliency: bool, memory: CanvasMemory,
                    *names: str | None) -> dict:
        """The heat maps, after the answers. Gradio reads the State when the step runs, so a step queued behind a
        newer drawing maps that newer one; the newer drawing's own step then finds it done and skips."""
        key = maps_key(x28 if use_saliency else None, names)
        if key == memory.mapped:
            return dict.fromkeys(self.saliencies, gr.skip())
        maps = saliency_maps(self.lab, x28 if use_saliency else None, list(names))
        memory.mapped = key
        return dict(zip(self.saliencies, maps, strict=True))

    def on_clear(self, memory: CanvasMemory) -> dict:
        """Clear (after ``CLEAR_JS`` emptied the canvas on the page): no upload, and the ready state."""
        memory.cleared, memory.current, memory.mapped = frozenset(memory.current), [], None
        memory.png = memory.analysis = memory.x28 = None
        shown_here = self.show(READY)
        if memory.answerer == "page":  # the page shows its own ready state: a late reply must not hide its answers
            shown_here |= dict.fromkeys(self.shown_by_page(), gr.skip())
        return shown_here | {self.upload: None, self.memory: memory, self.keep.keep_on: False} | dict.fromkeys(
            self.saliencies)

    def with_saliency(self, event: Any) -> Any:
        """Draw the saliency maps once ``event`` (which shows the predictions) is done; returns that step."""
        return event.then(self.on_saliency, [self.x28, self.saliency_on, self.memory, *self.dropdowns],
                          self.saliencies, **QUIET)

    def wire(self) -> None:
        shows = [*self.answers(), self.memory, self.keep.keep_on]
        self.with_saliency(self.sketch.change(self.on_drawing, [self.sketch, self.memory, *self.dropdowns],
                                              shows, trigger_mode="always_last", **QUIET))
        self.with_saliency(self.upload.change(self.on_upload, [self.upload, self.memory, *self.dropdowns], shows,
                                              trigger_mode="always_last", **QUIET))
        for dropdown in self.dropdowns:
            self.with_saliency(dropdown.change(self.on_slots, [self.x28, self.memory, *self.dropdowns],
                                               [*self.answers(), self.memory, *self.cards], **QUIET))
        self.mode.change(self.on_mode, [self.mode, self.x28, self.memory, *self.dropdowns],
                         [*self.answers(), self.memory, *self.cards], **QUIET)
        # The page's own answers: shown in the browser (no request), and its choices followed there.
        self.sketch.submit(None, None, self.shown_by_page(), js=PAGE_SHOWS, **QUIET)
        self.sketch.input(self.on_page_stroke, [self.memory, self.saliency_on, *self.dropdowns],
                          [self.x28, self.preview, self.memory, self.keep.keep_on, *self.saliencies],
                          trigger_mode="always_last", **QUIET)
        for choice in [self.mode, *self.dropdowns]:
            choice.change(None, [self.mode, *self.dropdowns], None, js=PAGE_CHOICE, **QUIET)
        self.saliency_on.change(self.on_saliency, [self.x28, self.saliency_on, self.memory, *self.dropdowns],
                                self.saliencies, **QUIET)
        # The canvas is never an output: the page clears it (CLEAR_JS), the server only what it shows.
        self.clear.click(self.on_clear, self.memory, [self.upload, *shows, *self.saliencies],
                         js=CLEAR_JS, **QUIET)


def build_draw_tab(lab: ServedModels, x28: gr.State,
                   correction_row: Callable[[ServedModels, gr.State], CorrectionRow]) -> DrawTab:
    """Lay out the tab (inside the page's Blocks) and wire its events; ``correction_row(lab, memory)`` builds the
    row under the slots (``webapp.correction_row.build_keep_row``)."""
    memory = gr.State(CanvasMemory())
    with gr.Tab("Draw and compare"), gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=320):
            sketch, upload = _inputs()
            mode = gr.Radio(MODE_CHOICES, value=MODE_CHOICES[0], label="What are you drawing?", elem_id="mode",
                            info="Digits or Letters keeps every answer to that kind.")
            # Under the canvas, so a phone shows the answers and the canvas together (hidden on wide screens: CSS).
            line_md = gr.Markdown(status(READY), elem_id="answer-line")
            clear = gr.Button("Clear", variant="secondary", elem_id="clear")
            with gr.Row():
                preview = gr.Image(label="What the models see (28×28)", interactive=False, height=240, width=240,
                                   elem_id="model-input", buttons=[], format="png")
            saliency_on = gr.Checkbox(value=True, label="Saliency maps (occlusion)")
        with gr.Column(scale=7):
            status_md = gr.Markdown(status(READY), elem_id="status")
            agreement_md = gr.Markdown(elem_id="agreement")
            with gr.Row(equal_height=False):
                slots = [_slot(lab, i, default) for i, default in enumerate(lab.slot_defaults())]
            keep = correction_row(lab, memory)
    dropdowns, cards, infos, labels, saliencies = (list(column) for column in zip(*slots, strict=True))
    tab = DrawTab(lab=lab, x28=x28, memory=memory, sketch=sketch, upload=upload, clear=clear,
                  preview=preview, saliency_on=saliency_on, status=status_md, agreement=agreement_md, line=line_md,
                  dropdowns=dropdowns, cards=cards, labels=labels, infos=infos, saliencies=saliencies, keep=keep,
                  mode=mode)
    tab.wire()
    return tab


def _inputs() -> tuple[gr.HTML, gr.Image]:
    """The canvas and the upload, each in its own sub-tab."""
    with gr.Tab("Draw"):
        sketch = drawing_canvas("sketch")
    with gr.Tab("Upload"):
        upload = gr.Image(
            type="filepath", image_mode=None, sources=["upload", "clipboard"], format="png",
            label=f"A photo or scan of one handwritten character (up to {MAX_UPLOAD_MB} MB)",
            elem_id="upload", height=CANVAS,
        )
    return sketch, upload


def _slot(lab: ServedModels, i: int,
          default: str | None) -> tuple[gr.Dropdown, gr.Markdown, gr.Label, gr.Markdown, gr.Image]:
    """One comparison slot: which model, its card, its answer line, its top 5 and where it looked."""
    with gr.Column(min_width=200, elem_id=f"slot-{i}"):
        dropdown = gr.Dropdown(choices=lab.model_choices(), value=default, interactive=True,
                               label=f"Slot {i + 1} (default: {SLOTS[i]})")
        card = gr.Markdown(model_card(lab, default), elem_classes=["card"])
        info = gr.Markdown(elem_classes=["slot-info"], elem_id=f"info-{i}")
        label = gr.Label(num_top_classes=TOP_K, label="Top 5", show_heading=True, elem_id=f"label-{i}")
        saliency = gr.Image(label="Where it looked", interactive=False, height=200, elem_classes=["saliency"],
                            buttons=[], format="png")
    return dropdown, card, info, label, saliency
