"""The page's smaller model copies (training/page_models.py, exported_models/page/): they load through the app's
runtime as the shipped models do, fill the same three slots with the same labels, and answer as the originals."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import onnxruntime as ort

from recognizer.inference import Recognizer
from recognizer.preprocess import from_idx
from training.page_models import variant_bytes

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "emnist" / "partial" / "emnist-byclass-test-images-idx3-ubyte.fixture.gz"


def fixture_images(n: int) -> np.ndarray:
    with gzip.open(FIXTURE, "rb") as f:
        _, count, rows, cols = struct.unpack(">IIII", f.read(16))
        raw = np.frombuffer(f.read(min(n, count) * rows * cols), np.uint8).reshape(-1, rows, cols)
    return from_idx(raw)


def test_the_page_copies_fill_the_same_slots_with_the_same_labels() -> None:
    shipped, page = Recognizer(REPO / "exported_models"), Recognizer(REPO / "exported_models" / "page")
    assert not page.unavailable, page.unavailable  # every file there, matching its sha256
    assert page.default_slots() == shipped.default_slots()
    for name in page.default_slots().values():
        assert page.entry(name).labels == shipped.entry(name).labels
        assert page.entry(name).path.stat().st_size < 0.3 * shipped.entry(name).path.stat().st_size
    x = fixture_images(200)
    for name in page.default_slots().values():
        same = (page.predict_batch(name, x)[0].argmax(1) == shipped.predict_batch(name, x)[0].argmax(1)).mean()
        assert same >= 0.98, f"{name}: the page copy gives the original's top-1 on {same:.1%} of 200 test images"


def test_int8_weights_compute_close_to_the_original() -> None:
    original = REPO / "exported_models" / "residual_cnn-balanced.onnx"
    x = fixture_images(64)[:, None]
    a = ort.InferenceSession(str(original), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(variant_bytes(original, "int8"), providers=["CPUExecutionProvider"])
    la = a.run(["logits"], {"image": x})[0]
    lb = b.run(["logits"], {"image": x})[0]
    assert np.abs(la - lb).max() < 0.05 * np.abs(la).max()
    assert (la.argmax(1) == lb.argmax(1)).mean() >= 0.95
    assert not np.array_equal(la, lb)  # the weights really are int8 now
