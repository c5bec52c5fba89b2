"""The app: its callbacks without a server (fast), then every API endpoint through gradio_client on loopback.

The models are LeNet-5s trained for one epoch on the shipped fixture and exported with the real export
step (see app_support.py); the API tests also run against the shipped exported_models/ when it exists.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from app_support import (
    REAL_ASSETS,
    REAL_MODELS,
    REPO,
    build_models,
    canvas_image,
    dataset_images,
    letter_a,
    make_assets,
    serve,
    sketchpad_value,
)
from PIL import Image

from recognizer.embeddings import STAGE_NAMES, STAGE_TITLES
from recognizer.inference import Prediction
from recognizer.manifest import SLOTS, EntryMetrics, TrainingRecord
from webapp.analysis import EMPTY_MESSAGE, MAX_UPLOAD_MB, Analysis, SlotResult, analyse, saliency_maps
from webapp.api import models_summary, predict_json
from webapp.canvas import CanvasValueError, canvas_value, png_data_url
from webapp.demo import page_notice
from webapp.draw import CanvasMemory, shown
from webapp.embeddings_tab import (
    DRAWING,
    DRAWING_GID,
    class_centres,
    embedding_figure,
    embedding_methods,
    embedding_points,
    mistakes,
)
from webapp.model_cards import accuracy_line, model_card, models_table, percent, recipe_lines, status_markdown
from webapp.results import build_results_tab, read_results, results_views
from webapp.served import ServedModels

pytestmark = [pytest.mark.timeout(300)]


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("app-models")
    return build_models(work / "exported_models", work)


@pytest.fixture(scope="session")
def tiny_assets(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_assets(tiny_models, tmp_path_factory.mktemp("app-assets"))


@pytest.fixture(scope="session")
def lab(tiny_models: Path, tiny_assets: Path) -> ServedModels:
    return ServedModels(tiny_models, tiny_assets)


@pytest.fixture(scope="session")
def canvases() -> list[tuple[np.ndarray, str]]:
    """Real EMNIST test images of six different classes, drawn large in black on a 400x400 white canvas."""
    x, y, chars = dataset_images("balanced")
    picked, seen = [], set()
    for image, label in zip(x, y, strict=True):
        if chars[label] not in seen:
            seen.add(chars[label])
            picked.append((canvas_image(image), chars[label]))
        if len(picked) == 6:
            break
    return picked


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory, canvases) -> dict[str, Path]:
    """Image files a person might upload, good and bad."""
    folder = tmp_path_factory.mktemp("uploads")
    paths = {}

    def save(name: str, image: Image.Image, **kwargs) -> None:
        paths[name] = folder / name
        image.save(paths[name], **kwargs)

    save("drawing.png", Image.fromarray(canvases[0][0]))
    save("photo.jpg", Image.fromarray(canvases[1][0]), quality=80)
    ink = 255 - letter_a()[..., 0]
    rgba = np.zeros((*ink.shape, 4), np.uint8)  # black strokes on a fully transparent background
    rgba[..., 3] = ink
    save("transparent.png", Image.fromarray(rgba, "RGBA"))
    save("white-on-black.png", Image.fromarray(255 - letter_a()))
    save("blank.png", Image.new("RGB", (400, 400), "white"))
    save("black.png", Image.new("RGB", (400, 400), "black"))
    dot = Image.new("RGB", (400, 400), "white")
    dot.paste((0, 0, 0), (198, 198, 203, 203))
    save("dot.png", dot)
    save("huge-pixels.png", Image.new("L", (9000, 9000), 255))  # 81 megapixels, a few kB as PNG
    paths["not-an-image.png"] = folder / "not-an-image.png"
    paths["not-an-image.png"].write_text("this is text, not a picture\n" * 20)
    paths["empty.png"] = folder / "empty.png"
    paths["empty.png"].write_bytes(b"")
    paths["truncated.png"] = folder / "truncated.png"
    paths["truncated.png"].write_bytes(paths["drawing.png"].read_bytes()[:200])
    paths["too-big.bmp"] = folder / "too-big.bmp"  # over the byte limit: refused before decoding
    with paths["too-big.bmp"].open("wb") as handle:
        handle.truncate(int((MAX_UPLOAD_MB + 1) * 1e6))
    return paths


def check_top(top: list, k: int = 5) -> None:
    probabilities = [p for *_, p in top] if isinstance(top[0], tuple) else [t["probability"] for t in top]
    assert len(top) == k
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probabilities) and sum(probabilities) <= 1.0 + 1e-5


# ---------------------------------------------------------------------------------------------
# Without a server


def test_app_imports_without_torch_and_builds_quickly(tiny_models: Path, tiny_assets: Path) -> None:
    modules = ["webapp", *(f"webapp.{p.stem}" for p in sorted((REPO / "webapp").glob("*.py")) if p.stem != "__init__")]
    code = (
        "import importlib, sys, time; import app; "
        f"[importlib.import_module(m) for m in {modules!r}]; "
        f"t = time.process_time(); demo = app.build_demo({str(tiny_models)!r}, {str(tiny_assets)!r}); "
        "built = time.process_time() - t; "
        "assert 'torch' not in sys.modules, 'torch was imported'; "
        "assert 'training' not in sys.modules, 'training was imported'; "
        "print(round(built, 2))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(modules) >= 8, modules  # every module of the app package was imported above
    # Its own CPU time, which other work on a shared machine does not stretch as it stretches the wall clock.
    built = float(done.stdout.split()[-1])
    assert built < 5, f"build_demo took {built} s of CPU"


def test_slots_default_to_the_three_splits(lab: ServedModels) -> None:
    assert lab.slot_defaults() == [f"lenet5-{s}" for s in SLOTS]
    assert [name for _, name in lab.model_choices()] == [f"lenet5-{s}" for s in SLOTS]
    assert lab.problem is None and lab.unavailable == {}


def test_real_drawings_give_three_predictions(lab: ServedModels, canvases) -> None:
    names = lab.slot_defaults()
    for rgb, _ in canvases:
        analysis = analyse(lab, sketchpad_value(rgb), names)
        assert analysis.message is None and analysis.x28.shape == (28, 28)
        assert analysis.x28.dtype == np.float32 and analysis.x28.min() >= 0 and analysis.x28.max() == 1
        for slot, name in zip(analysis.slots, names, strict=True):
            assert slot.model == name and slot.ok and slot.error is None
            check_top(slot.prediction.top)
            assert slot.prediction.latency_ms > 0
            assert slot.saliency.shape == (224, 224, 3) and slot.saliency.dtype == np.uint8
        assert analysis.agree in (True, False)
    merged = analyse(lab, sketchpad_value(canvases[0][0]), names).slots[1].prediction.top
    assert all(d == c or d == f"{c}/{c.lower()}" for c, d, _ in merged)  # bymerge shows 'C/c' for merged classes


def test_canvas_prediction_matches_the_dataset_image(lab: ServedModels) -> None:
    """A test image drawn large on the canvas reaches the model close to the image itself."""
    x, _, _ = dataset_images("balanced", 20)
    name = lab.slot_defaults()[2]
    same = 0
    for image in x:
        drawn = analyse(lab, sketchpad_value(canvas_image(image)), [name], saliency=False).slots[0].prediction.char
        direct = lab.recognizer.predict(name, image.astype(np.float32) / 255).char
        same += drawn == direct
    assert same >= 12, f"only {same} of 20 canvas drawings read like the dataset image"


def test_first_canvas_events_and_empty_canvas_ask_for_a_drawing(lab: ServedModels) -> None:
    names = lab.slot_defaults()
    first_event = {"background": None, "layers": [], "composite": None}
    blank = sketchpad_value(np.full((400, 400, 3), 255, np.uint8))
    for value in (None, first_event, {"background": None, "layers": [None], "composite": None}, blank):
        analysis = analyse(lab, value, names)
        assert analysis.kind == "empty" and analysis.message.startswith(EMPTY_MESSAGE), analysis.message
        assert analysis.x28 is None and not any(s.ok for s in analysis.slots) and analysis.agree is None


def test_a_dot_and_a_filled_canvas_are_not_characters(lab: ServedModels) -> None:
    dot = np.full((400, 400, 3), 255, np.uint8)
    dot[198:203, 198:203] = 0
    mostly = np.zeros((400, 400, 3), np.uint8)  # scribbled over almost everywhere
    mostly[:40] = 255
    black = np.zeros((400, 400, 3), np.uint8)  # all ink and no paper reads as a blank sheet
    for rgb, words in ((dot, "too small"), (mostly, "filled"), (black, "Draw a character")):
        analysis = analyse(lab, sketchpad_value(rgb), lab.slot_defaults())
        assert analysis.kind == "empty" and words in analysis.message and analysis.x28 is None


@pytest.mark.parametrize(
    ("name", "kind", "words"),
    [
        ("drawing.png", None, None),
        ("photo.jpg", None, None),
        ("transparent.png", None, None),
        ("white-on-black.png", None, None),
        ("blank.png", "empty", "No character found"),
        ("black.png", "empty", "No character found"),
        ("dot.png", "empty", "too small"),
        ("huge-pixels.png", "bad", "too large"),
        ("too-big.bmp", "bad", "too large"),
        ("not-an-image.png", "bad", "cannot read image"),
        ("empty.png", "bad", "cannot read image"),
        ("truncated.png", "bad", "cannot read image"),
    ],
)
def test_uploads_predict_or_explain(lab: ServedModels, files: dict[str, Path], name: str, kind: str | None,
                                    words: str | None) -> None:
    analysis = analyse(lab, str(files[name]), lab.slot_defaults())
    assert analysis.kind == kind, analysis.message
    if kind is None:
        assert analysis.message is None and all(s.ok for s in analysis.slots)
    else:
        assert words in analysis.message and str(files[name].parent) not in analysis.message
        answer = predict_json(lab, str(files[name]))
        assert answer["ok"] is False and words in answer["error"] and answer["input"] is None


def test_white_ink_and_transparency_read_like_black_ink(lab: ServedModels, files: dict[str, Path]) -> None:
    reference = analyse(lab, letter_a(), lab.slot_defaults()).x28
    for name in ("white-on-black.png", "transparent.png"):
        x28 = analyse(lab, str(files[name]), lab.slot_defaults()).x28
        assert np.abs(x28 - reference).mean() < 0.02, name


def test_agreement_merges_case() -> None:
    def slot(char: str) -> SlotResult:
        return SlotResult("m", Prediction("m", [(char, char, 0.9)], np.zeros(1), None, 1.0))

    assert Analysis(np.zeros((28, 28)), slots=[slot("c"), slot("C"), slot("C")]).agree is True
    assert Analysis(np.zeros((28, 28)), slots=[slot("a"), slot("A"), slot("A")]).agree is False
    assert Analysis(np.zeros((28, 28)), slots=[slot("c"), SlotResult("m", error="x")]).agree is None


def test_page_values_for_an_analysis(lab: ServedModels, canvases) -> None:
    analysis = analyse(lab, sketchpad_value(canvases[0][0]), lab.slot_defaults())
    values = shown(analysis)
    assert len(values.labels) == len(values.infos) == len(SLOTS)
    assert values.x28.shape == (28, 28) and values.preview.shape == (224, 224)
    assert "agree" in values.agreement
    for label, info in zip(values.labels, values.infos, strict=True):
        assert len(label) == 5 and " ms" in info
    maps = saliency_maps(lab, analysis.x28, [*lab.slot_defaults()[:2], None])
    assert maps[0].shape == maps[1].shape == (224, 224, 3) and maps[2] is None
    assert saliency_maps(lab, None, lab.slot_defaults()) == [None, None, None]
    empty = shown(analyse(lab, None, lab.slot_defaults()))
    assert empty.x28 is None and empty.preview is None and empty.status.startswith("✎") and empty.agreement == ""
    assert all(v in (None, "") for v in [*empty.labels, *empty.infos])


def test_clear_shows_the_ready_state_and_a_cleared_drawing_never_comes_back(tiny_models: Path,
                                                                           tiny_assets: Path, canvases) -> None:
    """The Sketchpad can deliver a change raised before Clear after it: the server ignores the drawing it cleared."""
    import gradio as gr

    import app

    tab = app.build_demo(tiny_models, tiny_assets).emnist_draw
    names, memory = tab.lab.slot_defaults(), CanvasMemory()
    first, second = (png_data_url(sketchpad_value(canvas)["layers"][0]) for canvas, _ in canvases[:2])
    drawn = tab.on_drawing(first, memory, *names)
    assert drawn[tab.x28] is not None and all(" ms" in drawn[info] for info in tab.infos)
    cleared = tab.on_clear(memory)
    assert cleared[tab.x28] is None and cleared[tab.preview] is None and cleared[tab.upload] is None
    assert cleared[tab.status].startswith("✎") and cleared[tab.agreement] == ""
    assert all(cleared[c] in (None, "") for c in [*tab.labels, *tab.infos, *tab.saliencies])
    assert tab.sketch not in cleared  # the page clears the canvas itself (CLEAR_JS): see webapp/draw.py
    late = tab.on_drawing(first, memory, *names)  # the cleared drawing, delivered late
    assert set(tab.answers()) <= set(late) and all(v == gr.skip() for v in late.values())
    assert tab.on_drawing(second, memory, *names)[tab.x28] is not None  # the next drawing is read
    assert tab.on_drawing(first, CanvasMemory(), *names)[tab.x28] is not None  # another visitor's is their own
    x28 = tab.on_drawing(second, memory, *names)[tab.x28]
    maps = tab.on_saliency(x28, True, memory, *names)
    assert all(maps[m] is not None for m in tab.saliencies)
    again = tab.on_saliency(x28, True, memory, *names)  # a step that found the newest drawing already mapped
    assert all(v == gr.skip() for v in again.values())
    assert all(v is None for v in tab.on_saliency(x28, False, memory, *names).values())  # maps turned off


def test_canvas_png_reads_like_the_sketchpad_value(lab: ServedModels, canvases) -> None:
    """The canvas sends its PNG; decoded, it is the Sketchpad's value form and gives the same model input."""
    value = sketchpad_value(canvases[0][0])
    decoded = canvas_value(png_data_url(value["layers"][0]))
    assert np.array_equal(decoded.layer, value["layers"][0])
    assert np.abs(decoded.composite.astype(int) - value["composite"].astype(int)).max() <= 1
    a, b = analyse(lab, value, lab.slot_defaults()), analyse(lab, decoded, lab.slot_defaults())
    assert np.allclose(a.x28, b.x28, atol=1e-2) and [r.prediction.char for r in a.slots] == [
        r.prediction.char for r in b.slots]
    assert canvas_value(None) is None and canvas_value("") is None


@pytest.mark.parametrize("value, words", [
    ("data:image/jpeg;base64,/9j/4AAQ", "PNG"), ("data:image/png;base64,not base64!", "decoded"),
    ("data:image/png;base64,iVBORw0KGgo=", "decoded"), (12, "PNG"), ({"composite": None}, "PNG"),
])
def test_canvas_values_that_no_canvas_sends_get_a_message(value, words: str) -> None:
    with pytest.raises(CanvasValueError, match=words):
        canvas_value(value)


def test_canvas_value_of_another_size_or_too_large_is_refused() -> None:
    with pytest.raises(CanvasValueError, match="400x400"):
        canvas_value(png_data_url(np.zeros((28, 28, 4), np.uint8)))
    with pytest.raises(CanvasValueError, match="too large"):
        canvas_value("data:image/png;base64," + "A" * 3_000_000)


def test_slot_with_another_model_and_empty_slot(lab: ServedModels, canvases) -> None:
    analysis = analyse(lab, sketchpad_value(canvases[0][0]), ["lenet5-balanced", None, "no-such-model"], k=3)
    assert analysis.slots[0].ok and len(analysis.slots[0].prediction.top) == 3
    assert analysis.slots[1].error == "No model in this slot."
    assert "unavailable" in analysis.slots[2].error and analysis.agree is None


def test_model_cards_and_summary(lab: ServedModels) -> None:
    card = model_card(lab, "lenet5-bymerge")
    for words in ("bymerge", "47 classes", "pool", "test accuracy", "weighted F1", "1 epoch", "trained in"):
        assert words in card
    assert "No model" in model_card(lab, None) and "Unknown" in model_card(lab, "nope")
    summary = models_summary(lab)
    assert summary["slots"] == dict(zip(SLOTS, lab.slot_defaults(), strict=True))
    assert [m["name"] for m in summary["models"]] == lab.slot_defaults()
    assert summary["models"][1]["labels"][12] == "C/c" and summary["unavailable"] == []
    json.dumps(summary)  # the API answer must be plain JSON


def test_a_kept_fine_tune_card_says_what_it_was_fine_tuned_on(lab: ServedModels) -> None:
    from recognizer.manifest import RecipeCard

    base = lab.models[0]
    kept = dataclasses.replace(base, name=f"{base.name}_kept", recipe=RecipeCard(
        finetuned_from={"name": base.name, "sha256": base.sha256}, kept_drawings={"train": 80, "val": 10, "test": 10},
        pool_images_per_epoch=10000, chosen_epoch=1, chosen_on="kept validation drawings"))
    (line,) = recipe_lines(kept)  # no recipe knobs (no lr): the card must not fail on them
    assert f"fine-tuned from **{base.name}**" in line and "80 kept drawings" in line and "epoch 1" in line


def test_model_card_headline_is_the_apps_own_accuracy(lab: ServedModels) -> None:
    """The card leads with the accuracy through ONNX Runtime (what the app gets), the training device's beside it."""
    for name in lab.slot_defaults():
        e = lab.entry(name)
        runtime, n = e.metrics.runtime_test_accuracy, e.metrics.runtime_n_test
        headline = model_card(lab, name).splitlines()[2]
        assert headline.startswith(f"test accuracy in this app **{percent(runtime)}** (ONNX Runtime on {n:,} test")
        trained = f"{percent(e.metrics.test_accuracy)} on the training device ({e.training.device})"
        assert trained in headline and headline.index(trained) > headline.index("ONNX Runtime")
        assert f"**{percent(runtime)}** | {percent(e.metrics.test_accuracy)} (" in models_table(lab)
    older = dataclasses.replace(lab.entry(name), metrics=EntryMetrics(test_accuracy=0.5))  # before runtime scores
    assert accuracy_line(older) == ("test accuracy **50.00% on the training device (cpu)** "
                                    "(not scored through this app's runtime)")
    gpu = dataclasses.replace(older, training=TrainingRecord(device="cuda", environment={"cuda_device": "NVIDIA H100"}))
    assert "on the training device (NVIDIA H100)" in accuracy_line(gpu)


def test_embedding_figure_labels_each_class_and_shows_the_drawing(lab: ServedModels, canvases) -> None:
    name = lab.slot_defaults()[0]
    x28 = analyse(lab, sketchpad_value(canvases[0][0]), [name]).x28
    points, _ = embedding_points(lab, name, "umap", None, x28)
    fig = embedding_figure(points, name)
    ax = fig.axes[0]
    classes = set(points["class"]) - {DRAWING}
    labels = {t.get_text(): t.get_position() for t in ax.texts}
    assert set(labels) == classes and len(classes) > 10  # every class written on the map, once
    for c, (cx, cy) in class_centres(points).items():  # at the median of its points
        mine = [i for i, k in enumerate(points["class"]) if k == c]
        assert labels[c] == pytest.approx((np.median(np.array(points["x"])[mine]),
                                           np.median(np.array(points["y"])[mine])))
        assert labels[c] == (cx, cy)
    star = [c for c in ax.collections if c.get_gid() == DRAWING_GID]
    assert len(star) == 1 and star[0].get_offsets().tolist() == [[points["x"][-1], points["y"][-1]]]
    others = [c for c in ax.collections if c is not star[0]]
    assert star[0].get_sizes()[0] >= 400 > max(c.get_sizes().max() for c in others)  # big
    assert star[0].get_zorder() > max([c.get_zorder() for c in others] + [t.get_zorder() for t in ax.texts])  # on top
    assert star[0].get_edgecolor()[0][:3].tolist() == [0, 0, 0]  # edged in black on a bright fill
    only, _ = embedding_points(lab, name, "umap", [points["class"][0]], None)
    ax = embedding_figure(only).axes[0]
    assert [t.get_text() for t in ax.texts] == [points["class"][0]]
    assert not [c for c in ax.collections if c.get_gid() == DRAWING_GID]


def test_embedding_map_places_the_drawing(lab: ServedModels, canvases) -> None:
    name = lab.slot_defaults()[0]
    assert [m for _, m in embedding_methods(lab, name)] == ["umap", "tsne"]
    points, note = embedding_points(lab, name, "umap", None, None)
    n = len(lab.embedding(name))
    assert len(points["x"]) == n and set(points) == {"x", "y", "class", "predicted", "correct"}
    assert "Draw something" in note
    x28 = analyse(lab, sketchpad_value(canvases[0][0]), [name]).x28
    points, note = embedding_points(lab, name, "tsne", None, x28)
    mine = [i for i, c in enumerate(points["class"]) if c == DRAWING]
    # One point since the map is a matplotlib figure (it drew a 13-point "+" when the scatter had one point size).
    assert len(mine) == 1 and mine[0] == n and DRAWING in note and "nearest" in note
    chosen = points["class"][0]
    only, _ = embedding_points(lab, name, "umap", [chosen], None)
    assert set(only["class"]) == {chosen} and 0 < len(only["x"]) < n


def test_maps_before_and_after_pretraining_are_offered(tiny_models: Path, tiny_assets: Path, tmp_path: Path,
                                                      canvases) -> None:  # fmt: skip
    """A pretrained model's file also holds its encoder's maps before and after pretraining: the Map choice lists
    them after the model's own, titled, and the drawing lands on them by the fine-tuned model's neighbours."""
    shutil.copytree(tiny_assets, tmp_path / "assets")
    name = ServedModels(tiny_models, tiny_assets).slot_defaults()[0]
    path = tmp_path / "assets" / "embeddings" / f"{name}.npz"
    with np.load(path) as raw:
        arrays = dict(raw)
    stages = {m: arrays["tsne" if m.startswith("umap") else "umap"] for m in STAGE_NAMES}
    np.savez_compressed(path, **arrays, **stages)
    lab = ServedModels(tiny_models, tmp_path / "assets")
    methods = embedding_methods(lab, name)
    assert [m for _, m in methods] == ["umap", "tsne", *STAGE_NAMES]
    assert methods[2][0] == STAGE_TITLES["umap_random"] and "before pretraining" in methods[2][0]
    x28 = analyse(lab, sketchpad_value(canvases[0][0]), [name]).x28
    points, note = embedding_points(lab, name, "umap_random", None, x28)
    assert len(points["x"]) == len(lab.embedding(name)) + 1 and "fine-tuned model's neighbours" in note


def test_mistakes_browser(lab: ServedModels) -> None:
    name = lab.slot_defaults()[1]
    items, note = mistakes(lab, name)
    emb = lab.embedding(name)
    assert len(items) == min(60, len(emb.mistakes())) and "misread" in note
    thumb, caption = items[0]
    assert thumb.shape == (84, 84) and " → " in caption
    true, predicted = caption.split(" → ")
    assert true != predicted
    filtered, _ = mistakes(lab, name, [true])
    assert filtered and all(c.startswith(f"{true} → ") for _, c in filtered)


def test_missing_embedding_says_so(lab: ServedModels, tiny_models: Path, tmp_path: Path) -> None:
    other = ServedModels(tiny_models, tmp_path)
    points, note = embedding_points(other, "lenet5-byclass", "umap")
    assert points["x"] == [] and "No map" in note and "embed" in note
    assert mistakes(other, "lenet5-byclass") == ([], "")
    assert "No results" in results_views(tmp_path / "results")[0].message


def test_results_view(tiny_assets: Path) -> None:
    folder = tiny_assets / "results"
    view = read_results(folder)
    assert view.message is None and [s.name for s in view.sections] == ["table8"]
    # The table's CSV is linked through Gradio's file route (the folder's README is for people: never read).
    assert f"[table8.csv](/gradio_api/file={(folder / 'table8.csv').resolve()})" in view.sections[0].body
    assert view.tables == [("table8", ["key", "test_accuracy", "report"],
                            [["byclass", "0.861", "88.27"], ["bymerge", "0.902", "91.0"]])]
    assert [caption for _, caption in view.images] == [
        "figures/table8-heatmap", "figures/table8-confusion", "figures/table8-bars"]


def test_each_profile_gets_its_own_results_view(tiny_assets: Path, tmp_path: Path) -> None:
    import shutil

    assets = tmp_path / "assets"
    shutil.copytree(tiny_assets / "results", assets / "results")
    paper = assets / "results" / "paper"
    shutil.copytree(assets / "results", paper, ignore=shutil.ignore_patterns("paper"))
    (paper / "table8.json").write_text(json.dumps({"table": "table8", "profile": "paper", "rows": []}))
    (paper / "README.md").write_text("# Paper profile\n")
    (paper / "runs" / "some-run").mkdir(parents=True)  # run records are not tables of the view
    (paper / "runs" / "some-run" / "history.csv").write_text("epoch,loss\n1,0.5\n")
    views = results_views(assets / "results")
    assert [v.label for v in views] == ["paper profile", "results"]
    assert views[0].overview.startswith("**paper** profile") and [t for t, _, _ in views[0].tables] == ["table8"]
    assert [s.name for s in views[1].sections] == ["table8"] and len(views[1].images) == 3


def test_two_results_folders_of_one_profile_say_what_they_hold(tmp_path: Path) -> None:
    """The reproduction's quick tables and the recipe's quick ablation: two tabs, neither just 'quick profile'."""
    top = tmp_path / "results"
    for folder, tables in ((top, {"table2": "Table 2: models", "table8": "Table 8: splits"}),
                           (top / "lab", {"lab": "Lab: augmentation and a longer recipe (ablation)"})):  # fmt: skip
        folder.mkdir(parents=True)
        (folder / "README.md").write_text("# Results\n")
        for name, title in tables.items():
            (folder / f"{name}.json").write_text(json.dumps({"table": name, "title": title, "profile": "quick",
                                                             "rows": []}))
    (top / "paper").mkdir()
    (top / "paper" / "README.md").write_text("# Paper\n")
    (top / "paper" / "table2.json").write_text(json.dumps({"table": "table2", "profile": "paper", "rows": []}))
    labels = [v.label for v in results_views(top)]
    assert labels == ["paper profile", "quick profile · 2 tables", "quick profile · Lab ablation"]


def _expected_verdict(claim: dict) -> str:
    return claim["verdict"] if "verdict" in claim else {True: "holds", False: "does not hold"}.get(claim["holds"],
                                                                                                  "not judged")


@pytest.mark.parametrize("folder", ["results", "results/paper"])
def test_committed_results_get_one_section_per_table(folder: str) -> None:
    """Each table of the committed results is a section: its verdicts first, its rows, its figures beside it."""
    path = REAL_ASSETS / folder
    tables = {p.stem: json.loads(p.read_text()) for p in path.glob("*.json") if p.stem != "winners"}
    if not tables:
        pytest.skip(f"no committed results in {path}")
    view = read_results(path)
    readme = (path / "README.md").read_text()
    order = [m.group(1) for m in re.finditer(r'^<a id="([^"]+)"></a>$', readme, re.MULTILINE)]
    assert [s.name.lower() for s in view.sections] == order and {s.name for s in view.sections} == set(tables)
    for section in view.sections:
        table = tables[section.name]
        assert section.title == table["title"] and section.problem is None
        assert len(section.verdicts) == len(table["claims"]) > 0
        for line, claim in zip(section.verdicts, table["claims"], strict=True):
            assert re.match(rf"- \S+ \*\*{re.escape(_expected_verdict(claim))}\*\*", line), line
            assert claim["text"] in line
        assert "|---" in section.body and "## " not in section.body and "![" not in section.body
        assert not any(c["text"] in section.body for c in table["claims"])  # the verdicts are not repeated
        assert f"[{section.name}.csv](/gradio_api/file=" in section.body
        figures = sorted(p.name for p in (path / "figures").glob(f"{section.name}-*.png")
                         if "-confusion-" not in p.name)
        assert sorted(Path(p).name for p, _ in section.figures) == figures and figures
    assert "| table | conclusion |" in view.overview and "(#table2)" not in view.overview
    assert view.loose_images == []
    assert len(view.overview.splitlines()) < len(readme.splitlines()) / 3  # the long page is cut into tabs


def test_results_sections_from_claims_with_intervals(tmp_path: Path) -> None:
    """Verdicts with intervals (``verdict``, ``interval``) and the older ``holds``; every table from its JSON (the
    README is never read), its CSV linked; an unreadable JSON says so."""
    claim = {"text": "A beats B", "kind": "best", "expect": "a", "basis": "validation", "verdict": "tie",
             "against": "b", "detail": "A is best on validation accuracy (90.00%)",
             "interval": {"diff": 0.0012, "low": -0.001, "high": 0.0034, "n": 12675,
                          "method": "paired bootstrap", "mcnemar_p": 0.31}}
    old = {"text": "C beats D", "kind": "best", "expect": "c", "basis": "test", "holds": False, "detail": "D wins"}
    (tmp_path / "t1.json").write_text(json.dumps({"table": "t1", "title": "Table 1: first (x)", "profile": "paper",
                                                  "rows": [], "claims": [claim, old]}))
    (tmp_path / "t9.json").write_text(json.dumps({"table": "t9", "title": "Nine", "rows": [], "claims": []}))
    (tmp_path / "t9.csv").write_text("key,acc\nx,0.5\n")
    (tmp_path / "README.md").write_text("# Head\n\nintro\n\n## Table 1: first (x)\n\n| run | acc |\n|---|---|\n"
                                        "| a | 90 |\n\n- Report: A beats B. Here: **tie**.\n- a note\n")
    view = read_results(tmp_path)
    assert view.label == "paper profile" and "| Table 1 | ≈ **tie**" in view.overview and "intro" not in view.overview
    first, nine = view.sections
    assert (first.name, first.tab, nine.tab) == ("t1", "Table 1", "Nine")
    assert first.verdicts[0].startswith("- ≈ **tie** (a − b = +0.12 pts [−0.10, +0.34], paired bootstrap over "
                                        "12,675 test images; McNemar p = 0.31) — the report: A beats B.")
    assert first.verdicts[1].startswith("- ✗ **does not hold** — the report: C beats D.")
    assert first.body.startswith("| row | test accuracy % |") and "A beats B" not in first.body
    assert f"[t9.csv](/gradio_api/file={(tmp_path / 't9.csv').resolve()})" in nine.body and nine.verdicts == []
    (tmp_path / "t9.json").write_text("{broken")
    assert read_results(tmp_path).sections[1].problem.startswith("⚠ Cannot read t9.json")


def test_results_tab_has_a_sub_tab_per_table(tiny_assets: Path) -> None:
    import gradio as gr

    views = results_views(REAL_ASSETS / "results") if (REAL_ASSETS / "results" / "README.md").exists() else []
    views = views or results_views(tiny_assets / "results")
    with gr.Blocks() as demo:
        build_results_tab(views)
    tabs = [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    for view in views:
        assert view.label in tabs
    expected = ["Results"] + [t for v in views for t in [v.label, "Overview", *(s.tab for s in v.sections)]]
    assert tabs == expected
    figures = [b.value["path"] for b in demo.blocks.values() if isinstance(b, gr.Image)]
    assert len(figures) == sum(len(s.figures) for v in views for s in v.sections) > 0


def test_no_manifest_still_builds(tmp_path: Path) -> None:
    import app

    demo = app.build_demo(tmp_path / "nothing", tmp_path / "assets")
    lab = demo.emnist_lab
    assert lab.problem and "no model manifest" in lab.problem and lab.slot_defaults() == [None, None, None]
    assert "No models are shipped yet" in status_markdown(lab)
    answer = predict_json(lab, letter_a())
    assert answer["ok"] is False and "No models" in answer["error"]
    assert models_summary(lab)["problem"] == lab.problem


# ---------------------------------------------------------------------------------------------
# Through the API


@pytest.fixture(scope="module", params=["tiny", "shipped"])
def served(request: pytest.FixtureRequest, tiny_models: Path, tiny_assets: Path):
    """The app on a free loopback port and a gradio_client Client for it."""
    if request.param == "shipped":
        if not (REAL_MODELS / "manifest.json").exists():
            pytest.skip(f"no shipped models in {REAL_MODELS} yet (python -m training export)")
        models, assets = REAL_MODELS, REAL_ASSETS
    else:
        models, assets = tiny_models, tiny_assets
    from gradio_client import Client

    import app

    demo = app.build_demo(models, assets)
    url = serve(demo)
    try:
        yield Client(url, verbose=False, download_files=False), demo.emnist_lab
    finally:
        demo.close()


def test_api_lists_only_the_named_endpoints(served) -> None:
    client, _ = served
    endpoints = client.view_api(return_format="dict", print_info=False)
    assert set(endpoints["named_endpoints"]) == {"/predict", "/models", "/keep"}
    assert endpoints["unnamed_endpoints"] == {}
    parameters = [p["parameter_name"] for p in endpoints["named_endpoints"]["/predict"]["parameters"]]
    assert parameters == ["image", "top_k", "include_input", "models", "only"]


def test_api_predict_real_drawings(served, canvases, tmp_path: Path) -> None:
    from gradio_client import handle_file

    client, lab = served
    for i, (rgb, _) in enumerate(canvases[:3]):
        path = tmp_path / f"drawing{i}.png"
        Image.fromarray(rgb).save(path)
        answer = client.predict(handle_file(str(path)), api_name="/predict")
        assert answer["ok"] is True and answer["error"] is None
        assert [m["slot"] for m in answer["models"]] == list(SLOTS)
        assert [m["model"] for m in answer["models"]] == lab.slot_defaults()
        for m in answer["models"]:
            check_top(m["top"])
            assert {"char", "display", "probability"} == set(m["top"][0]) and m["latency_ms"] > 0
        chars = [m["top"][0]["char"] for m in answer["models"]]
        from recognizer.labels import same_character

        assert answer["agree"] == all(same_character(chars[0], c) for c in chars[1:])
        assert np.asarray(answer["input"]).shape == (28, 28)


def test_api_predict_options(served, files: dict[str, Path]) -> None:
    from gradio_client import handle_file

    client, lab = served
    name = lab.slot_defaults()[2]
    answer = client.predict(handle_file(str(files["drawing.png"])), 3, False, name, api_name="/predict")
    assert answer["ok"] and answer["input"] is None and [m["model"] for m in answer["models"]] == [name]
    check_top(answer["models"][0]["top"], k=3)
    answer = client.predict(handle_file(str(files["drawing.png"])), 5, True, "no-such-model", api_name="/predict")
    assert answer["ok"] is False and "unavailable" in answer["models"][0]["error"]


@pytest.mark.parametrize(
    ("name", "words"),
    [("not-an-image.png", "cannot read image"), ("blank.png", "No character found"), ("dot.png", "too small"),
     ("black.png", "No character found"), ("huge-pixels.png", "too large"), ("too-big.bmp", "too large")],
)
def test_api_bad_files_get_a_message(served, files: dict[str, Path], name: str, words: str) -> None:
    from gradio_client import handle_file

    client, _ = served
    answer = client.predict(handle_file(str(files[name])), api_name="/predict")
    assert answer["ok"] is False and words in answer["error"] and "Traceback" not in answer["error"]
    assert answer["agree"] is None and all("top" not in m for m in answer["models"])


def test_api_reads_only_uploaded_files(served, files: dict[str, Path]) -> None:
    """A bare path string is not an upload: the server never opens a file a caller merely names."""
    client, _ = served
    answer = client.predict(str(files["drawing.png"]), api_name="/predict")
    assert answer["ok"] is False and "handle_file" in answer["error"] and answer["input"] is None


def test_api_good_odd_files(served, files: dict[str, Path]) -> None:
    from gradio_client import handle_file

    client, _ = served
    for name in ("transparent.png", "white-on-black.png", "photo.jpg"):
        answer = client.predict(handle_file(str(files[name])), api_name="/predict")
        assert answer["ok"] is True, (name, answer["error"])


def _top(answer: dict) -> list[list[str]]:
    return [[t["char"] for t in m.get("top", [])] for m in answer["models"]]


def test_api_rest_routes_answer_like_the_client(served, files: dict[str, Path]) -> None:
    """Plain HTTP as benchmarks/app_load.py sends it: an upload, then the queue (POST /call/predict and its
    SSE stream, many at once), the direct POST /run/predict and the raw POST /api/predict answer what
    gradio_client gets."""
    import asyncio
    import importlib.util

    import httpx
    from gradio_client import handle_file

    spec = importlib.util.spec_from_file_location("app_load", REPO / "benchmarks" / "app_load.py")
    load = sys.modules["app_load"] = importlib.util.module_from_spec(spec)  # its dataclass looks itself up there
    spec.loader.exec_module(load)
    client, _ = served
    names = ["drawing.png", "transparent.png", "photo.jpg"]
    expected = {n: _top(client.predict(handle_file(str(files[n])), 5, False, "", api_name="/predict")) for n in names}

    async def calls() -> tuple[list[dict], list[dict]]:
        async with httpx.AsyncClient(trust_env=False, timeout=60) as http:
            images = [await load.upload(http, client.src, files[n]) for n in names]
            queued = await asyncio.gather(*(load.call_predict(http, client.src, images[i % 3], f"s{i}")
                                            for i in range(9)))
            direct = [await load.run_predict(http, client.src, image) for image in images]
            raw = [await load.raw_predict(http, client.src, image)
                   for image in await load.prepare_images(http, client.src, [files[n] for n in names], "raw")]
        return queued, direct + raw

    queued, direct = asyncio.run(calls())
    assert [_top(a) for a in queued] == [expected[names[i % 3]] for i in range(9)]
    assert [_top(a) for a in direct] == [expected[n] for n in names] * 2
    assert all(a["ok"] and a["input"] is None for a in queued + direct)


def test_api_direct_route_reads_only_uploaded_files(served, files: dict[str, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """POST /run/predict skips the queue, not Gradio's upload-folder check: a named server file is refused before
    the endpoint runs (it never reaches ``predict_json``), while the same file uploaded is read and answered."""
    import httpx
    from gradio_client import handle_file

    from webapp import api

    client, _ = served
    read: list[object] = []
    predict_json = api.predict_json
    monkeypatch.setattr(api, "predict_json", lambda lab, image, *args, **kwargs: (
        read.append(image), predict_json(lab, image, *args, **kwargs))[1])
    named = {"path": str(files["drawing.png"]), "meta": {"_type": "gradio.FileData"}}
    response = httpx.post(f"{client.src}gradio_api/run/predict", json={"data": [named, 5, False, ""]},
                          timeout=60, trust_env=False)
    assert response.status_code == 500 and read == [], (response.status_code, response.text, read)
    uploaded = client.predict(handle_file(str(files["drawing.png"])), 5, False, "", api_name="/predict")
    assert uploaded["ok"] is True and len(read) == 1 and read[0] != str(files["drawing.png"])


def raw_post(url: str, body: bytes, **params: object):
    """``POST /api/predict`` with ``body`` as the request body, as curl --data-binary sends a file."""
    import httpx

    return httpx.post(f"{url}api/predict", content=body, params=params, timeout=60, trust_env=False)


def test_raw_route_answers_like_the_client(served, files: dict[str, Path]) -> None:
    from gradio_client import handle_file

    client, _ = served
    for name in ("drawing.png", "transparent.png", "photo.jpg"):
        expected = client.predict(handle_file(str(files[name])), 3, False, "", api_name="/predict")
        response = raw_post(client.src, files[name].read_bytes(), top_k=3, include_input="false")
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["ok"] and answer["input"] is None and _top(answer) == _top(expected)
    answer = raw_post(client.src, files["drawing.png"].read_bytes()).json()
    assert np.asarray(answer["input"]).shape == (28, 28) and all(len(m["top"]) == 5 for m in answer["models"])


@pytest.mark.parametrize(
    ("name", "status", "words"),
    [("not-an-image.png", 422, "cannot read image"), ("blank.png", 422, "No character found in the image"),
     ("dot.png", 422, "too small"), ("huge-pixels.png", 422, "too large"), ("truncated.png", 422, "cannot read"),
     ("empty.png", 400, "request body"), ("too-big.bmp", 413, "over 10 MB")],
)
def test_raw_route_bad_input_gets_a_status_and_a_message(served, files: dict[str, Path], name: str, status: int,
                                                         words: str) -> None:
    client, _ = served
    response = raw_post(client.src, files[name].read_bytes())
    assert response.status_code == status
    answer = response.json()
    assert answer["ok"] is False and words in answer["error"] and "Traceback" not in answer["error"]
    assert all("top" not in m for m in answer["models"])


def test_raw_route_bad_parameter(served, files: dict[str, Path]) -> None:
    client, _ = served
    response = raw_post(client.src, files["drawing.png"].read_bytes(), top_k="many")
    assert response.status_code == 400 and "top_k" in response.json()["error"]


def test_api_returns_sets_and_honours_only(served, files: dict[str, Path]) -> None:
    """Each model's answer carries its set (characters, best first), the coverage and the mode; only= keeps every
    answer to digits or letters, through gradio_client and the raw route; a mode that is none is refused."""
    from gradio_client import handle_file

    client, lab = served
    for only, kind in (("digits", str.isdigit), ("letters", str.isalpha)):
        answer = client.predict(handle_file(str(files["drawing.png"])), 5, False, "", only, api_name="/predict")
        raw = raw_post(client.src, files["drawing.png"].read_bytes(), only=only, include_input="false").json()
        for result in (answer, raw):
            assert result["ok"] and result["mode"] == only, result
            for m in result["models"]:
                assert m["mode"] == only and all(kind(t["char"]) for t in m["top"]), m
                entry = lab.entry(m["model"])
                if entry.answers is not None:  # the shipped models: calibrated sets at the app's level
                    assert m["set"] and all(kind(c[0]) for c in m["set"]) and m["coverage"] == lab.level
                    assert m["set"][0][0] == m["top"][0]["char"][0].upper() or m["set"][0] == m["top"][0]["char"]
                else:
                    assert m["set"] is None and m["coverage"] is None
    response = raw_post(client.src, files["drawing.png"].read_bytes(), only="shapes")
    assert response.status_code == 400 and "only='shapes'" in response.json()["error"]


def test_api_models(served) -> None:
    client, lab = served
    answer = client.predict(api_name="/models")
    assert answer["problem"] is None
    assert answer["slots"] == dict(zip(SLOTS, lab.slot_defaults(), strict=True))
    assert {m["name"] for m in answer["models"]} == {e.name for e in lab.models}
    first = answer["models"][0]
    assert {"split", "protocol", "profile", "metrics", "training", "labels", "providers"} <= set(first)
    assert "test_accuracy" in first["metrics"] and first["providers"] == ["CPUExecutionProvider"]
    assert isinstance(answer["unavailable"], list)


def test_corrupt_model_is_listed_as_unavailable(tiny_models: Path, tiny_assets: Path, tmp_path: Path,
                                                files: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    from gradio_client import Client, handle_file

    import app

    broken = tmp_path / "models"
    shutil.copytree(tiny_models, broken)
    onnx = broken / "lenet5-bymerge.onnx"
    onnx.write_bytes(onnx.read_bytes()[:1000] + b"garbage")
    (broken / "lenet5-balanced.onnx").unlink()
    with caplog.at_level(logging.INFO, logger="webapp"):
        demo = app.build_demo(broken, tiny_assets)
    lab = demo.emnist_lab
    started = {r.getMessage() for r in caplog.records if r.name == "webapp"}  # the server's log names each
    assert any("skipped model lenet5-bymerge" in m and "sha256" in m for m in started), started
    assert any("skipped model lenet5-balanced" in m and "missing" in m for m in started), started
    assert any(m.startswith("serving 1 model(s)") and "lenet5-byclass" in m for m in started), started
    notice = page_notice(lab)  # the page says which are unavailable, never where the server keeps them
    assert "lenet5-bymerge" in notice and str(broken) not in notice and "/" not in notice
    assert set(lab.unavailable) == {"lenet5-bymerge", "lenet5-balanced"}
    assert "sha256" in lab.unavailable["lenet5-bymerge"] and "missing" in lab.unavailable["lenet5-balanced"]
    assert "lenet5-bymerge** is unavailable" in status_markdown(lab)
    url = serve(demo)
    try:
        client = Client(url, verbose=False, download_files=False)
        summary = client.predict(api_name="/models")
        assert {u["name"] for u in summary["unavailable"]} == {"lenet5-bymerge", "lenet5-balanced"}
        assert all(u["reason"] for u in summary["unavailable"]) and [m["name"] for m in summary["models"]] == [
            "lenet5-byclass"]
        answer = client.predict(handle_file(str(files["drawing.png"])), api_name="/predict")
        assert answer["ok"] is True and [m["model"] for m in answer["models"]] == ["lenet5-byclass", None, None]
        assert answer["models"][1]["error"] == "No model in this slot."
    finally:
        demo.close()


def test_the_page_s_empty_canvas_reads_as_nothing_drawn_and_a_value_without_a_png_is_refused() -> None:
    """The page sends its empty canvas as null, as the canvas's own value; a dict without a PNG from anything else is
    refused."""
    assert canvas_value(None) is None
    with pytest.raises(CanvasValueError):
        canvas_value('{"png": null, "strokes": []}')
