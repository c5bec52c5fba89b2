"""The "Embeddings" tab: each model's test sample on a 2-D map, the current drawing placed on it, and its mistakes.

The maps are computed offline (``python -m training embed``) and read lazily per model through
``ServedModels.embedding``; the drawing is placed by its nearest neighbours in the model's feature space
(``Embedding.place``).
The map is a matplotlib figure (``gr.Plot``): with up to 62 classes colours alone cannot be told apart, so each
class's character is written at the middle of its points, and Gradio's native scatter plot draws no text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
from matplotlib import patheffects
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from PIL import Image

from recognizer.embeddings import MAP_TITLES, STAGE_TITLES, Embedding, EmbeddingError, class_colours, map_title
from recognizer.labels import BYCLASS_CHARS, MERGED_CHARS, display

from .events import QUIET
from .served import ServedModels

MAX_MISTAKES = 60  # thumbnails in the mistakes browser
DRAWING = "★ your drawing"  # the series name of the placed drawing on an embedding map
NEIGHBOURS = 10
DRAWING_GID = "drawing"  # the drawing's marker on the figure, found by this id (tests)
DRAWING_COLOUR = "#ffd400"  # a yellow star edged in black: visible on any class colour and on white



def colours_by_name() -> dict[str, str]:
    """A fixed colour per class name as shown (byclass and merged names), and the drawing's colour."""
    names = list(dict.fromkeys([*BYCLASS_CHARS, *(display(c, True) for c in MERGED_CHARS)]))
    colours = dict(zip(names, class_colours(len(names)), strict=True))
    colours[DRAWING] = DRAWING_COLOUR
    return colours


COLOURS = colours_by_name()


def thumbnail(thumb: np.ndarray, size: int = 84) -> np.ndarray:
    """An EMNIST thumbnail (bright ink on black) as dark ink on white, enlarged, for the mistakes gallery."""
    grey = 255 - np.asarray(thumb, np.uint8).reshape(28, 28)
    return np.asarray(Image.fromarray(grey).resize((size, size), Image.Resampling.NEAREST))


# ---------------------------------------------------------------------------------------------
# Maps and mistakes, as plain values


def embedding_methods(lab: ServedModels, name: str | None) -> list[tuple[str, str]]:
    """(title, map name) of each map the model's embedding file holds; [] without one."""
    if not name:
        return []
    try:
        emb = lab.embedding(name)
    except EmbeddingError:
        return []
    return [(map_title(m), m) for m in emb.methods]


def embedding_points(lab: ServedModels, name: str | None, method: str | None, classes: list[str] | None = None,
                     x28: np.ndarray | None = None) -> tuple[dict[str, list], str]:
    """Columns for the map (x, y, class, predicted, correct) and a markdown note.

    The current drawing, when given, is placed by its nearest neighbours in feature space and added
    as its own series.
    """
    empty: dict[str, list] = {"x": [], "y": [], "class": [], "predicted": [], "correct": []}
    e = lab.entry(name)
    if e is None:
        return empty, "Pick a model." if not name else f"⚠ Model {name} is unavailable."
    try:
        emb = lab.embedding(name)
    except EmbeddingError as err:
        return empty, f"⚠ No map for {name}: {err}"
    method = method if method in emb.maps else (emb.methods[0] if emb.methods else None)
    if method is None:
        return empty, f"⚠ The embedding file of {name} holds no 2-D map."
    shown = e.displays
    if max(emb.labels.max(initial=0), emb.preds.max(initial=0)) >= len(shown):
        return empty, f"⚠ The embedding file of {name} does not match its model's {len(shown)} classes."
    keep = np.isin(emb.labels, [shown.index(c) for c in classes if c in shown]) if classes else np.ones(len(emb), bool)
    coords, labels, preds = emb.maps[method][keep], emb.labels[keep], emb.preds[keep]
    points = {
        "x": np.round(coords[:, 0], 4).tolist(),
        "y": np.round(coords[:, 1], 4).tolist(),
        "class": [shown[i] for i in labels],
        "predicted": [shown[i] for i in preds],
        "correct": ["yes" if a == b else "no" for a, b in zip(labels, preds, strict=True)],
    }
    accuracy = float((emb.preds == emb.labels).mean())
    note = (f"**{name}** · {map_title(method)} · {int(keep.sum()):,} of {len(emb):,} test images"
            f" (the model reads {accuracy:.1%} of the sample right). Each class's character is written at the "
            "middle of its points.")
    if x28 is None:
        return points, note + "  \nDraw something on the first tab to see where it lands."
    return points, note + "  \n" + place_drawing(lab, name, emb, method, x28, points)


def place_drawing(lab: ServedModels, name: str, emb: Embedding, method: str, x28: np.ndarray,
                  points: dict[str, list]) -> str:
    """Add the drawing to ``points`` where its nearest neighbours lie; a sentence saying where, or why not."""
    shown = lab.entry(name).displays
    try:
        answer = lab.recognizer.predict(name, x28, k=1)
        if answer.features is None:
            raise ValueError("the model has no features output")
        px, py = emb.place(answer.features, method, NEIGHBOURS)
        idx, sims = emb.neighbours(answer.features, NEIGHBOURS)
    except (ValueError, KeyError) as err:
        return f"⚠ Cannot place the drawing: {err}"
    guess = answer.top[0][1]
    # A map of an earlier stage (before fine-tuning) has the same points: the drawing goes where the fine-tuned
    # model's nearest test images lie on it.
    stage = " (placed by the fine-tuned model's neighbours)" if method in STAGE_TITLES else ""
    points["x"].append(round(px, 4))  # one point: the figure draws it as a big star on top of the rest
    points["y"].append(round(py, 4))
    points["class"].append(DRAWING)
    points["predicted"].append(guess)
    points["correct"].append("–")
    near = Counter(shown[i] for i in emb.labels[idx]).most_common(3)
    nearest = ", ".join(f"{c} ×{n}" for c, n in near)
    return (f"**{DRAWING}** (the yellow star) lands at ({px:.2f}, {py:.2f}){stage}, read as **{guess}**; its "
            f"{NEIGHBOURS} nearest test images are {nearest} (closest similarity {sims[0]:.2f}).")


def class_centres(points: dict[str, list]) -> dict[str, tuple[float, float]]:
    """Where each class's label goes: the median of its points (robust to a few strays far from the cluster)."""
    x, y = np.asarray(points["x"], float), np.asarray(points["y"], float)
    classes = np.asarray(points["class"], dtype=object)
    centres = {}
    for name in dict.fromkeys(points["class"]):
        if name != DRAWING:
            mine = classes == name
            centres[name] = (float(np.median(x[mine])), float(np.median(y[mine])))
    return centres


def _label_colour(name: str) -> tuple[float, float, float]:
    """The class colour darkened, so a label reads on its white halo yet still matches its points."""
    return tuple(0.55 * v for v in to_rgb(COLOURS.get(name, "#7f7f7f")))


def embedding_figure(points: dict[str, list], title: str = "") -> Figure:
    """The map: points coloured by class, each class's character at its median, the drawing as a big star on top.

    Built on a bare ``Figure`` (no pyplot): events run in worker threads, and pyplot's global state is not
    thread-safe. Gradio's ``gr.Plot`` saves it as an image.
    """
    fig = Figure(figsize=(9, 6.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    classes = np.asarray(points["class"], dtype=object)
    x, y = np.asarray(points["x"], float), np.asarray(points["y"], float)
    mine = classes == DRAWING
    colours = [COLOURS.get(c, "#7f7f7f") for c in classes[~mine]]
    ax.scatter(x[~mine], y[~mine], c=colours, s=10, alpha=0.7, linewidths=0, rasterized=True, zorder=1)
    centres = class_centres(points)
    size = 11 if len(centres) > 30 else 14  # fewer classes shown (the filter): room for bigger labels
    halo = [patheffects.withStroke(linewidth=3, foreground="white")]
    for name, (cx, cy) in centres.items():
        ax.text(cx, cy, name, fontsize=size, fontweight="bold", ha="center", va="center", color=_label_colour(name),
                path_effects=halo, zorder=3)
    if mine.any():
        star = ax.scatter(x[mine], y[mine], marker="*", s=700, c=DRAWING_COLOUR, edgecolors="black", linewidths=2,
                          zorder=10, label="your drawing")
        star.set_gid(DRAWING_GID)
        ax.legend(loc="upper right", fontsize=10, markerscale=0.5, framealpha=0.9)
    elif not len(x):
        ax.text(0.5, 0.5, "nothing to show", ha="center", va="center", transform=ax.transAxes, color="grey")
    return fig


def mistakes(lab: ServedModels, name: str | None, classes: list[str] | None = None,
             limit: int = MAX_MISTAKES) -> tuple[list[tuple[np.ndarray, str]], str]:
    """Thumbnails of the sample's test images the model gets wrong, captioned 'true → predicted'."""
    e = lab.entry(name)
    if e is None:
        return [], ""
    try:
        emb = lab.embedding(name)
    except EmbeddingError:
        return [], ""
    shown = e.displays
    wrong = emb.mistakes()
    if classes:
        wrong = wrong[np.isin(emb.labels[wrong], [shown.index(c) for c in classes if c in shown])]
    items = [(thumbnail(emb.thumbs[i]), f"{shown[emb.labels[i]]} → {shown[emb.preds[i]]}") for i in wrong[:limit]]
    note = (f"{len(wrong):,} of the {len(emb):,} sampled test images are misread"
            + (f"; the first {limit} are shown." if len(wrong) > limit else "."))
    return items, note


# ---------------------------------------------------------------------------------------------
# The tab


@dataclass(eq=False)
class EmbeddingsTab:
    """The tab's components and its event handlers."""

    lab: ServedModels
    x28: gr.State  # the drawing from the draw tab
    tab: gr.Tab
    model: gr.Dropdown
    method: gr.Radio
    classes: gr.Dropdown
    plot: gr.Plot
    note: gr.Markdown
    mistakes_note: gr.Markdown
    gallery: gr.Gallery

    def show(self, name: str | None, method: str | None, classes: list[str] | None,
             x28: np.ndarray | None) -> dict[gr.components.Component, Any]:
        """The map, its note and the mistakes for the chosen model, map and classes."""
        points, note = embedding_points(self.lab, name, method, classes, x28)
        items, mistakes_note = mistakes(self.lab, name, classes)
        title = f"{name} · {map_title(method)}" if name and method and points["x"] else ""
        return {self.plot: embedding_figure(points, title), self.note: note, self.gallery: items,
                self.mistakes_note: mistakes_note}

    def _maps(self, name: str | None, method: str | None) -> tuple[list[tuple[str, str]], str | None]:
        """The model's maps and the one to show: the chosen one where the model has it, else its first."""
        methods = embedding_methods(self.lab, name)
        values = [m for _, m in methods]
        return methods, method if method in values else (values[0] if values else None)

    def on_model(self, name: str | None, method: str | None, x28: np.ndarray | None) -> dict:
        """Another model: its maps and classes (the class filter cleared), and its map."""
        methods, method = self._maps(name, method)
        return {self.method: gr.Radio(choices=methods, value=method),
                self.classes: gr.Dropdown(choices=self.lab.class_choices(name), value=[], multiselect=True),
                **self.show(name, method, [], x28)}  # fmt: skip

    def on_open(self, name: str | None, method: str | None, classes: list[str] | None,
                x28: np.ndarray | None) -> dict:
        """Opening the tab loads the model's map (lazily, once) and places the current drawing; filters are kept."""
        methods, chosen = self._maps(name, method)
        if not methods:  # no map file: leave the radio as it is and say why below
            return self.show(name, method, classes, x28)
        return {self.method: gr.Radio(choices=methods, value=chosen), **self.show(name, chosen, classes, x28)}

    def wire(self) -> None:
        shows = [self.plot, self.note, self.gallery, self.mistakes_note]
        choice = [self.model, self.method, self.classes, self.x28]
        self.model.change(self.on_model, [self.model, self.method, self.x28], [self.method, self.classes, *shows],
                          **QUIET)
        self.method.input(self.show, choice, shows, **QUIET)
        self.classes.input(self.show, choice, shows, **QUIET)
        self.tab.select(self.on_open, choice, [self.method, *shows], **QUIET)


def build_embeddings_tab(lab: ServedModels, x28: gr.State) -> EmbeddingsTab:
    """Lay out the tab (inside the page's Blocks) and wire its events."""
    first = next((n for n in lab.slot_defaults() if n), None)
    with gr.Tab("Embeddings") as tab:
        gr.Markdown("Each model's test sample mapped to 2-D from its penultimate features (computed offline), "
                    "each class's character written at the middle of its points. Your drawing (the yellow star) "
                    "is placed by its nearest neighbours in the model's feature space. Study B's pretrained digit "
                    "model (`ssl_cnn-mnist50`) also has its test sample mapped before and after its self-supervised "
                    "pretraining: pick those maps under Map to compare them with the fine-tuned model's.")
        with gr.Row():
            model = gr.Dropdown(choices=lab.model_choices(), value=first, label="Model", interactive=True)
            method = gr.Radio(choices=[(title, m) for m, title in MAP_TITLES.items()], value="umap", label="Map",
                              interactive=True)
            classes = gr.Dropdown(choices=lab.class_choices(first), value=[], multiselect=True,
                                  label="Only these classes (empty: all)", interactive=True)
        plot = gr.Plot(format="png", label="Embedding", elem_id="scatter")
        note = gr.Markdown(elem_id="embedding-note")
        gr.Markdown("#### Test images this model gets wrong (true → predicted)")
        mistakes_note = gr.Markdown()
        gallery = gr.Gallery(columns=10, height=420, label="Mistakes", object_fit="contain", allow_preview=True,
                             elem_id="mistakes")
    embeddings = EmbeddingsTab(lab=lab, x28=x28, tab=tab, model=model, method=method, classes=classes,
                               plot=plot, note=note, mistakes_note=mistakes_note, gallery=gallery)
    embeddings.wire()
    return embeddings
