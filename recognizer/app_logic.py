"""What the app does, as plain functions: no Gradio and no torch here, so every callback is testable.

``app.py`` only lays out the page and wires these to its components. ``Lab`` holds the loaded
models (one ONNX Runtime session each, opened once), the embeddings (loaded lazily per model)
and the results read from ``assets/``. Anything a person can hand the app either gives a
prediction or a message saying what is wrong; nothing here lets an exception reach the page.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .embeddings import Embedding, EmbeddingError, load_embedding
from .inference import SLOTS, ModelEntry, Prediction, Recognizer, manifest_path
from .labels import BYCLASS_CHARS, MERGED_CHARS, display, same_character
from .preprocess import BadImage, InputError, NothingDrawn, to_model_input
from .saliency import occlusion_map, overlay

log = logging.getLogger(__name__)

TOP_K = 5
MAX_UPLOAD_MB = 10  # an upload larger than this is refused before it is decoded
PREVIEW_SIZE = 224  # the 28x28 model input is shown enlarged to this many pixels
SALIENCY_PATCH, SALIENCY_STRIDE = 6, 3  # 64 occluded copies per map: a third of the default 4/2's cost
FILLED = 0.6  # a canvas inked over more than this is not one character
MAX_API_MODELS = 8  # models one /predict call may ask for
MAX_MISTAKES = 60  # thumbnails in the mistakes browser
DRAWING = "★ your drawing"  # the series name of the placed drawing on an embedding map
MAP_TITLES = {"umap": "UMAP of the features", "tsne": "t-SNE of the features", "pixel_umap": "UMAP of the raw pixels"}
EMPTY_MESSAGE = "Draw a character (or upload a photo of one) and the three models will read it."

# 20 distinguishable colours (matplotlib's tab20), cycled over the classes; the drawing is black.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)


def class_colours() -> dict[str, str]:
    """A fixed colour per class name as shown (byclass and merged names), and black for the drawing."""
    names = list(dict.fromkeys([*BYCLASS_CHARS, *(display(c, True) for c in MERGED_CHARS)]))
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    colours[DRAWING] = "#000000"
    return colours


# ---------------------------------------------------------------------------------------------
# Results of one analysis


@dataclass
class SlotResult:
    """One comparison slot's answer; ``error`` says why there is none."""

    model: str | None
    prediction: Prediction | None = None
    saliency: np.ndarray | None = None  # (S, S, 3) uint8 overlay
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.prediction is not None


@dataclass
class Analysis:
    """Everything the page shows for one input. ``message`` is set when there is nothing to predict."""

    x28: np.ndarray | None
    message: str | None = None
    kind: str | None = None  # "empty", "bad", "no_models" or None
    slots: list[SlotResult] = field(default_factory=list)

    @property
    def agree(self) -> bool | None:
        """Whether every slot that answered reads the same character (case merged); None under two answers."""
        chars = [s.prediction.char for s in self.slots if s.prediction is not None]
        if len(chars) < 2:
            return None
        return all(same_character(chars[0], c) for c in chars[1:])


@dataclass
class ResultsView:
    """What the Results tab shows, read from assets/results at start."""

    label: str = "results"
    readme: str | None = None
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (path, caption)
    message: str | None = None


# ---------------------------------------------------------------------------------------------
# Reading inputs


def prepare(image: Any, max_upload_mb: float = MAX_UPLOAD_MB) -> tuple[np.ndarray | None, str | None, str | None]:
    """(x28, message, kind): the model input, or a message for the person and its kind ("empty" or "bad")."""
    name = None
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        name = path.name
        try:
            size = path.stat().st_size
        except OSError:
            return None, f"Cannot read the uploaded file {name}.", "bad"
        if size > max_upload_mb * 1e6:
            return None, (f"The file is too large ({size / 1e6:.1f} MB; the limit is {max_upload_mb:g} MB). "
                          "A photo of one character needs far less: crop it or save it smaller."), "bad"
    if canvas_ink(image) > FILLED:
        return None, f"{EMPTY_MESSAGE} (the canvas is filled: clear it and draw one character)", "empty"
    try:
        return to_model_input(image), None, None
    except NothingDrawn as err:
        if name is None:  # the canvas: empty, a dot, or filled
            detail = f" ({err.detail})" if err.detail and "blank" not in err.detail else ""
            return None, EMPTY_MESSAGE + detail, "empty"
        return None, f"No character found in {name}: {err.detail or 'the image is blank'}.", "empty"
    except BadImage as err:
        text = str(err)
        if name is not None:
            text = text.replace(repr(str(image)), name).replace(str(image), name)
        return None, text, "bad"
    except InputError as err:
        return None, str(err), "bad"
    except Exception as err:  # a reader bug must not reach the page: say so, log it
        log.exception("preprocessing failed")
        return None, f"This input could not be read ({type(err).__name__}).", "bad"


def canvas_ink(value: Any) -> float:
    """Fraction of a Sketchpad value's canvas covered by strokes (0 for anything else).

    The layers' alpha says exactly where the person drew, which the flattened picture cannot: a canvas
    inked nearly everywhere would otherwise read as its few unpainted spots, white on black.
    """
    if not isinstance(value, Mapping):
        return 0.0
    covered = 0.0
    for layer in value.get("layers") or []:
        if isinstance(layer, np.ndarray) and layer.ndim == 3 and layer.shape[-1] == 4 and layer.size:
            covered = max(covered, float((layer[..., 3] > 127).mean()))
    return covered


def enlarge(x28: np.ndarray, size: int = PREVIEW_SIZE) -> np.ndarray:
    """The model's input as it sees it (bright ink on black), enlarged with visible pixels."""
    grey = np.round(np.clip(np.asarray(x28, np.float32).reshape(28, 28), 0, 1) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(grey).resize((size, size), Image.Resampling.NEAREST))


def thumbnail(thumb: np.ndarray, size: int = 84) -> np.ndarray:
    """An EMNIST thumbnail (bright ink on black) as dark ink on white, enlarged, for the mistakes gallery."""
    grey = 255 - np.asarray(thumb, np.uint8).reshape(28, 28)
    return np.asarray(Image.fromarray(grey).resize((size, size), Image.Resampling.NEAREST))


def percent(value: Any) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) else "–"


def duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# ---------------------------------------------------------------------------------------------
# The lab: models, embeddings, results


class Lab:
    """The models of an export folder and the assets beside them, loaded once for the app's lifetime."""

    def __init__(self, models_dir: str | os.PathLike = "exported_models", assets_dir: str | os.PathLike = "assets",
                 use_cuda: bool = False, threads: int = 1) -> None:
        self.models_dir = Path(models_dir)
        self.assets_dir = Path(assets_dir)
        self.problem: str | None = None
        self.recognizer: Recognizer | None = None
        try:
            self.recognizer = Recognizer(self.models_dir, use_cuda=use_cuda, intra_op_num_threads=threads)
        except Exception as err:  # a missing or broken manifest: the app still starts and says so
            self.problem = str(err) or type(err).__name__
        if self.recognizer is not None and not self.recognizer.entries:
            self.problem = f"the manifest {manifest_path(self.models_dir)} lists no models"
        self.skipped = self._read_skipped()
        self._embeddings: dict[str, Embedding | str] = {}
        self._lock = threading.Lock()
        self._results: list[ResultsView] | None = None

    # ------------------------------------------------------------ models

    @property
    def models(self) -> list[ModelEntry]:
        """The models that loaded, in manifest order."""
        return self.recognizer.models if self.recognizer else []

    @property
    def unavailable(self) -> dict[str, str]:
        return dict(self.recognizer.unavailable) if self.recognizer else {}

    def _read_skipped(self) -> list[dict]:
        """Models the export step left out on purpose (the manifest's ``skipped`` list)."""
        try:
            data = json.loads(manifest_path(self.models_dir).read_text(encoding="utf-8"))
            return [s for s in data.get("skipped", []) if isinstance(s, dict)]
        except (OSError, ValueError, AttributeError):
            return []

    def model_choices(self) -> list[tuple[str, str]]:
        """(label, name) for the slot dropdowns: every model that loaded."""
        return [(e.name, e.name) for e in self.models]

    def slot_defaults(self) -> list[str | None]:
        """The model of each of the three slots: the manifest's choice per split, others filling any gap."""
        if self.recognizer is None:
            return [None] * len(SLOTS)
        chosen = self.recognizer.default_slots()
        names: list[str | None] = [chosen.get(slot) for slot in SLOTS]
        spare = [e.name for e in self.models if e.name not in names]
        return [n if n is not None else (spare.pop(0) if spare else None) for n in names]

    def entry(self, name: str | None) -> ModelEntry | None:
        if not name or self.recognizer is None:
            return None
        try:
            return self.recognizer.entry(name)
        except KeyError:
            return None

    def status_markdown(self) -> str:
        """One block for the top of the page: what is loaded, what is not and why."""
        if self.problem:
            return f"⚠ **No models are shipped yet**: {self.problem}. Restart the app once they are exported."
        lines = [f"**{len(self.models)} model(s)** loaded from `{self.models_dir}`"
                 + (f" ({', '.join(sorted({p for ps in self.recognizer.providers.values() for p in ps}))})"
                    if self.recognizer and self.recognizer.providers else "") + "."]
        for name, reason in self.unavailable.items():
            lines.append(f"⚠ Model **{name}** is unavailable: {reason}")
        return "  \n".join(lines)

    def model_card(self, name: str | None) -> str:
        """A short markdown card: what the model is and how well it did on its test set."""
        if not name:
            return "*No model in this slot.*"
        if name in self.unavailable:
            return f"⚠ **{name}** is unavailable: {self.unavailable[name]}"
        e = self.entry(name)
        if e is None:
            return f"⚠ Unknown model **{name}**."
        m, t = e.metrics, e.training
        epochs = m.get("epochs_run", t.get("epochs", "–"))
        seconds = m.get("train_seconds", t.get("train_seconds"))
        classes = f"{len(e.labels)} classes" + (", case merged for 15 letters" if e.merged else "")
        return (
            f"**{e.name}** · {e.family or 'model'}  \n"
            f"{e.split or '?'} ({classes}) · protocol {e.protocol or '?'} · profile {e.profile or '?'}  \n"
            f"test accuracy **{percent(m.get('test_accuracy'))}** · weighted F1 {percent(m.get('weighted_f1'))}  \n"
            f"{epochs} epoch{'' if epochs == 1 else 's'} · trained in {duration(seconds)}"
            + (f" on {t['device']}" if t.get("device") else "")
        )

    def models_summary(self) -> dict:
        """The /models answer: the manifest's models, the slots, and what is unavailable or skipped, with why."""
        models = []
        for e in self.models:
            models.append({
                "name": e.name, "family": e.family, "split": e.split, "protocol": e.protocol, "profile": e.profile,
                "slot": e.slot, "classes": len(e.labels), "labels": e.displays, "metrics": e.metrics,
                "training": {k: e.training.get(k) for k in ("run_id", "model", "optimizer", "lr", "loss", "epochs",
                                                             "batch_size", "seed", "device") if k in e.training},
                "providers": self.recognizer.providers.get(e.name, []) if self.recognizer else [],
            })
        return {
            "models_dir": str(self.models_dir),
            "problem": self.problem,
            "slots": dict(zip(SLOTS, self.slot_defaults(), strict=True)),
            "models": models,
            "unavailable": [{"name": n, "reason": r} for n, r in self.unavailable.items()],
            "skipped": self.skipped,
        }

    # ------------------------------------------------------------ predicting

    def analyse(self, image: Any, names: list[str | None], k: int = TOP_K, saliency: bool = True) -> Analysis:
        """Read any input and run every slot on it."""
        x28, message, kind = prepare(image)
        if x28 is None:
            return Analysis(None, message, kind, [SlotResult(n) for n in names])
        return self.analyse_x28(x28, names, k, saliency)

    def analyse_x28(self, x28: np.ndarray | None, names: list[str | None], k: int = TOP_K,
                    saliency: bool = True) -> Analysis:
        """Run every slot on a prepared 28x28 input."""
        if x28 is None:
            return Analysis(None, EMPTY_MESSAGE, "empty", [SlotResult(n) for n in names])
        if self.recognizer is None or not self.models:
            return Analysis(x28, f"No models to ask: {self.problem or 'none loaded'}.", "no_models",
                            [SlotResult(n) for n in names])
        return Analysis(x28, None, None, [self.run_slot(name, x28, k, saliency) for name in names])

    def run_slot(self, name: str | None, x28: np.ndarray, k: int = TOP_K, saliency: bool = True) -> SlotResult:
        if not name:
            return SlotResult(None, error="No model in this slot.")
        if self.recognizer is None or name not in self.recognizer.sessions:
            reason = self.unavailable.get(name, "not in the manifest")
            return SlotResult(name, error=f"{name} is unavailable: {reason}")
        try:
            prediction = self.recognizer.predict(name, x28, k=k)
            heat = self.saliency(name, x28) if saliency else None
        except Exception as err:  # a model failing at run time takes only its slot down
            log.exception("model %s failed", name)
            return SlotResult(name, error=f"{name} failed: {type(err).__name__}: {err}")
        return SlotResult(name, prediction, heat)

    def saliency(self, name: str, x28: np.ndarray) -> np.ndarray:
        """Where the model looked: the occlusion map over the enlarged input, as an RGB picture."""
        heat = occlusion_map(self.recognizer, name, x28, patch=SALIENCY_PATCH, stride=SALIENCY_STRIDE)
        return overlay(x28, heat, size=PREVIEW_SIZE)

    def saliency_maps(self, x28: np.ndarray | None, names: list[str | None]) -> list[np.ndarray | None]:
        """One saliency picture per slot (None where there is no input or no working model)."""
        maps: list[np.ndarray | None] = []
        for name in names:
            if x28 is None or self.recognizer is None or not name or name not in self.recognizer.sessions:
                maps.append(None)
                continue
            try:
                maps.append(self.saliency(name, x28))
            except Exception:  # a failing model loses its heat map only
                log.exception("saliency of %s failed", name)
                maps.append(None)
        return maps

    def predict_json(self, image: Any, k: int = TOP_K, include_input: bool = True,
                     models: str | list[str] | None = None) -> dict:
        """The /predict answer for one image file: per slot the model, its top-k and its latency, and ``agree``."""
        names = self.slot_defaults()
        if models:
            wanted = [n.strip() for n in (models.split(",") if isinstance(models, str) else models) if n.strip()]
            if wanted:
                names = wanted[:MAX_API_MODELS]
        k = int(max(1, min(int(k or TOP_K), 62)))
        analysis = self.analyse(image, names, k=k, saliency=False)
        results = []
        for i, r in enumerate(analysis.slots):
            item: dict[str, Any] = {"slot": SLOTS[i] if i < len(SLOTS) else f"slot{i + 1}", "model": r.model}
            if r.prediction is not None:
                item["top"] = [{"char": c, "display": d, "probability": round(p, 6)} for c, d, p in r.prediction.top]
                item["latency_ms"] = round(r.prediction.latency_ms, 3)
            elif analysis.message is None:
                item["error"] = r.error
            results.append(item)
        error = analysis.message
        return {
            "ok": error is None and any(r.ok for r in analysis.slots),
            "error": error,
            "models": results,
            "agree": analysis.agree,
            "input": (np.round(analysis.x28, 3).tolist() if include_input and analysis.x28 is not None else None),
        }

    # ------------------------------------------------------------ embeddings

    def embedding_file(self, name: str) -> Path:
        return self.assets_dir / "embeddings" / f"{name}.npz"

    def embedding(self, name: str) -> Embedding:
        """The model's map file, loaded on first use and kept; raises EmbeddingError with a readable reason."""
        with self._lock:
            cached = self._embeddings.get(name)
            if cached is None:
                try:
                    cached = load_embedding(self.embedding_file(name))
                except EmbeddingError as err:
                    cached = str(err)
                self._embeddings[name] = cached
        if isinstance(cached, str):
            raise EmbeddingError(cached)
        return cached

    def embedding_methods(self, name: str | None) -> list[tuple[str, str]]:
        if not name:
            return []
        try:
            emb = self.embedding(name)
        except EmbeddingError:
            return []
        return [(MAP_TITLES.get(m, m), m) for m in emb.methods]

    def class_choices(self, name: str | None) -> list[str]:
        e = self.entry(name)
        return e.displays if e else []

    def embedding_points(self, name: str | None, method: str | None, classes: list[str] | None = None,
                         x28: np.ndarray | None = None) -> tuple[dict[str, list], str]:
        """Columns for the scatter plot (x, y, class, predicted, correct) and a markdown note.

        The current drawing, when given, is placed by its nearest neighbours in feature space and added
        as its own series.
        """
        empty: dict[str, list] = {"x": [], "y": [], "class": [], "predicted": [], "correct": []}
        if not name:
            return empty, "Pick a model."
        e = self.entry(name)
        if e is None:
            return empty, f"⚠ Model {name} is unavailable."
        try:
            emb = self.embedding(name)
        except EmbeddingError as err:
            return empty, f"⚠ No map for {name}: {err}"
        method = method if method in emb.maps else (emb.methods[0] if emb.methods else None)
        if method is None:
            return empty, f"⚠ The embedding file of {name} holds no 2-D map."
        shown = e.displays
        if max(emb.labels.max(initial=0), emb.preds.max(initial=0)) >= len(shown):
            return empty, f"⚠ The embedding file of {name} does not match its model's {len(shown)} classes."
        keep = np.ones(len(emb), bool)
        if classes:
            wanted = {shown.index(c) for c in classes if c in shown}
            keep = np.isin(emb.labels, list(wanted))
        coords = emb.maps[method][keep]
        labels, preds = emb.labels[keep], emb.preds[keep]
        points = {
            "x": np.round(coords[:, 0], 4).tolist(),
            "y": np.round(coords[:, 1], 4).tolist(),
            "class": [shown[i] for i in labels],
            "predicted": [shown[i] for i in preds],
            "correct": ["yes" if a == b else "no" for a, b in zip(labels, preds, strict=True)],
        }
        accuracy = float((emb.preds == emb.labels).mean())
        note = (f"**{name}** · {MAP_TITLES.get(method, method)} · {int(keep.sum()):,} of {len(emb):,} test images"
                f" (the model reads {accuracy:.1%} of the sample right). Hover a point to see its class.")
        if x28 is not None and self.recognizer is not None:
            try:
                answer = self.recognizer.predict(name, x28, k=1)
                features = answer.features
                if features is None:
                    raise ValueError("the model has no features output")
                px, py = emb.place(features, method)
                idx, sims = emb.neighbours(features, 10)
                near = Counter(shown[i] for i in emb.labels[idx]).most_common(3)
                guess = answer.top[0][1]
                # The scatter plot has one point size: draw the drawing as a black "+" of points so it stands out.
                span = np.ptp(emb.maps[method], axis=0) * 0.01
                for dx, dy in [(0, 0), *[(s * i, 0) for s in (-1, 1) for i in (1, 2, 3)],
                               *[(0, s * i) for s in (-1, 1) for i in (1, 2, 3)]]:
                    points["x"].append(round(px + dx * float(span[0]), 4))
                    points["y"].append(round(py + dy * float(span[1]), 4))
                    points["class"].append(DRAWING)
                    points["predicted"].append(guess)
                    points["correct"].append("–")
                note += ("  \n" + f"**{DRAWING}** (black) lands at ({px:.2f}, {py:.2f}), read as **{guess}**; its 10 "
                         f"nearest test images are " + ", ".join(f"{c} ×{n}" for c, n in near)
                         + f" (closest similarity {sims[0]:.2f}).")
            except (ValueError, KeyError) as err:
                note += f"  \n⚠ Cannot place the drawing: {err}"
        elif x28 is None:
            note += "  \nDraw something on the first tab to see where it lands."
        return points, note

    def mistakes(self, name: str | None, classes: list[str] | None = None,
                 limit: int = MAX_MISTAKES) -> tuple[list[tuple[np.ndarray, str]], str]:
        """Thumbnails of the sample's test images the model gets wrong, captioned 'true → predicted'."""
        if not name or self.entry(name) is None:
            return [], ""
        try:
            emb = self.embedding(name)
        except EmbeddingError:
            return [], ""
        shown = self.entry(name).displays
        wrong = emb.mistakes()
        if classes:
            wanted = [shown.index(c) for c in classes if c in shown]
            wrong = wrong[np.isin(emb.labels[wrong], wanted)]
        items = [(thumbnail(emb.thumbs[i]), f"{shown[emb.labels[i]]} → {shown[emb.preds[i]]}") for i in wrong[:limit]]
        note = (f"{len(wrong):,} of the {len(emb):,} sampled test images are misread"
                + (f"; the first {limit} are shown." if len(wrong) > limit else "."))
        return items, note

    # ------------------------------------------------------------ results

    def results_views(self) -> list[ResultsView]:
        """One view per results folder: assets/results and each folder in it with a README.md (such as paper/),
        the paper profile first."""
        if self._results is None:
            top = self.assets_dir / "results"
            subfolders = sorted(p for p in top.glob("*/") if (p / "README.md").is_file()) if top.is_dir() else []
            views = [read_results(folder) for folder in [top, *subfolders]]
            self._results = sorted(views, key=lambda v: (v.label != "paper profile", v.label))
        return self._results

    def results(self) -> ResultsView:
        """The first results view (the paper profile's when there is one)."""
        return self.results_views()[0]


def read_results(folder: Path) -> ResultsView:
    """The reproduced tables (README.md, the tables' CSVs) and plots (figures/*.png) of a results folder.

    Run records (runs/*/history.csv) and other profiles' subfolders are not this view's tables.
    """
    view = ResultsView(label=_results_label(folder))
    if not folder.is_dir():
        view.message = (f"No results in `{folder}` yet: run `python -m training reproduce` to train the tables' "
                        "models and write them there.")
        return view
    readme = folder / "README.md"
    if readme.is_file():
        try:
            view.readme = link_files(readme.read_text(encoding="utf-8"), folder)
        except (OSError, UnicodeDecodeError) as err:
            view.message = f"⚠ Cannot read {readme}: {err}"
    for path in sorted(folder.glob("*.csv")):
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            log.warning("skipping %s: %s", path, err)
            continue
        if rows:
            title = str(path.relative_to(folder).with_suffix(""))
            view.tables.append((title, rows[0], rows[1:]))
    images = sorted([*folder.glob("*.png"), *folder.glob("figures/*.png")], key=lambda p: (_plot_rank(p), str(p)))
    view.images = [(str(p), str(p.relative_to(folder).with_suffix(""))) for p in images]
    if view.readme is None and not view.tables and not view.images and view.message is None:
        view.message = f"`{folder}` holds no README.md, tables or plots yet."
    return view


def _results_label(folder: Path) -> str:
    """'<profile> profile' from the folder's tables (every table of a folder shares one), else the folder name."""
    for path in sorted(folder.glob("*.json")):
        try:
            profile = json.loads(path.read_text(encoding="utf-8")).get("profile")
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            continue
        if isinstance(profile, str):
            return f"{profile} profile"
    return folder.name


def _plot_rank(path: Path) -> int:
    """Cross-split matrix first, then confusion matrices, then the rest."""
    name = path.name.lower()
    return 0 if "heatmap" in name or "cross" in name else 1 if "confusion" in name else 2


FILE_ROUTE = "/gradio_api/file="  # Gradio serves files under launch(allowed_paths=...) here


def link_files(markdown: str, folder: Path) -> str:
    """Point the README's relative links and images (figures/x.png, table8.csv) at Gradio's file route.

    A markdown block has no folder of its own, so relative paths would resolve against the app's root;
    ``app.launch`` allows the assets folder, so these absolute file URLs are served.
    """

    def replace(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"^(?:[a-z]+:|/|#)", target):
            return match.group(0)
        path = (folder / target).resolve()
        if not path.is_file() or not path.is_relative_to(folder.resolve()):
            return match.group(0)
        return f"{match.group(1)}({FILE_ROUTE}{path})"

    return re.sub(r"(!?\[[^\]]*\])\(([^)\s]+)\)", replace, markdown)
