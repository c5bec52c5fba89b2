"""EMNIST and MNIST data: integrity, the two protocols of DATA.md, Study B, caching (the IDX format: recognizer/idx.py).

Images come out upright (IDX stores them transposed) as uint8 arrays; the trainer scales them to
[0, 1] per batch. A split is decoded once into a cache of .npy files, so later loads take a second.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from recognizer import idx
from recognizer.files import sha256_file, write_atomic, write_json
from recognizer.idx import upright
from recognizer.labels import BYCLASS_CHARS, MERGED_CHARS, byclass_to_merged_index, merge_key, split_chars
from training.config import RunConfig
from training.paths import REPO_ROOT

OFFICIAL_SHA256 = Path(__file__).with_name("official_sha256.txt")
POOL_SPLITS = ("byclass", "bymerge", "balanced")
# Files whose images make up the pool (DATA.md): every complete file and verified slice of these splits.
POOL_SOURCES = ("byclass", "bymerge", "balanced", "digits")
POOL_KEY = b"emnist-pool-42"
SEED = 42
NIST_URL = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"


class DataError(RuntimeError):
    """A data file is missing, truncated or corrupt; the message says which and what to do."""


def read_idx(path: Path) -> np.ndarray:
    """A gzip or raw IDX file (``recognizer.idx.read_idx``); a bad file is a DataError naming it."""
    try:
        return idx.read_idx(path)
    except idx.IdxError as err:
        raise DataError(str(err)) from None


def default_root() -> Path:
    """``$EMNIST_ROOT``, else ``../shared/data/emnist`` beside the repo when it exists, else ``data/``."""
    if env := os.environ.get("EMNIST_ROOT"):
        return Path(env)
    shared = REPO_ROOT.parent / "shared" / "data" / "emnist"
    return shared if shared.is_dir() else REPO_ROOT / "data"


def cache_dir() -> Path:
    return Path(os.environ.get("EMNIST_CACHE", REPO_ROOT / ".cache" / "emnist"))


# ---------------------------------------------------------------------------------------------
# IDX files and integrity


def _read_sums(path: Path) -> dict[str, str]:
    """``name -> sha256`` from OFFICIAL_SHA256 (name sha size) or SHA256SUMS (sha  name) lines."""
    sums: dict[str, str] = {}
    if not path.exists():
        return sums
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts or line.startswith("#"):
            continue
        if re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            sums[parts[1]] = parts[0]
        else:
            sums[parts[0]] = parts[1]
    return sums


def verify(path: Path, expected: str) -> None:
    """Check a file's sha256 once; a success is remembered by path, size and mtime."""
    memo_path = cache_dir() / "verified.json"
    memo = json.loads(memo_path.read_text()) if memo_path.exists() else {}
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    if memo.get(key) == expected:
        return
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            f"{path} does not match its published sha256 (expected {expected[:16]}…, got {actual[:16]}…): "
            "it is corrupt, truncated or not NIST's file. Delete it and fetch it again "
            f"(--download, or unpack {NIST_URL} into the data root)."
        )
    memo[key] = expected
    write_json(memo_path, memo)


# ---------------------------------------------------------------------------------------------
# Locating files: complete official files and verified slices


def _idx_name(split: str, part: str, kind: str) -> str:
    return f"emnist-{split}-{part}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"


def official_file(root: Path, split: str, part: str, kind: str) -> Path | None:
    """A complete official file, as NIST's gzip or in torchvision's ``EMNIST/raw`` layout."""
    name = _idx_name(split, part, kind)
    for candidate in (root / f"{name}.gz", root / "gzip" / f"{name}.gz", root / "EMNIST" / "raw" / name):
        if candidate.exists():
            return candidate
    return None


def load_official(root: Path, split: str, part: str, kind: str) -> np.ndarray | None:
    path = official_file(root, split, part, kind)
    if path is None:
        return None
    if path.suffix == ".gz":
        official = _read_sums(OFFICIAL_SHA256)
        verify(path, official[path.name])
    return read_idx(path)


@dataclass
class Chunk:
    """Images (as stored, transposed) and labels from one file or slice of a split's part."""

    split: str
    part: str
    images: np.ndarray
    labels: np.ndarray
    source: str


def find_chunks(root: Path, split: str, part: str) -> list[Chunk]:
    """The complete official file of a split's part, else every verified slice of it in ``partial/``."""
    images = load_official(root, split, part, "images")
    if images is not None:
        labels = load_official(root, split, part, "labels")
        if labels is None:
            raise DataError(f"{_idx_name(split, part, 'labels')}.gz is missing under {root}.")
        return [Chunk(split, part, images, labels, _idx_name(split, part, "images"))]
    chunks = []
    sums = _read_sums(root / "SHA256SUMS")
    # A slice is `<file>.part-FIRST-LAST.gz` (a range of the official file) or `<file>.<tag>.gz`, a selection
    # that ships its own labels file (the test fixture); the range only matters when labels come from the full file.
    prefix = _idx_name(split, part, "images") + "."
    for path in sorted((root / "partial").glob(prefix + "*.gz")):
        match = re.fullmatch(r"part-(\d+)-(\d+)", path.name[len(prefix) : -3])
        label_slice = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
        for p in (path, label_slice):
            if p.exists():
                rel = f"partial/{p.name}"
                if rel not in sums:
                    raise DataError(f"{p} is not listed in {root / 'SHA256SUMS'}, so it cannot be verified.")
                verify(p, sums[rel])
        if label_slice.exists():
            labels = read_idx(label_slice)
        else:
            full = load_official(root, split, part, "labels")
            if full is None or not match:
                raise DataError(f"No labels for {path}: neither {label_slice.name} nor the official label file.")
            labels = full[int(match[1]) : int(match[2]) + 1]
        imgs = read_idx(path)
        expected = int(match[2]) - int(match[1]) + 1 if match else len(labels)
        if len(imgs) != expected or len(labels) != len(imgs):
            raise DataError(f"{path}: {len(imgs)} images and {len(labels)} labels, expected {expected}.")
        chunks.append(Chunk(split, part, imgs, labels, path.name))
    return chunks


# ---------------------------------------------------------------------------------------------
# Splits


@dataclass
class SplitData:
    """One split under one protocol: upright uint8 images and int64 labels per part."""

    name: str
    protocol: str
    chars: tuple[str, ...]
    parts: dict[str, tuple[np.ndarray, np.ndarray]]
    source: str = ""
    # Extra test sets scored beside ``test`` (Study B's full MNIST test set).
    extra_tests: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.chars)

    def counts(self) -> dict[str, np.ndarray]:
        return {p: np.bincount(y, minlength=self.num_classes) for p, (_, y) in self.parts.items()}


def pool_partition(images_as_stored: np.ndarray) -> np.ndarray:
    """DATA.md's keyed hash: 0-7 train, 8 val, 9 test, from the 784 bytes as stored."""
    out = np.empty(len(images_as_stored), dtype=np.int8)
    for i, img in enumerate(images_as_stored):
        digest = hashlib.blake2b(img.tobytes(), digest_size=8, key=POOL_KEY).digest()
        out[i] = int.from_bytes(digest, "little") % 10
    return out


POOL_ARRAYS = ("images", "byclass", "merged", "part")


@dataclass(frozen=True)
class Pool:
    """The deduplicated pool (DATA.md): each image upright, its byclass label (-1 where only its merged label is
    known), its merged label, and its part (0-7 train, 8 val, 9 test)."""

    images: np.ndarray
    byclass: np.ndarray
    merged: np.ndarray
    part: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {n: getattr(self, n) for n in POOL_ARRAYS}


def build_pool(root: Path) -> Pool:
    """Deduplicate every pool image, keep its finest label, and place it in a part."""
    chunks = [c for s in POOL_SOURCES for p in ("train", "test") for c in find_chunks(root, s, p)]
    if not chunks:
        raise DataError(
            f"No EMNIST files under {root}. Put NIST's gzip files there, point --data-root/$EMNIST_ROOT "
            "at them, or pass --download to fetch the official data."
        )
    images = np.concatenate([c.images for c in chunks])
    # byclass labels are the finest; digits share labels 0-9 with byclass; the rest are 47-class.
    fine = np.concatenate([c.labels if c.split in ("byclass", "digits") else np.full(len(c.labels), -1)
                           for c in chunks]).astype(np.int16)
    to_merged = np.array(byclass_to_merged_index(), dtype=np.int16)
    merged = np.concatenate([to_merged[c.labels] if c.split in ("byclass", "digits") else c.labels
                             for c in chunks]).astype(np.int16)
    flat = images.reshape(len(images), -1)
    _, first, inverse = np.unique(flat, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    n = len(first)
    byclass = np.full(n, -1, dtype=np.int16)
    np.maximum.at(byclass, inverse, fine)
    merged_u = merged[first]
    clash = merged[merged != merged_u[inverse]]
    if len(clash):
        raise DataError(f"{len(clash)} duplicate images carry labels that disagree once case is merged.")
    stored = images[first]
    return Pool(images=upright(stored), byclass=byclass, merged=merged_u, part=pool_partition(stored))

# A pool pack: the built pool in one LZMA-compressed file (44 MB instead of the 70 MB of source files), for a
# machine that has no EMNIST files, such as a lent GPU box. `python -m training data --pack DIR` writes it.
POOL_PACK = "pool-pack.npz"


def write_pool_pack(root: Path, out_dir: Path) -> Path:
    """Write the pool built from ``root`` into ``out_dir/pool-pack.npz`` (a zip of .npy files, LZMA)."""
    arrays = {**load_pool(root).arrays(), "fingerprint": np.array(_pool_fingerprint(root))}
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_LZMA) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(array), allow_pickle=False)
    return write_atomic(out_dir / POOL_PACK, packed.getvalue())


def _pool_fingerprint(root: Path) -> str:
    pack = root / POOL_PACK
    if pack.is_file():  # a pack stands for the files it was built from
        try:
            with np.load(pack) as z:
                return str(z["fingerprint"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
            raise DataError(f"{pack} is not a readable pool pack ({err}); write it again with --pack.") from None
    files = sorted(p for p in root.rglob("emnist-*") if p.is_file())
    text = "|".join(f"{p.relative_to(root)}:{p.stat().st_size}" for p in files)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_pool(root: Path) -> Pool:
    """The pool, decoded once (from the files, or from a pool pack) and cached as .npy files."""
    folder = cache_dir() / f"pool-{_pool_fingerprint(root)}"
    if all((folder / f"{n}.npy").exists() for n in POOL_ARRAYS):
        return Pool(**{n: np.load(folder / f"{n}.npy") for n in POOL_ARRAYS})
    if (root / POOL_PACK).is_file():
        with np.load(root / POOL_PACK) as z:
            pool = Pool(**{n: z[n] for n in POOL_ARRAYS})
    else:
        pool = build_pool(root)
    _cache_pool(pool, folder)
    return pool


def _cache_pool(pool: Pool, folder: Path) -> None:
    """Save the pool's arrays into a fresh folder, then rename it into place: a reader (another worker of the
    runner) sees every array or none."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    for n in POOL_ARRAYS:
        np.save(tmp / f"{n}.npy", getattr(pool, n))
    try:
        os.replace(tmp, folder)
    except OSError:  # another process cached the same pool first
        shutil.rmtree(tmp, ignore_errors=True)


def pool_split(pool: Pool, split: str, seed: int = SEED) -> SplitData:
    """byclass-pool, bymerge-pool or balanced-pool from the pool (DATA.md, step 3)."""
    if split == "byclass":
        keep = pool.byclass >= 0
        labels = pool.byclass
    elif split in ("bymerge", "balanced"):
        keep = np.ones(len(pool.merged), dtype=bool)
        labels = pool.merged
    else:
        raise DataError(f"The pool protocol has no split {split!r}; it has {POOL_SPLITS}.")
    chars = split_chars(split)
    parts = {}
    rng = np.random.default_rng(seed)
    for code, part in ((0, "train"), (8, "val"), (9, "test")):
        in_part = keep & ((pool.part <= 7) if part == "train" else (pool.part == code))
        idx = np.flatnonzero(in_part)
        if split == "balanced":
            per_class = [idx[labels[idx] == c] for c in range(len(chars))]
            n = min(len(ix) for ix in per_class)
            idx = np.sort(np.concatenate([rng.choice(ix, n, replace=False) for ix in per_class]))
        parts[part] = (pool.images[idx], labels[idx].astype(np.int64))
    return SplitData(split, "pool", chars, parts, source="pool of the files under the data root")


def _train_val_split(x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Hold out 10% of a training set for validation (random, seeded), as the reports do."""
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = len(y) // 10
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    return {"train": (x[train], y[train]), "val": (x[val], y[val])}


def _download_official(root: Path, split: str) -> None:
    """Fetch the official files through torchvision (only when the user asks for it)."""
    from torchvision.datasets import EMNIST

    for train in (True, False):
        EMNIST(str(root), split=split, train=train, download=True)


def has_official(root: Path, split: str) -> bool:
    return all(official_file(root, split, p, k) for p in ("train", "test") for k in ("images", "labels"))


def load_official_split(root: Path, split: str, seed: int = SEED) -> SplitData:
    arrays = {}
    for part in ("train", "test"):
        x, y = (load_official(root, split, part, kind) for kind in ("images", "labels"))
        if x is None or y is None:
            raise DataError(
                f"The official {split} {part} files are not under {root}. Pass --download to fetch them "
                f"(torchvision, from NIST), or unpack {NIST_URL} there."
            )
        arrays[part] = (upright(x), y.astype(np.int64))
    parts = _train_val_split(*arrays["train"], seed)
    parts["test"] = arrays["test"]
    return SplitData(split, "official", split_chars(split), parts, source=f"official {split} files")


def load_studyb(root: Path, per_digit: int = 50, train_per_digit: int = 40, seed: int = SEED) -> SplitData:
    """Study B: 50 MNIST training images per digit, drawn with a seed, split 40/10 per digit.

    The report has no validation set, so ``val`` is empty; the full MNIST test set is an extra test.
    """
    chunks = find_chunks(root, "mnist", "train")
    if not chunks:
        raise DataError(f"No MNIST training images (emnist-mnist-train-*) under {root}.")
    x = np.concatenate([c.images for c in chunks])
    y = np.concatenate([c.labels for c in chunks]).astype(np.int64)
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for digit in range(10):
        pick = rng.choice(np.flatnonzero(y == digit), per_digit, replace=False)
        train_idx.append(pick[:train_per_digit])
        test_idx.append(pick[train_per_digit:])
    tr, te = np.concatenate(train_idx), np.concatenate(test_idx)
    empty = (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64))
    parts = {"train": (upright(x[tr]), y[tr]), "val": empty, "test": (upright(x[te]), y[te])}
    extra = {}
    test_chunks = find_chunks(root, "mnist", "test")
    if test_chunks:
        extra["mnist_test"] = (
            upright(np.concatenate([c.images for c in test_chunks])),
            np.concatenate([c.labels for c in test_chunks]).astype(np.int64),
        )
    source = ", ".join(c.source for c in chunks)
    return SplitData("mnist50", "studyB", split_chars("mnist"), parts, source=source, extra_tests=extra)


def load_split(
    split: str, protocol: str = "auto", root: Path | None = None, download: bool = False, seed: int = SEED
) -> SplitData:
    """A split under a protocol: ``official``, ``pool``, or ``auto`` (official when its files are all there).

    ``mnist50`` is Study B's small MNIST set.
    """
    root = Path(root) if root else default_root()
    if split == "mnist50":
        return load_studyb(root, seed=seed)
    if download:
        _download_official(root, split)
    if protocol == "auto":
        protocol = "official" if has_official(root, split) else "pool"
    if protocol == "official":
        return load_official_split(root, split, seed)
    if protocol == "pool":
        return pool_split(load_pool(root), split, seed)
    raise DataError(f"Unknown protocol {protocol!r}: use official, pool or auto.")


class SplitCache:
    """Each (split, protocol) decoded once per command (the export's and the embed step's many models)."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], SplitData] = {}

    def get(self, split: str, protocol: str) -> SplitData:
        key = (split, protocol)
        if key not in self._data:
            self._data[key] = load_split(split, protocol)
        return self._data[key]


# ---------------------------------------------------------------------------------------------
# Every pool image: pair labels for the training images without a byclass label (``pool_images="all"``)

PAIR_BASE = len(BYCLASS_CHARS)  # labels 62.. name an upper/lower pair of a merged letter (byclass training only)


def merged_to_byclass() -> list[tuple[int, ...]]:
    """For each merged class, the byclass classes it holds: one (32 classes) or an upper/lower pair (15)."""
    return [tuple(c for c, ch in enumerate(BYCLASS_CHARS) if merge_key(ch) == m) for m in MERGED_CHARS]


def pair_classes() -> list[tuple[int, int]]:
    """The byclass pairs that a pair label ``PAIR_BASE + k`` allows, in merged-class order."""
    return [members for members in merged_to_byclass() if len(members) == 2]  # type: ignore[misc]


def labels_from_merged(merged: np.ndarray) -> np.ndarray:
    """A merged label -> its byclass label where it fixes one, else the pair label of its two cases."""
    table, pairs = [], pair_classes()
    for members in merged_to_byclass():
        table.append(members[0] if len(members) == 1 else PAIR_BASE + pairs.index(members))
    return np.asarray(table, np.int64)[merged]


def with_every_pool_image(config: RunConfig, data: SplitData) -> SplitData:
    """byclass-pool plus the training-part images it leaves out for lack of a byclass label (``pool_images="all"``):
    they fix the byclass label for the 32 classes EMNIST never merges and narrow it to an upper/lower pair (a pair
    label, ``PAIR_BASE + k``, which ``losses.PartialLabelLoss`` reads) for the other 15. Validation and test parts
    are unchanged, and the keyed-hash partition holds (DATA.md): only pool images of the training part are added.

    The pool is read from the data root (``$EMNIST_ROOT``, ``default_root``): point it at the same files, or a
    pool pack, that ``data`` came from."""
    if config.pool_images == "labelled":
        return data
    if config.pool_images != "all":
        raise ValueError(f"pool_images must be 'labelled' or 'all', not {config.pool_images!r}")
    if data.name != "byclass" or data.protocol != "pool":
        raise DataError(f"pool_images='all' adds byclass's missing pool images; this run is "
                        f"{data.name}/{data.protocol}")
    pool = load_pool(default_root())
    extra = np.flatnonzero((pool.part <= 7) & (pool.byclass < 0))
    x, y = data.parts["train"]
    parts = dict(data.parts, train=(np.concatenate([x, pool.images[extra]]),
                                    np.concatenate([y, labels_from_merged(pool.merged[extra])])))  # fmt: skip
    return replace(data, parts=parts, source=data.source + f" + {len(extra):,} pool images without a "
                   "byclass label (partial labels)")  # fmt: skip


def describe(data: SplitData) -> str:
    """Counts per part and per class, as a table."""
    counts = data.counts()
    frame = pd.DataFrame({p: c for p, c in counts.items()}, index=list(data.chars))
    frame.index.name = "class"
    totals = " / ".join(f"{p} {int(c.sum()):,}" for p, c in counts.items())
    head = f"{data.name} ({data.protocol}): {totals}; {data.num_classes} classes"
    return head + "\n" + frame.T.to_string()


def resolve_protocol(split: str, protocol: str, root: Path) -> str:
    """An EMNIST split's ``auto`` fixed before hashing, so a run id always names the data it was trained on."""
    if protocol != "auto":
        return protocol
    return "official" if has_official(root, split) else "pool"
