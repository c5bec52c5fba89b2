"""2-D maps of each exported model's feature space, for the app's embedding browser.

    python -m training embed                                  # every model of exported_models/
    python -m training embed --samples 5000 --methods umap tsne pixel_umap

For each model of the manifest: a seeded, class-stratified sample of its split's test part, its
penultimate features and predictions computed through ONNX Runtime with
``recognizer.inference.Recognizer.predict_batch`` (the app's own path, so a drawing placed on the
map lands in the same feature space), and the maps:

- ``umap``: UMAP of the features (n_neighbors 15, min_dist 0.1, random_state 42);
- ``tsne``: t-SNE of the features' first 50 principal components (init pca, random_state 42);
- ``pixel_umap``: UMAP of the raw pixels (the reports' Figure 1 view). It depends only on the
  sample, so it is computed once per split and shared by that split's models.

A model fine-tuned from a self-supervised pretraining (its run's ``init_from``, Study B's ``ssl_cnn``) gets
the same sample mapped from its encoder before and after that pretraining too (``pretraining_maps``:
``umap_random``, ``tsne_random`` from the encoder's first, random weights; ``umap_pretrained``,
``tsne_pretrained`` from the pretrained encoder, before fine-tuning), read from the pretraining's folder in
``--runs-dir``, and a figure of the three stages side by side (``<model name>-stages.png``). Study B's
models are mapped on the full MNIST test set (their test part is the report's 100 images).

Writes ``<out>/<model name>.npz`` (features float16, labels, preds, thumbs uint8 upright 28x28, one
(n, 2) float32 array per map, and ``index``: the sample's positions in the test part), a PNG per map
(``<model name>-<map>.png``) and ``index.json`` (models, maps, sample sizes, timings).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import warnings
from pathlib import Path

# t-SNE's OpenMP threads spin while they wait; on a busy 2-core machine that made a 300-point t-SNE
# ten times slower (52 s against 5 s). Passive waiting costs nothing measurable when cores are free.
# It must be set before scikit-learn (and torch) load their OpenMP runtimes, which read it once: here when this
# module is run itself, in training/__main__.py for `python -m training embed` (and only for the embed step).
if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only, never a window; before pyplot is imported

import matplotlib.patheffects as pe  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from tqdm import tqdm  # noqa: E402

from recognizer.embeddings import MAP_NAMES, MAP_TITLES, STAGE_TITLES, class_colours, map_title  # noqa: E402
from recognizer.files import sha256_bytes, write_atomic, write_json  # noqa: E402
from recognizer.inference import Recognizer  # noqa: E402
from recognizer.labels import MERGED_SPLITS  # noqa: E402
from recognizer.manifest import ManifestError, ModelEntry  # noqa: E402
from training import ssl  # noqa: E402
from training.data import DataError, SplitCache, SplitData  # noqa: E402
from training.paths import embeddings_dir, models_dir, runs_dir  # noqa: E402
from training.utils import environment, stratified_subset  # noqa: E402

METHODS = MAP_NAMES  # umap, tsne, pixel_umap
SEED = 42
UMAP_SETTINGS = {"n_neighbors": 15, "min_dist": 0.1, "random_state": SEED}
TSNE_PCA = 50


# ---------------------------------------------------------------------------------------------
# Maps and pictures


def umap_map(points: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state": seeded UMAP runs on one thread
        import umap  # optional and slow to import (numba compiles): only when a UMAP is asked for

        neighbours = min(UMAP_SETTINGS["n_neighbors"], len(points) - 1)
        reducer = umap.UMAP(n_components=2, **{**UMAP_SETTINGS, "n_neighbors": neighbours})
        return reducer.fit_transform(points.astype(np.float32)).astype(np.float32)


def tsne_map(points: np.ndarray, max_iter: int = 1000) -> np.ndarray:
    from sklearn.manifold import TSNE  # slow to import: only when a t-SNE is asked for

    points = points.astype(np.float32)
    components = min(TSNE_PCA, points.shape[1], len(points))
    reduced = PCA(n_components=components, random_state=SEED).fit_transform(points) if components < points.shape[1] \
        else points
    perplexity = min(30.0, max(2.0, (len(points) - 1) / 3.0))  # t-SNE needs perplexity < n
    tsne = TSNE(n_components=2, init="pca", random_state=SEED, perplexity=perplexity, max_iter=max_iter,
                learning_rate="auto")
    return tsne.fit_transform(reduced).astype(np.float32)


def compute_map(method: str, features: np.ndarray, pixels: np.ndarray, tsne_max_iter: int = 1000) -> np.ndarray:
    if method == "umap":
        return umap_map(features)
    if method == "tsne":
        return tsne_map(features, tsne_max_iter)
    if method == "pixel_umap":
        return umap_map(pixels.reshape(len(pixels), -1).astype(np.float32) / 255.0)
    raise ValueError(f"unknown map {method!r}; known: {METHODS}")


def plot_map(path: Path, coords: np.ndarray, labels: np.ndarray, chars: list[str], title: str) -> None:
    """A scatter coloured by class, with each class's character at its centroid."""
    fig, ax = plt.subplots(figsize=(8, 8), dpi=110)
    draw_map(ax, coords, labels, chars, title)
    save_figure(fig, path)


def draw_map(ax: plt.Axes, coords: np.ndarray, labels: np.ndarray, chars: list[str], title: str) -> None:
    colours = np.array([matplotlib.colors.to_rgb(c) for c in class_colours(len(chars))])
    ax.scatter(coords[:, 0], coords[:, 1], c=colours[labels], s=4, alpha=0.6, linewidths=0)
    for c in np.unique(labels):
        centre = np.median(coords[labels == c], axis=0)
        ax.text(centre[0], centre[1], chars[c], fontsize=11, fontweight="bold", ha="center", va="center",
                color=colours[c] * 0.6, path_effects=[pe.withStroke(linewidth=3, foreground="white")])
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def save_figure(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    picture = io.BytesIO()
    fig.savefig(picture, format="png")
    plt.close(fig)
    return write_atomic(path, picture.getvalue())


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    packed = io.BytesIO()
    np.savez_compressed(packed, **arrays)
    write_atomic(path, packed.getvalue())


# ---------------------------------------------------------------------------------------------
# One model


def sample_test(labels: np.ndarray, samples: int, seed: int = SEED) -> np.ndarray:
    """A seeded sample of the test part keeping the class proportions (all of it when smaller)."""
    return stratified_subset(labels, samples, seed)


def model_maps(entry: ModelEntry, features: np.ndarray, thumbs: np.ndarray, idx: np.ndarray, methods: list[str],
               pixel_maps: dict, tsne_max_iter: int, progress: bool) -> tuple[dict[str, np.ndarray], dict]:
    """Each asked-for map of one model's sample, and the seconds each took."""
    maps: dict[str, np.ndarray] = {}
    timings: dict = {}
    bar = tqdm(methods, desc=entry.name, leave=False, disable=not progress)
    for method in bar:
        bar.set_postfix_str(f"{method} of {len(idx):,} points")
        started = time.perf_counter()
        if method == "pixel_umap":
            # Depends only on the sample, which is the same for every model of a split: compute once.
            key = (entry.split, entry.protocol, sha256_bytes(idx.tobytes()))
            if key not in pixel_maps:
                pixel_maps[key] = compute_map(method, features, thumbs)
            else:
                timings["pixel_umap_reused"] = True
            maps[method] = pixel_maps[key]
        else:
            maps[method] = compute_map(method, features, thumbs, tsne_max_iter)
        timings[method] = round(time.perf_counter() - started, 2)
    return maps, timings


def plot_maps(out: Path, entry: ModelEntry, maps: dict[str, np.ndarray], labels: np.ndarray,
              accuracy: float, source: str) -> dict[str, str]:  # fmt: skip
    """A PNG per map; returns the file name of each."""
    pngs = {}
    for method, coords in maps.items():
        png = out / f"{entry.name}-{method}.png"
        sample = f"{len(labels):,} images of {source}, coloured by true class"
        if method == "pixel_umap":  # no model involved: the same picture for every model of the split
            title = f"{entry.split}: {MAP_TITLES[method]} (the reports' Figure 1 view)\n{sample}"
        else:
            title = f"{entry.name}: {map_title(method)}\n{sample}; model accuracy on them {accuracy:.1%}"
        plot_map(png, coords, labels, entry.labels, title)
        pngs[method] = png.name
    return pngs


def test_images(data: SplitData) -> tuple[np.ndarray, np.ndarray, str]:
    """The images a model is mapped on and what they are: its split's test part; for Study B the full MNIST test
    set, which its table is judged on (its test part is the report's 100 images)."""
    if "mnist_test" in data.extra_tests:
        return *data.extra_tests["mnist_test"], "the MNIST test set"
    return *data.parts["test"], f"the {data.name} ({data.protocol}) test part"


def encoder_stages(folder: Path, thumbs: np.ndarray) -> dict[str, np.ndarray]:
    """Features of ``thumbs`` from a pretraining's encoder as it started (the same seeded random weights, built as
    ``ssl.pretrain`` built them) and as it ended (``encoder.pt``)."""
    config = ssl.PretrainConfig(**json.loads((folder / "config.json").read_text()))
    torch.manual_seed(config.seed)
    encoder = ssl.TwoViews(config).encoder
    images = torch.from_numpy(np.ascontiguousarray(thumbs))
    stages = {"random": ssl.features(encoder, images).numpy()}
    encoder.load_state_dict(torch.load(folder / ssl.ENCODER, map_location="cpu", weights_only=True))
    stages["pretrained"] = ssl.features(encoder, images).numpy()
    return stages


def pretraining_maps(entry: ModelEntry, thumbs: np.ndarray, runs: Path,
                     tsne_max_iter: int) -> tuple[dict[str, np.ndarray], dict]:  # fmt: skip
    """UMAP and t-SNE of the sample from the model's encoder before and after its self-supervised pretraining;
    nothing for a model without one, or (with a message) when the pretraining's folder is not in ``runs``."""
    init_from = entry.training.init_from
    if not init_from:
        return {}, {}
    folder = runs / init_from
    if not (folder / ssl.DONE).is_file():
        print(f"{entry.name}: no finished pretraining {init_from} in {runs}: its maps before fine-tuning are left out "
              "(--runs-dir)", file=sys.stderr)  # fmt: skip
        return {}, {}
    maps, timings = {}, {}
    for stage, features in encoder_stages(folder, thumbs).items():
        for method in ("umap", "tsne"):
            started = time.perf_counter()
            maps[f"{method}_{stage}"] = compute_map(method, features, thumbs, tsne_max_iter)
            timings[f"{method}_{stage}"] = round(time.perf_counter() - started, 2)
    return maps, timings


def plot_stages(out: Path, entry: ModelEntry, maps: dict[str, np.ndarray], labels: np.ndarray) -> str | None:
    """UMAP (top) and t-SNE (bottom) of the sample before pretraining, after it, and after fine-tuning."""
    if not set(STAGE_TITLES) <= set(maps):
        return None
    fig, axes = plt.subplots(2, 3, figsize=(15, 10), dpi=90)
    stages = (("random", "before pretraining (random encoder)"), ("pretrained", "after self-supervised pretraining"),
              (None, "after fine-tuning on 400 labels"))  # fmt: skip
    for row, method in enumerate(("umap", "tsne")):
        for col, (stage, title) in enumerate(stages):
            draw_map(axes[row, col], maps[f"{method}_{stage}" if stage else method], labels, entry.labels,
                     f"{'UMAP' if method == 'umap' else 't-SNE'} {title}")  # fmt: skip
    fig.suptitle(f"{entry.name}: {len(labels):,} MNIST test images, coloured by true class", fontsize=12)
    return save_figure(fig, out / f"{entry.name}-stages.png").name


def embed_model(recognizer: Recognizer, name: str, splits: SplitCache, out: Path, methods: list[str],
                samples: int, pixel_maps: dict, tsne_max_iter: int = 1000, progress: bool = True,
                runs: Path | None = None) -> dict:  # fmt: skip
    """Features, predictions and maps of one exported model (and of its encoder's earlier stages, when it was
    pretrained); returns its index.json record."""
    entry = recognizer.entry(name)
    x, y, source = test_images(splits.get(entry.split, entry.protocol or "auto"))
    idx = sample_test(y, samples)
    thumbs, labels = x[idx], y[idx]
    started = time.perf_counter()
    probs, features = recognizer.predict_batch(name, thumbs.astype(np.float32) / 255.0)
    timings = {"features": round(time.perf_counter() - started, 2)}
    if features.shape[1] == 0:
        raise ValueError(f"{name} has no features output")
    preds = probs.argmax(1)
    maps, map_timings = model_maps(entry, features, thumbs, idx, methods, pixel_maps, tsne_max_iter, progress)
    stage_maps, stage_timings = pretraining_maps(entry, thumbs, runs or runs_dir(), tsne_max_iter)
    maps, map_timings = {**maps, **stage_maps}, {**map_timings, **stage_timings}

    small_labels = np.uint8 if len(entry.labels) <= 255 else np.int64
    npz = out / f"{name}.npz"
    save_npz(npz, {
        "features": features.astype(np.float16),
        "labels": labels.astype(small_labels),
        "preds": preds.astype(small_labels),
        "thumbs": np.ascontiguousarray(thumbs, dtype=np.uint8),
        "index": idx.astype(np.int64),
        **{m: a.astype(np.float32) for m, a in maps.items()},
    })
    accuracy = float((preds == labels).mean())
    return {
        "name": name,
        "file": npz.name,
        "family": entry.family,
        "split": entry.split,
        "protocol": entry.protocol,
        "merged": entry.split in MERGED_SPLITS,
        "n": int(len(idx)),
        "n_test": int(len(y)),
        "classes": len(entry.labels),
        "feature_dim": int(features.shape[1]),
        "sample_accuracy": accuracy,
        "methods": list(maps),
        "png": plot_maps(out, entry, maps, labels, accuracy, source),
        "stages_png": plot_stages(out, entry, maps, labels),
        "pretraining": entry.training.init_from,
        "seconds": {**timings, **map_timings},
        "model_sha256": entry.sha256,
    }


# ---------------------------------------------------------------------------------------------
# Every model, and index.json


def chosen_names(recognizer: Recognizer, wanted: list[str] | None, models: Path) -> list[str]:
    """The loadable models of the manifest (only ``wanted`` ones when given); unknown names are reported."""
    for name, reason in recognizer.unavailable.items():
        print(f"skipping {name}: {reason}", file=sys.stderr)
    names = [e.name for e in recognizer.models]
    if wanted:
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            print(f"no loadable model named {unknown} in {models}; available: {names}", file=sys.stderr)
        names = [n for n in names if n in wanted]
    return names


def earlier_records(out: Path) -> dict[str, dict]:
    """index.json's records of earlier maps whose files are still there (kept beside the new ones)."""
    try:
        records = {r["name"]: r for r in json.loads((out / "index.json").read_text()).get("models", [])}
    except (OSError, json.JSONDecodeError, KeyError, AttributeError, TypeError):
        return {}
    return {n: r for n, r in records.items() if (out / r.get("file", "")).is_file()}


def write_index(out: Path, records: dict[str, dict], samples: int, tsne_max_iter: int) -> Path:
    index = {
        "models": sorted(records.values(), key=lambda r: r["name"]),
        "methods": {m: MAP_TITLES[m] for m in METHODS},
        "stage_maps": STAGE_TITLES,
        "settings": {"samples": samples, "seed": SEED, "umap": UMAP_SETTINGS,
                     "tsne": {"pca_components": TSNE_PCA, "init": "pca", "random_state": SEED,
                              "perplexity": 30, "max_iter": tsne_max_iter}},
        "environment": environment(),
    }
    return write_json(out / "index.json", index, indent=1, newline=True)


def embed_all(recognizer: Recognizer, names: list[str], out: Path, args: argparse.Namespace) -> list[str]:
    """Every named model mapped into ``out`` and recorded in index.json; returns the names that failed."""
    records = earlier_records(out)
    splits, pixel_maps, failed = SplitCache(), {}, []
    for name in tqdm(names, desc="embed", disable=args.quiet):
        started = time.perf_counter()
        try:
            record = embed_model(recognizer, name, splits, out, args.methods, args.samples, pixel_maps,
                                 args.tsne_max_iter, progress=not args.quiet, runs=args.runs_dir)
        except (DataError, ValueError) as err:
            print(f"FAILED {name}: {err}", file=sys.stderr)
            failed.append(name)
            continue
        record["seconds"]["total"] = round(time.perf_counter() - started, 2)
        records[name] = record
        tqdm.write(f"{name}: {record['n']:,} points, {record['feature_dim']}-d features, maps "
                   + ", ".join(f"{m} {record['seconds'][m]:.1f} s" for m in record["methods"]))
    write_index(out, records, args.samples, args.tsne_max_iter)
    return failed


# ---------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", type=Path, help="exported models (manifest.json; default: $MODELS_DIR or "
                                                    "exported_models/)")
    parser.add_argument("--out", type=Path, help="where the maps go (default: $EMBEDDINGS_DIR or assets/embeddings)")
    parser.add_argument("--runs-dir", type=Path, help="run folders holding a pretrained model's pretraining, for its "
                                                      "maps before fine-tuning (default: $RUNS_DIR or runs/)")
    parser.add_argument("--samples", type=int, default=5000, help="test images per model (all when fewer)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--names", nargs="+", help="only these models (default: all in the manifest)")
    parser.add_argument("--tsne-max-iter", type=int, default=1000, help="t-SNE iterations (at least 250)")
    parser.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    models = args.models or models_dir()
    try:
        recognizer = Recognizer(models, intra_op_num_threads=os.cpu_count() or 1)
    except ManifestError as err:
        print(f"embed: {err}", file=sys.stderr)
        return 1
    names = chosen_names(recognizer, args.names, models)
    if not names:
        print(f"embed: no models to map in {models}", file=sys.stderr)
        return 1
    out: Path = args.out or embeddings_dir()
    out.mkdir(parents=True, exist_ok=True)
    failed = embed_all(recognizer, names, out, args)
    print(f"wrote {len(names) - len(failed)} embedding(s) to {out}")
    return 1 if failed and len(failed) == len(names) else (3 if failed else 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training embed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
