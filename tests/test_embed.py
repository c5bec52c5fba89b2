"""Embedding maps: the npz contract, the app's reader, stratified samples and the shared pixel map."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from app_support import fixture_data, train_tiny

from recognizer.embeddings import MAP_NAMES, load_embedding
from recognizer.inference import Recognizer
from training import embed as B
from training import export as E

FAMILIES = ("lenet5", "plain_cnn")  # the two fastest; the export tests cover the residual CNN
SAMPLES = 100  # of the fixture's 134 byclass test images

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory):
    """Two tiny runs on the real-image fixture, exported and mapped once for the module."""
    tmp = tmp_path_factory.mktemp("embed")
    with fixture_data(tmp):
        argv = ["--out", str(tmp / "models"), "--quiet", "--exporter", "legacy"]
        for family in FAMILIES:
            argv += ["--run", train_tiny(family)]
        assert E.main(argv) == 0
        rc = B.main(["--models", str(tmp / "models"), "--out", str(tmp / "maps"), "--samples", str(SAMPLES),
                     "--tsne-max-iter", "250", "--quiet"])
        yield SimpleNamespace(rc=rc, models=tmp / "models", maps=tmp / "maps", tmp=tmp)


def test_embed_writes_the_contract(embedded) -> None:
    from training.data import load_split

    assert embedded.rc == 0
    x_test, y_test = load_split("byclass", "pool").parts["test"]
    recognizer = Recognizer(embedded.models)
    for family in FAMILIES:
        name = f"{family}-byclass"
        path = embedded.maps / f"{name}.npz"
        with np.load(path) as raw:
            assert raw["features"].dtype == np.float16 and raw["thumbs"].dtype == np.uint8
            assert all(raw[m].dtype == np.float32 for m in MAP_NAMES)
            index = raw["index"]
        emb = load_embedding(path)
        assert len(emb) == SAMPLES and emb.methods == list(MAP_NAMES)
        assert emb.thumbs.shape == (SAMPLES, 28, 28)
        assert all(emb.maps[m].shape == (SAMPLES, 2) and np.isfinite(emb.maps[m]).all() for m in MAP_NAMES)
        # The sample is the test part's images (upright, as stored by load_split) with their labels...
        assert np.array_equal(emb.thumbs, x_test[index]) and np.array_equal(emb.labels, y_test[index])
        # ...and features and predictions are the app's runtime's own.
        probs, features = recognizer.predict_batch(name, x_test[index].astype(np.float32) / 255.0)
        assert np.array_equal(emb.preds, probs.argmax(1))
        assert np.abs(emb.features - features).max() <= 1e-2 * max(1.0, np.abs(features).max())
        for method in MAP_NAMES:
            assert (embedded.maps / f"{name}-{method}.png").stat().st_size > 10_000
        # A drawing is placed on the map through its features, as the app does.
        x, y = emb.place(features[0], "umap")
        lo, hi = emb.maps["umap"].min(0), emb.maps["umap"].max(0)
        assert lo[0] <= x <= hi[0] and lo[1] <= y <= hi[1]


def test_index_lists_models_and_the_pixel_map_is_shared(embedded) -> None:
    index = json.loads((embedded.maps / "index.json").read_text())
    records = {r["name"]: r for r in index["models"]}
    assert set(records) == {f"{f}-byclass" for f in FAMILIES}
    for record in records.values():
        assert record["n"] == SAMPLES and record["n_test"] == 134 and record["methods"] == list(MAP_NAMES)
        assert set(record["seconds"]) >= {"features", *MAP_NAMES, "total"}
    assert index["settings"]["umap"] == {"n_neighbors": 15, "min_dist": 0.1, "random_state": 42}
    # Both models of a split share one sample, so the raw-pixel map is computed once and reused.
    maps = [load_embedding(embedded.maps / f"{f}-byclass.npz") for f in FAMILIES]
    assert np.array_equal(maps[0].labels, maps[1].labels)
    assert np.array_equal(maps[0].maps["pixel_umap"], maps[1].maps["pixel_umap"])
    assert sum(bool(r["seconds"].get("pixel_umap_reused")) for r in records.values()) == 1


def test_sample_is_stratified_seeded_and_capped() -> None:
    labels = np.repeat(np.arange(5), [500, 300, 100, 60, 40])
    idx = B.sample_test(labels, 100)
    assert len(idx) == 100 and len(set(idx.tolist())) == 100
    assert np.bincount(labels[idx], minlength=5).tolist() == [50, 30, 10, 6, 4]
    assert np.array_equal(idx, B.sample_test(labels, 100))
    assert len(B.sample_test(labels, 5000)) == len(labels)


def test_missing_manifest_is_a_message(tmp_path: Path, capsys) -> None:
    assert B.main(["--models", str(tmp_path / "none"), "--out", str(tmp_path / "maps")]) == 1
    err = capsys.readouterr().err
    assert "no model manifest" in err and "python -m training export" in err
