"""Shared by the app's tests and benchmarks: tiny real models, assets, and EMNIST images drawn on a canvas.

``build_models`` trains LeNet-5 for one epoch on 200 images of each comparison split of the shipped
fixture (tests/fixtures/emnist) and exports them with ``training.export`` exactly as the real
export does; ``write_embeddings`` and ``write_results`` add the assets the app reads. The models
are nearly untrained: the tests check the app's plumbing, not accuracy.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from recognizer.preprocess import sketchpad_value  # noqa: F401 - the tests and benchmarks take it from here

REPO = Path(__file__).resolve().parents[1]
FIXTURE_ROOT = REPO / "tests" / "fixtures" / "emnist"
# The shipped models and assets; the variables point the tests at another export (e.g. one being prepared).
REAL_MODELS = Path(os.environ.get("EMNIST_APP_MODELS", REPO / "exported_models"))
REAL_ASSETS = Path(os.environ.get("EMNIST_APP_ASSETS", REPO / "assets"))
SPLITS = ("byclass", "bymerge", "balanced")
CANVAS = 400


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for a block (session fixtures cannot use monkeypatch)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def fixture_data(work: Path) -> Iterator[Path]:
    """The data root is the shipped fixture; cache and runs go under ``work``. For module-scoped fixtures
    (conftest's ``emnist_env`` does the same per test); the trainer reads the folders at call time."""
    variables = {"EMNIST_ROOT": str(FIXTURE_ROOT), "EMNIST_CACHE": str(work / "cache"), "RUNS_DIR": str(work / "runs")}
    with environment(**variables):
        yield FIXTURE_ROOT


def train_tiny(family: str, split: str = "byclass", epochs: int = 1, limit_train: int = 200) -> str:
    """One short CPU run on the fixture (inside ``fixture_data``); returns its run id."""
    from training.config import RunConfig
    from training.trainer import train

    config = RunConfig(model=family, split=split, protocol="pool", epochs=epochs, limit_train=limit_train,
                       batch_size=100, profile="test")  # fmt: skip
    return train(config, device="cpu", progress=False).run_id


def build_models(out: Path, work: Path, splits: tuple[str, ...] = SPLITS, epochs: int = 1,
                 limit_train: int = 200) -> Path:
    """Train tiny LeNet-5s on the fixture and export them to ``out`` with the real export step."""
    with fixture_data(work):
        from training import export

        argv = ["--out", str(out), "--runs-dir", str(work / "runs"), "--exporter", "legacy", "--quiet"]
        for split in splits:
            run_id = train_tiny("lenet5", split, epochs, limit_train)
            argv += ["--run", run_id, "--name", f"lenet5-{split}", "--slot", split]
        code = export.main(argv)
    if code != 0:
        raise RuntimeError(f"training.export failed with exit code {code}")
    return out


def dataset_images(split: str, n: int | None = None, root: Path = FIXTURE_ROOT) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Upright uint8 test images, labels and the split's characters (from the fixture unless told)."""
    from training.data import load_split

    with environment(EMNIST_ROOT=str(root)):
        data = load_split(split, "pool", root=root)
    x, y = data.parts["test"]
    return (x[:n], y[:n], data.chars) if n else (x, y, data.chars)


def canvas_image(thumb: np.ndarray, size: int = CANVAS, glyph: int = 300) -> np.ndarray:
    """An EMNIST image (bright ink on black) drawn large in black ink on a white canvas, as RGB uint8."""
    big = Image.fromarray(np.asarray(thumb, np.uint8)).resize((glyph, glyph), Image.Resampling.BICUBIC)
    canvas = Image.new("L", (size, size), 255)
    canvas.paste(Image.fromarray(255 - np.asarray(big)), ((size - glyph) // 2, (size - glyph) // 2))
    return np.asarray(canvas.convert("RGB"))


def letter_a(size: int = CANVAS, width: int = 22) -> np.ndarray:
    """A hand-drawn-looking capital A in black on white (RGB), for when no dataset image is needed."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    s = size / 400
    for a, b in [((200, 60), (110, 340)), ((200, 60), (290, 340)), ((145, 230), (255, 230))]:
        draw.line([(a[0] * s, a[1] * s), (b[0] * s, b[1] * s)], fill="black", width=int(width * s))
    return np.asarray(image)


def write_embeddings(models_dir: Path, assets_dir: Path, n: int | None = None) -> Path:
    """A small embeddings file per model following the contract, with PCA coordinates standing in for the maps."""
    from recognizer.inference import Recognizer

    out = assets_dir / "embeddings"
    out.mkdir(parents=True, exist_ok=True)
    recognizer = Recognizer(models_dir)
    for entry in recognizer.models:
        x, y, _ = dataset_images(entry.split, n)
        probs, features = recognizer.predict_batch(entry.name, x.astype(np.float32) / 255.0)
        centred = features - features.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        coords = centred @ vt[:3].T
        np.savez_compressed(
            out / f"{entry.name}.npz",
            features=features.astype(np.float16), labels=y.astype(np.uint8), preds=probs.argmax(1).astype(np.uint8),
            thumbs=x.astype(np.uint8), umap=coords[:, :2].astype(np.float32), tsne=coords[:, 1:3].astype(np.float32),
        )
    return out


def write_results(assets_dir: Path) -> Path:
    """A results folder laid out as training.reproduce writes it: README.md, tables as CSV and JSON, figures/."""
    folder = assets_dir / "results"
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(
        "# Reproduced results\n\n| split | ours | report |\n|---|---|---|\n| byclass | 86.1 | 88.27 |\n\n"
        "[table8.csv](table8.csv) · [report](https://example.org/report.pdf)\n\n"
        "![table8-heatmap](figures/table8-heatmap.png)\n", encoding="utf-8")
    (folder / "table8.csv").write_text("key,test_accuracy,report\nbyclass,0.861,88.27\nbymerge,0.902,91.0\n",
                                       encoding="utf-8")
    (folder / "table8.json").write_text(json.dumps({"table": "table8", "rows": []}), encoding="utf-8")
    for name, colour in (("table8-bars", "seagreen"), ("table8-confusion", "darkorange"),
                         ("table8-heatmap", "steelblue")):
        Image.new("RGB", (120, 90), colour).save(folder / "figures" / f"{name}.png")
    return folder


def make_assets(models_dir: Path, assets_dir: Path) -> Path:
    write_embeddings(models_dir, assets_dir)
    write_results(assets_dir)
    return assets_dir


def shipped_or_tiny_models(work: Path) -> tuple[Path, Path]:
    """The shipped models and assets where they are, else tiny real ones trained on the fixture under ``work``."""
    if (REAL_MODELS / "manifest.json").exists():
        return REAL_MODELS, REAL_ASSETS
    built = build_models(work / "exported_models", work)
    return built, make_assets(built, work / "assets")


def serve(demo) -> str:
    """Start the app on a free loopback port and return its URL. Gradio picks the port by starting the server on it
    (the first of 7860-7959 it can bind), so no other process can take the port between the choice and the bind."""
    import app

    _, url, _ = app.launch(demo, port=None, prevent_thread_lock=True, quiet=True)
    return url


def free_port() -> int:
    """A port free at the moment of asking, for a server started in another process (benchmarks/app_load.py): another
    process may take it before that server binds it, so in-process servers use ``serve``."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
