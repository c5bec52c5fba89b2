"""Data: IDX reading, integrity errors, orientation, label maps and the pool protocol."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recognizer import labels as L
from training import data as D

REPO = Path(__file__).resolve().parents[1]


def parse_mapping(text: str) -> tuple[str, ...]:
    """Characters from a NIST mapping file (``label ascii_code`` per line, CRLF tolerated)."""
    rows = [line.split() for line in text.splitlines() if line.strip()]
    labels = [int(r[0]) for r in rows]
    if labels != list(range(labels[0], labels[0] + len(labels))):
        raise ValueError("mapping file labels are not consecutive")
    return tuple(chr(int(r[1])) for r in rows)


def test_mapping_files_agree_with_label_rules(emnist_env: Path) -> None:
    for split in ("byclass", "bymerge", "balanced", "digits", "mnist"):
        text = (emnist_env / f"emnist-{split}-mapping.txt").read_text()
        assert parse_mapping(text) == L.split_chars(split)
    merged = L.byclass_to_merged_index()
    assert L.MERGED_CHARS[merged[L.BYCLASS_CHARS.index("c")]] == "C"
    assert L.MERGED_CHARS[merged[L.BYCLASS_CHARS.index("a")]] == "a"
    assert len(set(merged)) == 47


def test_images_come_out_upright(emnist_env: Path) -> None:
    # An upright '1' is a vertical stroke: its ink spreads over many rows and few columns.
    data = D.load_split("byclass", "pool")
    x, y = data.parts["train"]
    ones = x[y == L.BYCLASS_CHARS.index("1")].astype(float)
    rows = (ones.sum(2) > 0).sum(1).mean()
    cols = (ones.sum(1) > 0).sum(1).mean()
    assert rows > 1.5 * cols


def test_pool_places_each_image_in_one_part_for_every_split(emnist_env: Path) -> None:
    splits = {s: D.load_split(s, "pool") for s in ("byclass", "bymerge", "balanced")}
    where: dict[bytes, set[str]] = {}
    for data in splits.values():
        for part, (x, _) in data.parts.items():
            for img in x:
                where.setdefault(img.tobytes(), set()).add(part)
    assert all(len(parts) == 1 for parts in where.values())
    # Fixture known answers (regression pins; DATA.md's own numbers are pinned on the real data below).
    counts = {s: tuple(len(d.parts[p][1]) for p in ("train", "val", "test")) for s, d in splits.items()}
    assert counts == {"byclass": (260, 135, 134), "bymerge": (526, 241, 240), "balanced": (329, 141, 188)}
    for part, c in splits["balanced"].counts().items():
        assert len(set(c.tolist())) == 1, f"balanced {part} is not balanced: {c}"


def test_partition_follows_data_md_formula() -> None:
    img = np.arange(784, dtype=np.uint8).reshape(28, 28)
    h = int.from_bytes(hashlib.blake2b(img.tobytes(), digest_size=8, key=b"emnist-pool-42").digest(), "little")
    assert D.pool_partition(img[None])[0] == h % 10


def test_duplicates_keep_the_byclass_label(emnist_env: Path) -> None:
    pool = D.build_pool(emnist_env)
    stored = [c for s in ("byclass", "bymerge") for c in D.find_chunks(emnist_env, s, "test")]
    byclass_images = {img.tobytes() for img in stored[0].images}
    shared = [img for img in stored[1].images if img.tobytes() in byclass_images]
    assert shared, "the fixture carries images present in both byclass and bymerge"
    upright = {img.tobytes(): i for i, img in enumerate(pool.images)}
    for img in shared:
        assert pool.byclass[upright[img.T.tobytes()]] >= 0
    assert len(pool.images) == len(np.unique(pool.images.reshape(len(pool.images), -1), axis=0))


def test_study_b_draws_50_per_digit(emnist_env: Path) -> None:
    data = D.load_split("mnist50")
    assert data.counts()["train"].tolist() == [40] * 10
    assert data.counts()["test"].tolist() == [10] * 10
    assert len(data.parts["val"][1]) == 0
    assert len(data.extra_tests["mnist_test"][1]) == 200
    again = D.load_split("mnist50")
    assert np.array_equal(again.parts["test"][0], data.parts["test"][0])


def test_cache_makes_second_load_fast(emnist_env: Path) -> None:
    D.load_split("bymerge", "pool")
    cached = list(D.cache_dir().glob("pool-*/images.npy"))
    assert len(cached) == 1
    first = D.load_split("byclass", "pool")
    assert np.array_equal(first.parts["test"][0], D.load_split("byclass", "pool").parts["test"][0])


# --- integrity -------------------------------------------------------------------------------


def _corrupt_root(tmp_path: Path, emnist_env: Path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(emnist_env, root)
    return root


def test_truncated_slice_names_the_file(emnist_env: Path, tmp_path: Path) -> None:
    root = _corrupt_root(tmp_path, emnist_env)
    target = root / "partial" / "emnist-byclass-test-images-idx3-ubyte.fixture.gz"
    raw = gzip.decompress(target.read_bytes())
    target.write_bytes(gzip.compress(raw[:-784]))
    with pytest.raises(D.DataError, match="emnist-byclass-test-images.*sha256"):
        D.load_split("byclass", "pool", root=root)
    with pytest.raises(D.DataError, match="truncated or padded"):
        D.read_idx(target)


def test_corrupt_gzip_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "emnist-byclass-test-images-idx3-ubyte.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(D.DataError, match="not a readable gzip file"):
        D.read_idx(bad)
    bad.write_bytes(gzip.compress(b"\x00\x00\x09\x03" + b"\x00" * 12))
    with pytest.raises(D.DataError, match="bad magic"):
        D.read_idx(bad)


def test_official_file_with_wrong_hash_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMNIST_CACHE", str(tmp_path / "cache"))
    fake = tmp_path / "emnist-byclass-test-labels-idx1-ubyte.gz"
    fake.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02"))
    with pytest.raises(D.DataError, match="does not match its published sha256.*--download"):
        D.load_official(tmp_path, "byclass", "test", "labels")


def test_missing_data_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    env = {"EMNIST_ROOT": str(tmp_path / "empty"), "EMNIST_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    (tmp_path / "empty").mkdir()
    done = subprocess.run([sys.executable, "-m", "training", "data", "--splits", "byclass"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "No EMNIST files under" in done.stderr and "--download" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(D.DataError, match="official byclass train files are not under"):
        D.load_split("byclass", "official", root=tmp_path / "empty")


def test_official_protocol_reads_torchvision_layout(tmp_path: Path, emnist_env: Path) -> None:
    # A user's torchvision download leaves raw IDX files in <root>/EMNIST/raw; build a tiny one from real images.
    raw = tmp_path / "EMNIST" / "raw"
    raw.mkdir(parents=True)
    chunk = D.find_chunks(emnist_env, "byclass", "test")[0]
    for part in ("train", "test"):
        for kind, array in (("images", chunk.images), ("labels", chunk.labels)):
            header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
            (raw / D._idx_name("byclass", part, kind)).write_bytes(header + array.tobytes())
    data = D.load_split("byclass", "auto", root=tmp_path)
    assert data.protocol == "official"
    n = len(chunk.labels)
    assert len(data.parts["val"][1]) == n // 10 and len(data.parts["train"][1]) == n - n // 10
    assert np.array_equal(data.parts["test"][0][0], chunk.images[0].T)


# --- the real data (opt-in: needs ../shared/data) ---------------------------------------------


@pytest.mark.shared_data
def test_pool_known_answers_on_shared_data(shared_root: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EMNIST_CACHE", str(tmp_path / "cache"))
    pool = D.load_pool(shared_root)
    assert len(pool.images) == 232_048
    assert int((pool.byclass >= 0).sum()) == 126_765
    sizes = {s: tuple(len(D.pool_split(pool, s).parts[p][1]) for p in ("train", "val", "test"))
             for s in D.POOL_SPLITS}
    assert sizes == {"byclass": (101_319, 12_771, 12_675), "bymerge": (185_640, 23_335, 23_073),
                     "balanced": (34_545, 3_901, 3_948)}


def test_pool_pack_is_a_data_root_with_the_same_splits(emnist_env: Path, tmp_path: Path, monkeypatch) -> None:
    pack_dir = tmp_path / "pack"
    result = subprocess.run(
        [sys.executable, "-m", "training", "data", "--pack", str(pack_dir)], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (pack_dir / D.POOL_PACK).is_file()
    assert list(pack_dir.rglob("emnist-mnist-*")), "Study B's MNIST files travel beside the pack"
    monkeypatch.setenv("EMNIST_CACHE", str(tmp_path / "fresh-cache"))  # the pack, not the cache, must answer
    assert D._pool_fingerprint(pack_dir) == D._pool_fingerprint(emnist_env)
    for split in ("byclass", "bymerge", "balanced"):
        original, packed = D.load_split(split, "pool", root=emnist_env), D.load_split(split, "auto", root=pack_dir)
        assert packed.protocol == "pool"
        for part in ("train", "val", "test"):
            np.testing.assert_array_equal(packed.parts[part][0], original.parts[part][0])
            np.testing.assert_array_equal(packed.parts[part][1], original.parts[part][1])
    studyb = D.load_split("mnist50", root=pack_dir)
    np.testing.assert_array_equal(studyb.parts["train"][1], D.load_split("mnist50", root=emnist_env).parts["train"][1])


def test_broken_pool_pack_is_a_clear_error(tmp_path: Path, emnist_env: Path) -> None:
    (tmp_path / D.POOL_PACK).write_bytes(b"not a zip")
    with pytest.raises(D.DataError, match="not a readable pool pack"):
        D.load_split("byclass", "pool", root=tmp_path)
