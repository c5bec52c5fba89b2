"""recognizer.inference, .saliency and .embeddings on tiny ONNX models built here (no torch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from recognizer.embeddings import Embedding, EmbeddingError, load_embedding
from recognizer.files import sha256_file
from recognizer.inference import Recognizer, softmax
from recognizer.labels import split_chars
from recognizer.manifest import (
    EntryMetrics,
    InputSpec,
    Manifest,
    ManifestError,
    ModelEntry,
    TrainingRecord,
    load_manifest,
    save_manifest,
)
from recognizer.saliency import colormap, occlusion_map, overlay

FEATURES = 16


def tiny_model(path: Path, w1: np.ndarray, w2: np.ndarray, logits_name: str = "logits") -> None:
    """image [N,1,28,28] -> Flatten -> MatMul(784xD) -> Relu = features -> MatMul(DxC) = logits."""
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["image"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w1"], ["hidden"]),
            helper.make_node("Relu", ["hidden"], ["features"]),
            helper.make_node("MatMul", ["features", "w2"], [logits_name]),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [
            helper.make_tensor_value_info(logits_name, TensorProto.FLOAT, ["N", w2.shape[1]]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", w1.shape[1]]),
        ],
        initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def random_weights(n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.1, (784, FEATURES)).astype(np.float32)
    w2 = rng.normal(0, 1.0, (FEATURES, n_classes)).astype(np.float32)
    return w1, w2


def add_model(folder: Path, name: str, split: str, seed: int, **fields) -> tuple[ModelEntry, tuple]:
    labels = list(split_chars(split))
    weights = random_weights(len(labels), seed)
    tiny_model(folder / f"{name}.onnx", *weights)
    entry = ModelEntry(
        name=name,
        file=f"{name}.onnx",
        sha256=sha256_file(folder / f"{name}.onnx"),
        labels=labels,
        family="tiny",
        split=split,
        protocol="pool",
        profile="test",
        input=InputSpec(name="image", shape=[1, 28, 28], range=[0, 1], orientation="upright"),
        metrics=EntryMetrics(test_accuracy=0.5 + seed / 100),
        training=TrainingRecord({"seed": seed}),
        **fields,
    )
    return entry, weights


def reference_logits(x: np.ndarray, weights: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    w1, w2 = weights
    return np.maximum(x.reshape(len(x), -1) @ w1, 0) @ w2


@pytest.fixture()
def exported(tmp_path: Path) -> tuple[Path, dict[str, tuple]]:
    """A folder with three working models and their manifest."""
    made = [
        add_model(tmp_path, "tiny-byclass", "byclass", 1),
        add_model(tmp_path, "tiny-bymerge", "bymerge", 2, slot="bymerge"),
        add_model(tmp_path, "tiny-balanced", "balanced", 3),
        add_model(tmp_path, "tiny-balanced-better", "balanced", 9),
    ]
    save_manifest(tmp_path, [entry for entry, _ in made])
    return tmp_path, {entry.name: weights for entry, weights in made}


@pytest.fixture()
def images() -> np.ndarray:
    return np.random.default_rng(7).random((5, 28, 28), dtype=np.float32)


# ---------------------------------------------------------------- manifest


def test_manifest_round_trip(exported: tuple[Path, dict]) -> None:
    folder, _ = exported
    entries = load_manifest(folder)
    assert [e.name for e in entries] == [  # as written: slot models first, then by family and name
        "tiny-bymerge",
        "tiny-balanced",
        "tiny-balanced-better",
        "tiny-byclass",
    ]
    assert load_manifest(folder / "manifest.json") == entries
    again = save_manifest(folder / "copy.json", entries)
    assert load_manifest(again) == entries
    raw = json.loads((folder / "manifest.json").read_text())
    byclass = next(m for m in raw["models"] if m["name"] == "tiny-byclass")
    assert raw["format"] == 1 and "path" not in byclass and "slot" not in byclass
    named = {e.name: e for e in entries}
    assert named["tiny-bymerge"].slot == "bymerge" and named["tiny-byclass"].path == folder / "tiny-byclass.onnx"
    assert named["tiny-bymerge"].merged and not named["tiny-byclass"].merged and "C/c" in named["tiny-bymerge"].displays


def test_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no model manifest"):
        load_manifest(tmp_path)
    with pytest.raises(ManifestError, match="no model manifest"):
        Recognizer(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not JSON"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": 1}')
    with pytest.raises(ManifestError, match="models"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": 1, "models": [{"name": "x"}]}')
    with pytest.raises(ManifestError, match="lacks"):
        load_manifest(tmp_path)


def test_unknown_manifest_fields_are_kept(exported: tuple[Path, dict]) -> None:
    folder, _ = exported
    raw = json.loads((folder / "manifest.json").read_text())
    raw["models"][0]["added_later"] = True
    (folder / "manifest.json").write_text(json.dumps(raw))
    (entry, *_) = load_manifest(folder)
    assert entry.name == "tiny-bymerge" and entry.extra == {"added_later": True}
    written = json.loads(Manifest.read(folder).write(folder / "again.json").read_text())
    assert written["models"][0]["added_later"] is True


SHIPPED = Path(__file__).resolve().parents[1] / "exported_models" / "manifest.json"


def test_the_shipped_manifest_writes_back_byte_identical(tmp_path: Path) -> None:
    manifest = Manifest.read(SHIPPED)
    assert manifest.write(tmp_path / "manifest.json").read_bytes() == SHIPPED.read_bytes()
    for e in manifest.models:  # as the export builds them, with no memory of the file: the same bytes again
        for part in (e.input, e.metrics, e.training, e.parity, e.export):
            part.read_keys = None
    assert manifest.write(tmp_path / "built.json").read_bytes() == SHIPPED.read_bytes()
    for e in manifest.models:  # every key the export wrote is a declared field (nothing fell into ``extra``)
        records = [e, e.input, e.metrics, e.parity, e.export]
        assert not any(r.extra for r in records), e.name
        assert e.training.run_id and e.training.model == e.family and e.metrics.runtime_test_accuracy > 0.8


def test_unknown_keys_in_every_part_round_trip(tmp_path: Path) -> None:
    """Keys an older or newer export wrote that this code does not declare are written back, not dropped."""
    raw = json.loads(SHIPPED.read_text())
    entry = raw["models"][0]
    figures = {"name": "residual_cnn-byclass", "validation": 0.9, "drawn_top1": None, "n_val": None, "new": 1}
    answers = entry.pop("answers", None)  # the parts in the order an entry writes them: answers after slot_rule
    entry |= {"recipe": {"profile": "lab", "augmentation": {"rotate": 12.0}, "pool_images": "all", "future": [1]},
              "slot_rule": {"slot": "byclass", "rule": "r", "lab": figures, "reproduction": None, "takes_slot": True,
                            "reason": "why", "later": "x"},
              **({"answers": answers | {"later": 2}} if answers else {}), "future_part": {"a": 1}}  # fmt: skip
    for part in ("input", "metrics", "training", "parity", "export"):
        entry[part]["added_later"] = {"nested": [1, 2]}
    entry["metrics"] |= {"drawbench": {"top1": 0.5, "new_figure": 0.1}, "latency": {"p50_ms": 1.0, "p99_ms": 2.0}}
    raw["skipped"] = [{"name": "x", "run_id": "r", "reason": "why"}]
    (tmp_path / "manifest.json").write_text(json.dumps(raw, indent=2) + "\n")
    manifest = Manifest.read(tmp_path)
    e = manifest.models[0]
    assert e.metrics.drawbench.extra == {"new_figure": 0.1} and e.slot_rule.lab.extra == {"new": 1}
    assert e.recipe.extra == {"future": [1]} and e.extra == {"future_part": {"a": 1}}
    assert answers is None or (e.answers.extra == {"later": 2} and e.answers.threshold("anything", 0.9) is not None)
    written = json.loads(manifest.write(tmp_path / "again.json").read_text())
    assert written == raw
    assert (tmp_path / "again.json").read_text() == (tmp_path / "manifest.json").read_text()  # in the same order


# ---------------------------------------------------------------- recognizer


def test_predict_top_k(exported: tuple[Path, dict], images: np.ndarray) -> None:
    folder, weights = exported
    rec = Recognizer(folder)
    assert rec.unavailable == {} and len(rec.models) == 4
    pred = rec.predict("tiny-byclass", images[0], k=5)
    probs = [p for _, _, p in pred.top]
    assert len(pred.top) == 5 and probs == sorted(probs, reverse=True)
    assert pred.probabilities.shape == (62,) and pred.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert pred.features.shape == (FEATURES,) and pred.latency_ms > 0
    expected = softmax(reference_logits(images[:1], weights["tiny-byclass"]))[0]
    np.testing.assert_allclose(pred.probabilities, expected, rtol=1e-4, atol=1e-6)
    best = int(np.argmax(expected))
    assert pred.char == split_chars("byclass")[best] and pred.confidence == pytest.approx(
        expected[best], rel=1e-4
    )


def test_merged_models_show_both_cases(exported: tuple[Path, dict]) -> None:
    folder, _ = exported
    pred = Recognizer(folder).predict("tiny-bymerge", np.zeros((28, 28), np.float32), k=47)
    shown = {char: text for char, text, _ in pred.top}
    assert shown["C"] == "C/c" and shown["a"] == "a" and len(shown) == 47


def test_predict_batch_matches_predict(exported: tuple[Path, dict], images: np.ndarray) -> None:
    folder, _ = exported
    rec = Recognizer(folder)
    probs, feats = rec.predict_batch("tiny-balanced", images, chunk=2)
    assert probs.shape == (5, 47) and feats.shape == (5, FEATURES)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    for i, x in enumerate(images):
        np.testing.assert_allclose(
            rec.predict("tiny-balanced", x).probabilities, probs[i], rtol=1e-4, atol=1e-6
        )
    np.testing.assert_allclose(rec.predict_batch("tiny-balanced", images[:, None])[0], probs, atol=1e-6)
    empty, _ = rec.predict_batch("tiny-balanced", np.zeros((0, 28, 28), np.float32))
    assert empty.shape == (0, 47)
    with pytest.raises(ValueError, match="28, 28"):
        rec.predict_batch("tiny-balanced", np.zeros((2, 32, 32), np.float32))


def test_providers_are_reported(exported: tuple[Path, dict]) -> None:
    folder, _ = exported
    rec = Recognizer(folder)
    assert all(p == ["CPUExecutionProvider"] for p in rec.providers.values())
    # Asking for CUDA on a machine without it falls back to the CPU instead of failing.
    cuda = Recognizer(folder, use_cuda=True)
    assert not cuda.unavailable and all("CPUExecutionProvider" in p for p in cuda.providers.values())


def test_broken_models_are_listed_and_the_rest_work(exported: tuple[Path, dict], images: np.ndarray) -> None:
    folder, _ = exported
    (folder / "tiny-byclass.onnx").unlink()
    with open(folder / "tiny-bymerge.onnx", "ab") as handle:
        handle.write(b"tampered")
    garbage = b"this is not an onnx model"
    (folder / "tiny-balanced.onnx").write_bytes(garbage)
    entries = load_manifest(folder)
    named = {e.name: e for e in entries}
    named["tiny-balanced"].sha256 = sha256_file(folder / "tiny-balanced.onnx")  # right hash, unloadable content
    save_manifest(folder, entries)
    rec = Recognizer(folder)
    assert set(rec.unavailable) == {"tiny-byclass", "tiny-bymerge", "tiny-balanced"}
    assert "missing" in rec.unavailable["tiny-byclass"]
    assert "sha256" in rec.unavailable["tiny-bymerge"]
    assert "cannot load" in rec.unavailable["tiny-balanced"]
    assert [e.name for e in rec.models] == ["tiny-balanced-better"]
    assert rec.predict("tiny-balanced-better", images[0]).probabilities.shape == (47,)
    with pytest.raises(KeyError, match="unavailable"):
        rec.predict("tiny-byclass", images[0])
    with pytest.raises(KeyError, match="no model named"):
        rec.predict("nope", images[0])


def test_wrong_output_name_makes_a_model_unavailable(tmp_path: Path) -> None:
    tiny_model(tmp_path / "odd.onnx", *random_weights(10, 0), logits_name="scores")
    entry = ModelEntry(
        "odd", "odd.onnx", sha256_file(tmp_path / "odd.onnx"), labels=list("0123456789"), split="digits"
    )
    save_manifest(tmp_path, [entry])
    rec = Recognizer(tmp_path)
    assert "no output 'logits'" in rec.unavailable["odd"] and rec.models == []


def test_label_count_must_match_the_model(exported: tuple[Path, dict]) -> None:
    folder, _ = exported
    entries = load_manifest(folder)
    byclass = next(e for e in entries if e.name == "tiny-byclass")
    byclass.labels = byclass.labels[:10]
    save_manifest(folder, entries)
    rec = Recognizer(folder)
    assert "62 logits" in rec.unavailable["tiny-byclass"] and len(rec.models) == 3


def test_default_slots(exported: tuple[Path, dict]) -> None:
    folder, _ = exported
    slots = Recognizer(folder).default_slots()
    # byclass by split, bymerge by its slot field, balanced: the more accurate of two.
    assert slots == {"byclass": "tiny-byclass", "bymerge": "tiny-bymerge", "balanced": "tiny-balanced-better"}


# ---------------------------------------------------------------- saliency


class CountingSession:
    """Wraps an ONNX Runtime session to count how often it runs."""

    def __init__(self, session) -> None:
        self.session, self.calls = session, 0

    def run(self, *args, **kwargs):
        self.calls += 1
        return self.session.run(*args, **kwargs)


def corner_model(folder: Path) -> Recognizer:
    """Class 0 grows with the ink in the top-left 8x8 corner; class 1 is a constant reference."""
    w1 = np.zeros((784, 2), np.float32)
    corner = np.zeros((28, 28), np.float32)
    corner[:8, :8] = 1
    w1[:, 0] = corner.ravel() / 8
    w1[:, 1] = 1e-3
    tiny_model(folder / "corner.onnx", w1, np.array([[4.0, 0.0], [0.0, 1.0]], np.float32))
    save_manifest(folder, [ModelEntry("corner", "corner.onnx", sha256_file(folder / "corner.onnx"), labels=["A", "B"])])
    return Recognizer(folder)


def test_occlusion_map_finds_the_region_that_matters(tmp_path: Path) -> None:
    rec = corner_model(tmp_path)
    counter = rec.sessions["corner"] = CountingSession(rec.sessions["corner"])
    x = np.zeros((28, 28), np.float32)
    x[2:7, 2:7] = 1  # ink that matters
    x[18:25, 18:25] = 1  # ink that does not
    heat = occlusion_map(rec, "corner", x)
    assert counter.calls == 1
    assert heat.shape == (28, 28) and heat.dtype == np.float32
    assert heat.min() >= 0 and heat.max() == pytest.approx(1.0)
    assert heat[2:7, 2:7].mean() > 0.3 and heat[16:, 16:].max() == 0
    assert heat[:10, :10].sum() > 0.95 * heat.sum()
    assert occlusion_map(rec, "corner", np.zeros((28, 28), np.float32)).max() == 0


def test_overlay_and_colormap() -> None:
    x = np.zeros((28, 28), np.float32)
    x[10:18, 12:14] = 1
    heat = np.zeros((28, 28), np.float32)
    picture = overlay(x, heat)
    assert picture.shape == (224, 224, 3) and picture.dtype == np.uint8
    assert (picture[..., 0] == picture[..., 1]).all() and picture[100, 100, 0] == 255  # no heat: plain grey
    heat[:, :] = 1
    hot = overlay(x, heat, size=112)
    assert hot.shape == (112, 112, 3) and not (hot[..., 0] == hot[..., 2]).all()
    ramp = colormap(np.linspace(0, 1, 5))
    assert ramp.shape == (5, 3) and ramp.sum(1).tolist() == sorted(ramp.sum(1).tolist())


# ---------------------------------------------------------------- embeddings


def synthetic_embedding(path: Path, **overrides) -> dict[str, np.ndarray]:
    """Three classes: separate directions in feature space, separate blobs on each map."""
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 1, (3, 24))
    labels = np.repeat(np.arange(3), 40)
    features = centres[labels] + rng.normal(0, 0.15, (120, 24))
    spots = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 8.0]])
    arrays = {
        "features": features.astype(np.float16),
        "labels": labels,
        "preds": np.where(np.arange(120) % 17 == 0, (labels + 1) % 3, labels),
        "thumbs": rng.integers(0, 256, (120, 28, 28), dtype=np.uint8),
        "umap": (spots[labels] + rng.normal(0, 0.5, (120, 2))).astype(np.float32),
        "tsne": (-spots[labels] + rng.normal(0, 0.5, (120, 2))).astype(np.float32),
        "indices": np.arange(120),  # an extra array the loader should ignore
    }
    arrays.update(overrides)
    np.savez(path, **arrays)
    return {"centres": centres, "spots": spots}


def test_embedding_load_and_place(tmp_path: Path) -> None:
    truth = synthetic_embedding(tmp_path / "m.npz")
    emb = load_embedding(tmp_path / "m.npz")
    assert isinstance(emb, Embedding) and len(emb) == 120
    assert emb.methods == ["umap", "tsne"] and emb.features.dtype == np.float32
    assert emb.mistakes().tolist() == [i for i in range(120) if i % 17 == 0]
    for cls in range(3):
        query = truth["centres"][cls] + np.random.default_rng(cls).normal(0, 0.1, 24)
        idx, sims = emb.neighbours(query, k=10)
        assert (emb.labels[idx] == cls).all() and np.all(np.diff(sims) <= 0)
        for method, sign in (("umap", 1), ("tsne", -1)):
            x, y = emb.place(query, method, k=10)
            coords = emb.maps[method]
            assert (
                coords[:, 0].min() <= x <= coords[:, 0].max()
                and coords[:, 1].min() <= y <= coords[:, 1].max()
            )
            assert np.hypot(x - sign * truth["spots"][cls][0], y - sign * truth["spots"][cls][1]) < 1.5
    with pytest.raises(KeyError, match="pixel_umap"):
        emb.place(truth["centres"][0], "pixel_umap")
    with pytest.raises(ValueError, match="values"):
        emb.place(np.ones(5), "umap")


def test_embedding_errors(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="no embedding file"):
        load_embedding(tmp_path / "absent.npz")
    (tmp_path / "garbage.npz").write_bytes(b"definitely not a zip")
    with pytest.raises(EmbeddingError, match="unreadable"):
        load_embedding(tmp_path / "garbage.npz")
    np.savez(tmp_path / "partial.npz", features=np.zeros((3, 4), np.float16))
    with pytest.raises(EmbeddingError, match="lacks"):
        load_embedding(tmp_path / "partial.npz")
    synthetic_embedding(tmp_path / "bad.npz", umap=np.zeros((5, 2), np.float32))
    with pytest.raises(EmbeddingError, match="umap"):
        load_embedding(tmp_path / "bad.npz")


# ---------------------------------------------------------------- dependencies


def test_runtime_package_never_imports_torch() -> None:
    code = (
        "import sys, recognizer, recognizer.labels, recognizer.preprocess, recognizer.inference, "
        "recognizer.saliency, recognizer.embeddings, recognizer.manifest, recognizer.files\n"
        "from recognizer import Recognizer, to_model_input, occlusion_map, load_embedding\n"
        "bad = [m for m in ('torch', 'training', 'gradio', 'matplotlib', 'webapp') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
