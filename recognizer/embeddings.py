"""Precomputed 2-D maps of a model's feature space, and where a new drawing lands on them.

``assets/embeddings/<model name>.npz`` is written by the training side's embed step:
``features`` (n, d) float16, ``labels`` (n,) int, ``preds`` (n,) int, ``thumbs`` (n, 28, 28)
uint8 upright, and one (n, 2) float32 array per map (``umap``, ``tsne``, ``pixel_umap``; any may be
absent). A model fine-tuned from a self-supervised pretraining (Study B's ``ssl_cnn``) may also hold
the same sample mapped from its encoder before and after that pretraining (``STAGE_TITLES``). UMAP
and t-SNE are too slow for the app, so a new drawing is placed by its nearest neighbours in feature
space instead.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The maps an embedding file may hold, in display order, and their titles (the export's plots and the app's menu).
MAP_TITLES = {"umap": "UMAP of the features", "tsne": "t-SNE of the features", "pixel_umap": "UMAP of the raw pixels"}
MAP_NAMES = tuple(MAP_TITLES)
# Maps of the same sample from the encoder's earlier stages: its random weights, then its self-supervised pretraining
# (before fine-tuning); the model's own maps above are then the stage after fine-tuning.
STAGE_TITLES = {
    "umap_random": "UMAP before pretraining (random encoder)",
    "tsne_random": "t-SNE before pretraining (random encoder)",
    "umap_pretrained": "UMAP after self-supervised pretraining, before fine-tuning",
    "tsne_pretrained": "t-SNE after self-supervised pretraining, before fine-tuning",
}
STAGE_NAMES = tuple(STAGE_TITLES)


# 60 distinguishable colours (matplotlib's tab20, tab20b and tab20c, in that order), cycled over the classes: the
# offline maps (training/embed.py) and the app's (webapp/embeddings_tab.py) colour a class alike.
PALETTE = (
    "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd", "#c5b0d5",
    "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5",
    "#393b79", "#5254a3", "#6b6ecf", "#9c9ede", "#637939", "#8ca252", "#b5cf6b", "#cedb9c", "#8c6d31", "#bd9e39",
    "#e7ba52", "#e7cb94", "#843c39", "#ad494a", "#d6616b", "#e7969c", "#7b4173", "#a55194", "#ce6dbd", "#de9ed6",
    "#3182bd", "#6baed6", "#9ecae1", "#c6dbef", "#e6550d", "#fd8d3c", "#fdae6b", "#fdd0a2", "#31a354", "#74c476",
    "#a1d99b", "#c7e9c0", "#756bb1", "#9e9ac8", "#bcbddc", "#dadaeb", "#636363", "#969696", "#bdbdbd", "#d9d9d9",
)  # fmt: skip


def class_colours(n: int) -> list[str]:
    """The colour of each of ``n`` classes, in class order (the palette repeats after 60)."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def map_title(name: str) -> str:
    """A map's title for menus and plots (its name when it is not a known map)."""
    return MAP_TITLES.get(name) or STAGE_TITLES.get(name) or name
REQUIRED = ("features", "labels", "preds", "thumbs")


class EmbeddingError(ValueError):
    """The embedding file is missing, unreadable or inconsistent."""


@dataclass
class Embedding:
    features: np.ndarray  # (n, d) float32
    labels: np.ndarray  # (n,) int64
    preds: np.ndarray  # (n,) int64
    thumbs: np.ndarray  # (n, 28, 28) uint8, upright
    maps: dict[str, np.ndarray]  # method -> (n, 2) float32
    path: Path | None = None
    _unit: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._unit = _normalise(self.features)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def methods(self) -> list[str]:
        """The maps this file holds, in the usual order."""
        known = MAP_NAMES + STAGE_NAMES
        return [m for m in known if m in self.maps] + sorted(set(self.maps) - set(known))

    def mistakes(self) -> np.ndarray:
        """Indices of the samples the model got wrong."""
        return np.flatnonzero(self.preds != self.labels)

    def neighbours(self, features: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Indices and cosine similarities of the k samples nearest to one feature vector."""
        query = np.asarray(features, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.features.shape[1]:
            raise ValueError(
                f"feature vector has {query.shape[0]} values, the embedding {self.features.shape[1]}"
            )
        sims = self._unit @ _normalise(query[None])[0]
        k = max(1, min(k, len(sims)))
        idx = np.argpartition(-sims, k - 1)[:k]
        idx = idx[np.argsort(-sims[idx], kind="stable")]
        return idx, sims[idx]

    def place(self, features: np.ndarray, method: str, k: int = 10) -> tuple[float, float]:
        """Map position of a new feature vector: the similarity-weighted mean of its k neighbours.

        Weights are non-negative, so the point always lies inside the neighbours' bounding box.
        """
        if method not in self.maps:
            raise KeyError(f"no map {method!r} in this embedding; available: {self.methods}")
        idx, sims = self.neighbours(features, k)
        weights = np.clip(sims, 0.0, None) ** 4 + 1e-6  # sharpen: the closest neighbours dominate
        x, y = (self.maps[method][idx] * weights[:, None]).sum(0) / weights.sum()
        return float(x), float(y)


def _normalise(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)


def load_embedding(path: str | os.PathLike) -> Embedding:
    """Read and check one ``<model name>.npz`` file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise EmbeddingError(
            f"no embedding file at {path}: run the embed step first (python -m training embed)"
        ) from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise EmbeddingError(f"embedding file {path} is unreadable: {err}") from err
    missing = [key for key in REQUIRED if key not in arrays]
    if missing:
        raise EmbeddingError(f"embedding file {path} lacks {missing}")
    emb = Embedding(
        features=arrays["features"].astype(np.float32),
        labels=arrays["labels"].astype(np.int64).reshape(-1),
        preds=arrays["preds"].astype(np.int64).reshape(-1),
        thumbs=arrays["thumbs"].astype(np.uint8),
        maps={m: arrays[m].astype(np.float32) for m in arrays if _is_map(m, arrays)},
        path=path,
    )
    _check(emb, path)
    return emb


def _is_map(key: str, arrays: dict[str, np.ndarray]) -> bool:
    """A named map, or any other float (n, 2) array (extra arrays the embed step may add are ignored)."""
    if key in REQUIRED:
        return False
    a = arrays[key]
    known = key in MAP_NAMES or key in STAGE_NAMES
    return known or (a.ndim == 2 and a.shape[1] == 2 and np.issubdtype(a.dtype, np.floating))


def _check(emb: Embedding, path: Path) -> None:
    n = len(emb.labels)
    problems = []
    if emb.features.ndim != 2 or len(emb.features) != n:
        problems.append(f"features {emb.features.shape} is not (n={n}, d)")
    if emb.preds.shape != (n,):
        problems.append(f"preds {emb.preds.shape} is not ({n},)")
    if emb.thumbs.shape != (n, 28, 28):
        problems.append(f"thumbs {emb.thumbs.shape} is not ({n}, 28, 28)")
    problems += [f"{m} {a.shape} is not ({n}, 2)" for m, a in emb.maps.items() if a.shape != (n, 2)]
    if n == 0:
        problems.append("it holds no samples")
    if problems:
        raise EmbeddingError(f"embedding file {path} is inconsistent: " + "; ".join(problems))
