"""Study B's unlabelled images for self-supervised pretraining, never any of its evaluation images.

The set is every distinct image (same 784 bytes: one image) of three sources under the data root: MNIST's
training images (the verified slice, which Study B's 500 images are drawn from), EMNIST digits' training images,
and the pool's train parts (DATA.md: letters too, since handwriting is handwriting). Images byte-identical to any
of Study B's test images (the report's 100 and the full 10,000-image MNIST test set) are removed, and the summary
says how many. Study B's 400 labelled training images stay in: using them unlabelled adds no label.
Labels are dropped here; nothing downstream of pretraining sees them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recognizer.idx import upright
from training.data import SplitData, find_chunks, load_pool, load_studyb

SOURCES = ("mnist_train", "digits_train", "pool_train")
TEST_NAMES = {"report_test": "the report's test part", "mnist_test": "the MNIST test set"}


@dataclass
class Unlabelled:
    """Upright uint8 images [N, 28, 28] and how they were gathered (``summary``, written beside the pretraining)."""

    images: np.ndarray
    summary: dict = field(default_factory=dict)


def _rows(images: np.ndarray) -> np.ndarray:
    """Each image as one opaque 784-byte value, so numpy can sort, unique and match whole images."""
    flat = np.ascontiguousarray(images.reshape(len(images), -1))
    return flat.view(np.dtype((np.void, flat.shape[1]))).ravel()


def _chunk_images(root: Path, split: str) -> np.ndarray:
    chunks = find_chunks(root, split, "train")
    if not chunks:
        return np.zeros((0, 28, 28), np.uint8)
    return upright(np.concatenate([c.images for c in chunks]))


def source_images(root: Path, sources: tuple[str, ...] = SOURCES) -> dict[str, np.ndarray]:
    """Each source's images (upright), before any deduplication."""
    found = {}
    if "mnist_train" in sources:
        found["mnist_train"] = _chunk_images(root, "mnist")
    if "digits_train" in sources:
        found["digits_train"] = _chunk_images(root, "digits")
    if "pool_train" in sources:
        pool = load_pool(root)
        found["pool_train"] = pool.images[pool.part <= 7]
    return found


def build_unlabelled(root: Path, studyb: SplitData | None = None, sources: tuple[str, ...] = SOURCES) -> Unlabelled:
    """The deduplicated unlabelled set, with counts per source and of the test overlaps removed."""
    studyb = studyb or load_studyb(root)
    found = source_images(root, sources)
    everything = np.concatenate(list(found.values()))
    _, first = np.unique(_rows(everything), return_index=True)
    distinct = everything[np.sort(first)]
    tests = {"report_test": studyb.parts["test"][0]}
    if "mnist_test" in studyb.extra_tests:
        tests["mnist_test"] = studyb.extra_tests["mnist_test"][0]
    rows = _rows(distinct)
    removed = {name: int(np.isin(rows, _rows(x)).sum()) for name, x in tests.items()}
    overlap = np.zeros(len(rows), dtype=bool)
    for x in tests.values():
        overlap |= np.isin(rows, _rows(x))
    kept = distinct[~overlap]
    summary = {
        "sources": {name: int(len(x)) for name, x in found.items()},
        "images_before_dedup": int(len(everything)),
        "distinct_images": int(len(distinct)),
        "duplicates_merged": int(len(everything) - len(distinct)),
        "test_images": {name: int(len(x)) for name, x in tests.items()},
        "removed_as_test_images": removed,
        "removed_total": int(overlap.sum()),
        "labelled_train_images_kept_unlabelled": int(np.isin(_rows(studyb.parts["train"][0]), _rows(kept)).sum()),
        "unlabelled_images": int(len(kept)),
    }
    return Unlabelled(kept, summary)


def describe_unlabelled(summary: dict) -> str:
    """One paragraph for the results page."""
    sources = ", ".join(f"{name.replace('_', ' ')} {n:,}" for name, n in summary["sources"].items())
    removed = "; ".join(f"{n:,} of the {summary['test_images'][name]:,} images of {TEST_NAMES[name]}"
                        for name, n in summary["removed_as_test_images"].items())
    return (f"Unlabelled images: {sources} ({summary['images_before_dedup']:,} in all); "
            f"{summary['duplicates_merged']:,} byte-identical copies merged into {summary['distinct_images']:,} "
            f"distinct images; **{summary['removed_total']:,} removed because they are Study B test images** "
            f"({removed}; an image may be in both); {summary['unlabelled_images']:,} left for pretraining "
            f"(Study B's {summary['labelled_train_images_kept_unlabelled']} labelled training images among them, "
            f"without labels).")  # fmt: skip
