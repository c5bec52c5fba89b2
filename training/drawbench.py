"""A drawing-domain benchmark: held-out EMNIST writers redrawn as canvas strokes and as photos of paper.

    python -m training drawbench                       # every letter model of exported_models/ -> assets/drawbench/
    python -m training drawbench --per-class 10 --out /tmp/bench

The scans EMNIST is made of are not what the app receives. This benchmark takes images from the pool's *test*
part only (DATA.md's keyed hash, code 9: no split ever trains or validates on them), a fixed number per merged
class, and for each one:

1. thins it to its skeleton (scikit-image, at 2x: 56x56) and joins 8-neighbouring skeleton pixels into strokes;
2. redraws the strokes with a uniform round brush, black on a 400x400 white canvas, at a random size, slant,
   rotation, aspect, place and brush width (2x supersampled, so edges are anti-aliased as a browser's are), and
   hands it over as the Sketchpad does (opaque RGBA composite, the ink in a layer's alpha): variant ``canvas``;
3. from the same strokes, two photo-like variants, each sent as JPEG bytes as an upload is: ``paper`` (grey
   paper, grey ink, a little blur, JPEG) and ``photo`` (also uneven light, a tint and sensor noise);
4. sends every rendering through ``recognizer.preprocess.to_model_input`` (the app's preprocessing) and every
   model of the manifest through ``recognizer.inference.Recognizer`` (the app's ONNX Runtime sessions).

Scoring is in the 47 merged classes (``recognizer.labels.merge_key``): a byclass model's 'c' counts for a true 'C',
since case cannot be told apart for those 15 letters; every other class must be exact. Top-3: the truth is among
the folded characters of the model's three most probable classes. A rendering the preprocessing refuses counts as
wrong for every model. Beside each figure: the same model on the same source images as they are (``plain``, the
EMNIST form), scored the same way, and the manifest's whole-test-part runtime accuracy. Renderings are seeded per
source image, so the set is the same on every machine with the same library versions (Pillow's JPEG included).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from skimage.morphology import skeletonize  # noqa: E402
from tqdm import tqdm  # noqa: E402

from recognizer import ink, preprocess  # noqa: E402
from recognizer import inputs as input_forms  # noqa: E402
from recognizer.files import write_atomic, write_json  # noqa: E402
from recognizer.inference import Recognizer  # noqa: E402
from recognizer.labels import LETTER_SPLITS, MERGED_CHARS, folded_hits  # noqa: E402
from recognizer.preprocess import InputError, gaussian_blur, sketchpad_value, to_model_input  # noqa: E402
from training.data import Pool, cache_dir, default_root, load_pool  # noqa: E402
from training.paths import REPO_ROOT, models_dir, runs_dir  # noqa: E402
from training.records import TableResult  # noqa: E402
from training.runfolder import load_trained  # noqa: E402
from training.utils import environment  # noqa: E402

VARIANTS = ("canvas", "paper", "photo")
TEST_PART = 9  # DATA.md: the keyed hash's test code
SKELETON_SCALE = 2  # skeletons are taken at 56x56: smoother strokes than at 28, still one pass of a few ms
NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (1, -1))  # each 8-neighbour pair once
DEFAULT_OUT = REPO_ROOT / "assets" / "drawbench"


@dataclass(frozen=True)
class BenchConfig:
    """What the benchmark set is; ranges are (low, high), drawn uniformly per source image."""

    seed: int = 2026
    per_class: int = 40  # source images per merged class (fewer where the test part has fewer)
    canvas: int = 400  # the app's Sketchpad size
    supersample: int = 2
    height: tuple[float, float] = (0.35, 0.85)  # the character's long side, as a fraction of the canvas
    brush: tuple[float, float] = (8.0, 34.0)  # stroke width in canvas pixels (the app's brush: 24)
    slant: tuple[float, float] = (-0.35, 0.35)  # horizontal shear (x += slant * y), italic and back-slanted
    rotate: tuple[float, float] = (-10.0, 10.0)  # degrees
    aspect: tuple[float, float] = (0.8, 1.25)  # width stretch
    paper: tuple[float, float] = (0.55, 0.85)  # paper brightness of the photo variants
    ink: tuple[float, float] = (0.05, 0.3)  # ink brightness of the photo variants
    light: tuple[float, float] = (0.15, 0.45)  # strength of the uneven light (photo)
    noise: tuple[float, float] = (0.01, 0.04)  # sensor noise sigma (photo)
    blur: tuple[float, float] = (0.4, 1.6)  # Gaussian blur sigma in canvas pixels (paper and photo)
    jpeg: tuple[int, int] = (35, 85)  # JPEG quality (paper and photo)
    variants: tuple[str, ...] = VARIANTS

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class BenchSet:
    """The rendered set: one model input per (source, variant); ``ok`` is False where preprocessing refused."""

    config: BenchConfig
    sources: np.ndarray  # pool indices of the source images
    images: np.ndarray  # (S, 28, 28) uint8, the source images as they are (upright EMNIST form)
    truth: np.ndarray  # (S,) merged class index (MERGED_CHARS)
    inputs: np.ndarray  # (V, S, 28, 28) float32, what the models see
    ok: np.ndarray  # (V, S) bool
    params: dict[str, np.ndarray] = field(default_factory=dict)  # per source: brush width, height, slant, ...


# ---------------------------------------------------------------------------------------------
# Sources: test-part images only


def pick_sources(pool: Pool, per_class: int, seed: int) -> np.ndarray:
    """Up to ``per_class`` test-part images of each merged class, drawn with the seed, sorted."""
    rng = np.random.default_rng(seed)
    test = np.flatnonzero(pool.part == TEST_PART)
    chosen = []
    for c in range(len(MERGED_CHARS)):
        members = test[pool.merged[test] == c]
        chosen.append(rng.choice(members, min(per_class, len(members)), replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# From an image to strokes to a canvas


def skeleton_strokes(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Skeleton points (K, 2) as (x, y) in [0, 1] of the 28x28 frame, and the (E, 2) pairs of touching points."""
    side = 28 * SKELETON_SCALE
    big = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC), np.float32)
    mask = big >= 0.5 * max(float(big.max()), 1.0)
    skeleton = skeletonize(mask)
    ys, xs = np.nonzero(skeleton)
    index = np.full((side + 2, side + 2), -1, np.int64)  # padded so neighbours never wrap
    index[ys + 1, xs + 1] = np.arange(len(ys))
    pairs = []
    for dy, dx in NEIGHBOURS:
        other = index[ys + 1 + dy, xs + 1 + dx]
        keep = other >= 0
        pairs.append(np.stack([np.flatnonzero(keep), other[keep]], axis=1))
    points = np.stack([(xs + 0.5) / side, (ys + 0.5) / side], axis=1)
    return points, np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)


def draw_params(config: BenchConfig, rng: np.random.Generator) -> dict[str, float]:
    """One source image's random drawing: size, slant, rotation, aspect, brush and the photo effects."""
    names = ("height", "brush", "slant", "rotate", "aspect", "paper", "ink", "light", "noise", "blur")
    params = {name: float(rng.uniform(*getattr(config, name))) for name in names}
    params["jpeg"] = int(rng.integers(config.jpeg[0], config.jpeg[1] + 1))
    params["light_angle"] = float(rng.uniform(0, 2 * np.pi))
    params["x"], params["y"] = float(rng.random()), float(rng.random())  # where in the free room
    return params


def place(points: np.ndarray, params: dict[str, float], canvas: int) -> np.ndarray:
    """Points centred, rotated, slanted, stretched, scaled to the drawn size and placed on the canvas."""
    lo, hi = points.min(0), points.max(0)
    p = (points - (lo + hi) / 2) / max(float((hi - lo).max()), 1e-6)  # long side 1, centred
    theta = np.deg2rad(params["rotate"])
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    shape = np.array([[params["aspect"], params["slant"]], [0.0, 1.0]])
    p = p @ (shape @ rot).T
    p *= params["height"] * canvas / max(float(np.ptp(p, 0).max()), 1e-6)
    margin = params["brush"] / 2 + 4
    low, high = -p.min(0) + margin, canvas - p.max(0) - margin
    corner = low + np.array([params["x"], params["y"]]) * np.maximum(high - low, 0)
    return p + corner


def stroke_ink(points: np.ndarray, pairs: np.ndarray, brush: float, canvas: int, supersample: int) -> np.ndarray:
    """Ink coverage in [0, 1] of the strokes drawn with a round brush of ``brush`` pixels (anti-aliased)."""
    s = supersample
    big = Image.new("L", (canvas * s, canvas * s), 0)
    pen = ImageDraw.Draw(big)
    width, radius = max(1, round(brush * s)), brush * s / 2
    scaled = points * s
    for a, b in pairs:
        pen.line([tuple(scaled[a]), tuple(scaled[b])], fill=255, width=width)
    for x, y in scaled:  # round joints and caps, and dots that have no neighbour
        pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=255)
    return np.asarray(big.resize((canvas, canvas), Image.Resampling.BOX), np.float32) / 255.0


def sketchpad_strokes(ink: np.ndarray) -> dict:
    """The strokes black on white in the Sketchpad's value form (``inputs.sketchpad_value``), whose ``composite``
    preprocessing reads as it reads the app canvas's decoded pixels."""
    grey = np.round(255 * (1.0 - ink)).astype(np.uint8)
    return sketchpad_value(np.repeat(grey[..., None], 3, axis=2))


def photo_bytes(ink: np.ndarray, params: dict[str, float], rng: np.random.Generator, uneven: bool) -> bytes:
    """The strokes as a JPEG photo of paper: grey paper and ink, blur; ``uneven``: light gradient, tint, noise."""
    n = ink.shape[0]
    cover = np.clip(gaussian_blur(ink, params["blur"]), 0, 1)
    grey = params["paper"] * (1 - cover) + params["ink"] * cover
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if uneven:
        yy, xx = np.mgrid[0:n, 0:n] / n - 0.5
        ramp = np.cos(params["light_angle"]) * xx + np.sin(params["light_angle"]) * yy
        light = 1 + params["light"] * (2 * ramp - 0.8 * (xx**2 + yy**2))
        rgb = rgb * light[..., None] * np.array([1.0, 0.96, 0.88], np.float32)
        rgb = rgb + rng.normal(0, params["noise"], rgb.shape)
    out = io.BytesIO()
    Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(out, "JPEG", quality=params["jpeg"])
    return out.getvalue()


def render(image: np.ndarray, config: BenchConfig, rng: np.random.Generator) -> tuple[dict, dict[str, object]]:
    """One source image's drawing parameters and its renderings, one per variant, in the form the app gets."""
    params = draw_params(config, rng)
    points, pairs = skeleton_strokes(image)
    if len(points) == 0:  # nothing survives thinning (never seen on EMNIST): a blank canvas, refused later
        ink = np.zeros((config.canvas, config.canvas), np.float32)
    else:
        ink = stroke_ink(place(points, params, config.canvas), pairs, params["brush"], config.canvas,
                         config.supersample)  # fmt: skip
    makers = {"canvas": lambda: sketchpad_strokes(ink), "paper": lambda: photo_bytes(ink, params, rng, uneven=False),
              "photo": lambda: photo_bytes(ink, params, rng, uneven=True)}  # fmt: skip
    return params, {v: makers[v]() for v in config.variants}


# ---------------------------------------------------------------------------------------------
# The set: rendered once, preprocessed by the app's code, cached


def model_input(rendering: object) -> np.ndarray | None:
    try:
        return to_model_input(rendering)
    except InputError:
        return None


def build_set(config: BenchConfig, root: Path | None = None, progress: bool = True) -> BenchSet:
    """Render every source image in every variant and preprocess it; cached by config, data and preprocessing."""
    pool = load_pool(Path(root or default_root()))
    sources = pick_sources(pool, config.per_class, config.seed)
    # The inputs depend on the sources and on the app's preprocessing code: a change to either renders again.
    code = b"".join(Path(m.__file__).read_bytes() for m in (preprocess, input_forms, ink))
    digest = hashlib.sha256(sources.tobytes() + pool.images[sources].tobytes() + code).hexdigest()[:12]
    cached = cache_dir() / f"drawbench-{config.key()}-{digest}.npz"
    if cached.is_file():
        with np.load(cached) as z:
            params = {k[len("param_"):]: z[k] for k in z.files if k.startswith("param_")}
            return BenchSet(config, z["sources"], z["images"], z["truth"], z["inputs"], z["ok"], params)
    n, variants = len(sources), config.variants
    inputs = np.zeros((len(variants), n, 28, 28), np.float32)
    ok = np.zeros((len(variants), n), bool)
    params: dict[str, list] = {}
    for i in tqdm(range(n), desc="drawbench: render + preprocess", disable=not progress):
        rng = np.random.default_rng([config.seed, int(sources[i])])  # per image: any subset renders the same
        drawn, renderings = render(pool.images[sources[i]], config, rng)
        for k, v in drawn.items():
            params.setdefault(k, []).append(v)
        for j, variant in enumerate(variants):
            x = model_input(renderings[variant])
            ok[j, i] = x is not None
            inputs[j, i] = x if x is not None else 0.0
    bench = BenchSet(config, sources, pool.images[sources], pool.merged[sources].astype(np.int64), inputs, ok,
                     {k: np.asarray(v) for k, v in params.items()})  # fmt: skip
    cached.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, sources=bench.sources, images=bench.images, truth=bench.truth, inputs=bench.inputs,
                        ok=bench.ok, **{f"param_{k}": v for k, v in bench.params.items()})  # fmt: skip
    write_atomic(cached, buffer.getvalue())
    return bench


# ---------------------------------------------------------------------------------------------
# Scoring


@dataclass(frozen=True)
class Hits:
    """Top-1 and top-3 shares of the images right (folded to the merged classes); a variant's also how many of its
    renderings the preprocessing refused (counted as wrong)."""

    top1: float
    top3: float
    refused: int | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None or k != "refused"}


@dataclass(frozen=True)
class BenchFigures:
    """A model's figures on the set: on the source images themselves (``plain``), over every drawn variant
    (``drawn``), per variant, and top-1 per merged class."""

    plain: Hits
    drawn: Hits
    variants: dict[str, Hits]
    per_class: dict[str, float]

    def to_dict(self) -> dict:
        """As results.json and the table pages hold it."""
        return {"plain": self.plain.to_dict(), "drawn": self.drawn.to_dict(),
                "variants": {v: h.to_dict() for v, h in self.variants.items()}, "per_class": dict(self.per_class)}


def score_probs(bench: BenchSet, labels: list[str], probs_of) -> BenchFigures:
    """A model's figures on the set; ``probs_of(batch (N, 28, 28) float32) -> (N, C) probabilities``."""
    plain1, plain3 = folded_hits(probs_of(bench.images.astype(np.float32) / 255.0), labels, bench.truth)
    variants, hits1, hits3 = {}, [], []
    for j, variant in enumerate(bench.config.variants):
        top1, top3 = folded_hits(probs_of(bench.inputs[j]), labels, bench.truth)
        top1, top3 = top1 & bench.ok[j], top3 & bench.ok[j]
        variants[variant] = Hits(float(top1.mean()), float(top3.mean()), int((~bench.ok[j]).sum()))
        hits1.append(top1)
        hits3.append(top3)
    all1, all3 = np.stack(hits1), np.stack(hits3)
    per_class = {MERGED_CHARS[c]: float(all1[:, bench.truth == c].mean()) for c in np.unique(bench.truth)}
    return BenchFigures(Hits(float(plain1.mean()), float(plain3.mean())), Hits(float(all1.mean()), float(all3.mean())),
                        variants, per_class)  # fmt: skip


def benched(entries: list) -> list:
    """The export's models this benchmark scores: those of the EMNIST letter splits (not Study B's digit model)."""
    return [e for e in entries if e.split in LETTER_SPLITS]


def score_exported(bench: BenchSet, folder: Path, progress: bool = True) -> list[dict]:
    """Every letter-reading model of an export folder through the app's runtime (one CPU thread per session)."""
    recognizer = Recognizer(folder)
    results = []
    for entry in tqdm(benched(recognizer.models), desc="drawbench: models", disable=not progress):
        figures = score_probs(bench, list(entry.labels), lambda x, e=entry: recognizer.predict_batch(e.name, x)[0])
        results.append({"name": entry.name, "split": entry.split, "slot": entry.slot, "profile": entry.profile,
                        "family": entry.family, "sha256": entry.sha256,
                        "n_train": entry.recipe.n_train if entry.recipe else None,
                        "runtime_test_accuracy": entry.metrics.runtime_test_accuracy,
                        **figures.to_dict()})  # fmt: skip
    return results


def torch_probs(model: torch.nn.Module, chunk: int = 1000):
    """``probs_of`` for a torch model on the CPU (a run's best weights; the EMA of them for a lab run)."""

    @torch.no_grad()
    def probs_of(x: np.ndarray) -> np.ndarray:
        out = [torch.softmax(model(torch.from_numpy(x[i : i + chunk])[:, None]), 1) for i in range(0, len(x), chunk)]
        return torch.cat(out).numpy()

    return probs_of


def score_table(bench: BenchSet, table_path: Path, runs: Path, progress: bool = True) -> list[dict]:
    """Every finished row of a results table (e.g. the lab ablation), its run's best weights scored on the set."""
    table = TableResult.read(table_path)
    rows = []
    for row in tqdm([r for r in table.rows if r.run_id], desc="drawbench: runs", disable=not progress):
        if not (runs / row.run_id / "best.pt").is_file():
            continue  # not trained yet, or its weights live on another machine
        model, metrics = load_trained(runs / row.run_id)
        figures = score_probs(bench, list(metrics.chars), torch_probs(model))
        rows.append({"key": row.key, "label": row.label, "run_id": row.run_id, "n_train": metrics.n_train,
                     "val_accuracy": row.val_accuracy, "test_accuracy": row.test_accuracy,
                     **figures.to_dict()})  # fmt: skip
    return rows


def table_rows(rows: list[dict], variants: tuple[str, ...]) -> list[str]:
    head = ("| row | images trained on | validation | test | plain top-1 | drawn top-1 | drawn top-3 | "
            + " | ".join(f"{v} top-1" for v in variants) + " |")  # fmt: skip
    lines = [head, "|" + "---|" * (7 + len(variants))]
    for r in rows:
        cells = [f"{r['key']}: {r['label']}", f"{r['n_train']:,}", pct(r["val_accuracy"]), pct(r["test_accuracy"]),
                 pct(r["plain"]["top1"]), pct(r["drawn"]["top1"]), pct(r["drawn"]["top3"]),
                 *(pct(r["variants"][v]["top1"]) for v in variants)]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_table_page(table_path: Path, bench: BenchSet, rows: list[dict]) -> Path:
    """``<table>-drawbench.json`` and ``.md`` beside the table: its rows on validation, test and the drawings."""
    stem = table_path.with_suffix("")
    write_json(Path(f"{stem}-drawbench.json"), {"config": asdict(bench.config), "n_sources": len(bench.sources),
                                                "rows": rows, "environment": environment()})  # fmt: skip
    lines = [f"# {table_path.stem}: validation, test and the drawing benchmark", "",
             f"Each finished row's best weights on the drawing benchmark ({len(bench.sources):,} test-part images x "
             f"{len(bench.config.variants)} variants, `python -m training drawbench --table`, the set of "
             "[assets/drawbench](../../drawbench/README.md)), scored in torch. *plain* is the same weights on the same "
             "source images as scanned: the sources are balanced over classes, so a model weak on rare classes is "
             "low there too, and the drop from *plain* to *drawn* is the drawing domain's share. Rows are chosen on "
             "validation, never on test or on the drawings.", "", *table_rows(rows, bench.config.variants)]  # fmt: skip
    return write_atomic(Path(f"{stem}-drawbench.md"), ("\n".join(lines) + "\n").encode())


# ---------------------------------------------------------------------------------------------
# The page, the figures and the record


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def summary_rows(results: list[dict], variants: tuple[str, ...]) -> list[str]:
    """The headline table: one row per model, its figures on the set beside its plain figure."""
    head = ("| model | split | profile | plain top-1 | drawn top-1 | drawn top-3 | "
            + " | ".join(f"{v} top-1" for v in variants) + " | test part (ONNX Runtime) |")  # fmt: skip
    rows = [head, "|" + "---|" * (7 + len(variants))]
    for r in results:
        cells = [r["name"], r["split"], r["profile"], pct(r["plain"]["top1"]), pct(r["drawn"]["top1"]),
                 pct(r["drawn"]["top3"]), *(pct(r["variants"][v]["top1"]) for v in variants),
                 pct(r["runtime_test_accuracy"])]  # fmt: skip
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def per_class_rows(results: list[dict]) -> list[str]:
    classes = sorted({c for r in results for c in r["per_class"]}, key=MERGED_CHARS.index)
    rows = ["| class | " + " | ".join(f"`{r['name']}`" for r in results) + " |", "|" + "---|" * (1 + len(results))]
    for c in classes:
        rows.append(f"| {c} | " + " | ".join(f"{100 * r['per_class'][c]:.0f}" for r in results) + " |")
    return rows


def write_page(out: Path, bench: BenchSet, results: list[dict], seconds: float) -> Path:
    config, n = bench.config, len(bench.sources)
    refused = {v: int((~bench.ok[j]).sum()) for j, v in enumerate(config.variants)}
    lines = [
        "# Drawing benchmark",
        "",
        f"{n:,} source images from the pool's **test part** only ({config.per_class} per merged class where the "
        f"part has that many; {len(np.unique(bench.truth))} classes), each thinned to its skeleton and redrawn with a "
        f"round brush ({config.brush[0]:g}-{config.brush[1]:g} px) on a {config.canvas}x{config.canvas} canvas at a "
        f"random size ({config.height[0]:.0%}-{config.height[1]:.0%} of the canvas), slant, rotation and place, in "
        f"{len(config.variants)} variants: `canvas` (black on white, as the Sketchpad returns it), `paper` (grey "
        "paper and ink, blur, JPEG) and `photo` (also uneven light, a tint and noise). Every rendering goes through "
        "the app's preprocessing (`recognizer.preprocess.to_model_input`) and every model through ONNX Runtime "
        "(`recognizer.inference.Recognizer`), so these are the figures a person would see. "
        f"{n * len(config.variants):,} renderings; refused by the preprocessing (counted wrong): "
        + ", ".join(f"{v} {k}" for v, k in refused.items()) + ".",
        "",
        "Top-1 is scored in the 47 merged classes (a byclass model's `c` is right for a true `C`, as case cannot be "
        "told apart for C I J K L M O P S U V W X Y Z); top-3: the truth is among the three most probable classes. "
        "*plain* is the same model on the same source images as they are (EMNIST form), scored the same way; the "
        "last column is the model's whole test part through ONNX Runtime (from the manifest, exact classes). "
        "Sources are balanced over classes, unlike the test parts, so *plain* differs from the test-part figure.",
        "",
        *summary_rows(results, config.variants),
        "",
        "![examples](examples.png)",
        "",
        "## Per class (top-1 over all variants, %)",
        "",
        "![per class](per_class.png)",
        "",
        *per_class_rows(results),
        "",
        f"Made by `python -m training drawbench` in {seconds:.0f} s; settings in `config.json`, the run's log in "
        "`log.txt`, every figure in `results.json`.",
    ]
    return write_atomic(out / "README.md", ("\n".join(lines) + "\n").encode())


def plot_examples(out: Path, bench: BenchSet, root: Path | None, count: int = 8) -> Path:
    """A few sources: the EMNIST image, its three renderings and what the model sees from the canvas."""
    pool = load_pool(Path(root or default_root()))
    picks = np.linspace(0, len(bench.sources) - 1, min(count, len(bench.sources))).astype(int)
    columns = ["EMNIST test image", *bench.config.variants, "model input (canvas)"]
    fig, axes = plt.subplots(len(picks), len(columns), figsize=(2 * len(columns), 2 * len(picks)), squeeze=False)
    for row, i in enumerate(picks):
        rng = np.random.default_rng([bench.config.seed, int(bench.sources[i])])
        _, renderings = render(pool.images[bench.sources[i]], bench.config, rng)
        shown = [bench.images[i]]
        for v in bench.config.variants:
            value = renderings[v]
            shown.append(value["composite"] if isinstance(value, dict) else np.asarray(Image.open(io.BytesIO(value))))
        shown.append(bench.inputs[0, i])
        for col, picture in enumerate(shown):
            ax = axes[row, col]
            ax.imshow(picture, cmap="gray" if np.ndim(picture) == 2 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(columns[col], fontsize=9)
        axes[row, 0].set_ylabel(MERGED_CHARS[bench.truth[i]], rotation=0, fontsize=14, labelpad=14)
    fig.tight_layout()
    fig.savefig(out / "examples.png", dpi=80)
    plt.close(fig)
    return out / "examples.png"


def plot_per_class(out: Path, results: list[dict]) -> Path:
    classes = sorted({c for r in results for c in r["per_class"]}, key=MERGED_CHARS.index)
    fig, ax = plt.subplots(figsize=(18, 5))
    width = 0.8 / max(len(results), 1)
    for k, r in enumerate(results):
        xs = np.arange(len(classes)) + (k - (len(results) - 1) / 2) * width
        ax.bar(xs, [100 * r["per_class"][c] for c in classes], width, label=f"{r['name']} ({pct(r['drawn']['top1'])})")
    ax.set_xticks(np.arange(len(classes)), classes)
    ax.set_ylabel("top-1 on drawings (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, ncol=min(len(results), 5), loc="upper center", bbox_to_anchor=(0.5, -0.08))
    ax.set_title("Drawing benchmark per class (all variants)")
    fig.tight_layout()
    fig.savefig(out / "per_class.png", dpi=80)
    plt.close(fig)
    return out / "per_class.png"


# ---------------------------------------------------------------------------------------------
# The command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = BenchConfig()
    parser.add_argument("--per-class", type=int, default=defaults.per_class, help="source images per merged class")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--models", type=Path, default=None,
                        help="export folder (default: $MODELS_DIR or exported_models)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the page, figures and record go")
    parser.add_argument("--data-root", type=Path, default=None, help="EMNIST files (default: as `data`)")
    parser.add_argument("--table", type=Path, default=None,
                        help="a results table (e.g. assets/results/lab/quick/lab.json): score its rows' runs from "
                             "--runs-dir instead of the exported models; writes <table>-drawbench.json/.md beside it")
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="run folders for --table (default: $RUNS_DIR or runs/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    config = BenchConfig(seed=args.seed, per_class=args.per_class)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = [f"drawbench {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}: config {config.key()}"]
    bench = build_set(config, args.data_root, progress=not args.quiet)
    log.append(f"{len(bench.sources):,} test-part sources, {bench.inputs.shape[0] * bench.inputs.shape[1]:,} "
               f"renderings, refused {int((~bench.ok).sum())}; {time.perf_counter() - started:.1f} s")  # fmt: skip
    if args.table:
        rows = score_table(bench, args.table, Path(args.runs_dir or runs_dir()), progress=not args.quiet)
        print("\n".join(table_rows(rows, config.variants)))
        write_table_page(args.table, bench, rows)
        return 0
    folder = Path(args.models or models_dir())
    results = score_exported(bench, folder, progress=not args.quiet)
    for r in results:
        by_variant = ", ".join(f"{v} {pct(f['top1'])}" for v, f in r["variants"].items())
        log.append(f"{r['name']}: plain {pct(r['plain']['top1'])}, drawn top-1 {pct(r['drawn']['top1'])} top-3 "
                   f"{pct(r['drawn']['top3'])}; {by_variant}")
    seconds = time.perf_counter() - started
    record = {"config": asdict(config), "models_dir": str(folder), "data_root": str(args.data_root or default_root()),
              "environment": environment()}  # fmt: skip
    write_json(out / "config.json", record)
    write_json(out / "results.json", {"config": asdict(config), "n_sources": len(bench.sources), "models": results,
                                      "sources": bench.sources.tolist(), "seconds": round(seconds, 1)})
    write_page(out, bench, results, seconds)
    plot_examples(out, bench, args.data_root)
    plot_per_class(out, results)
    log.append(f"wrote {out} in {time.perf_counter() - started:.1f} s")
    write_atomic(out / "log.txt", ("\n".join(log) + "\n").encode())
    print("\n".join(log))
    return 0
