"""The page's inference (webapp/static/inference.js on onnxruntime-web, run in node) gives the server's answers:
the same slots, the same labels' order, the same top-1 and nearly the same probabilities as the app's ONNX Runtime
sessions (recognizer.inference) for the page's model copies (exported_models/page/)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from recognizer.inference import Recognizer
from tests.test_page_models import fixture_images

REPO = Path(__file__).resolve().parents[1]
PAGE_MODELS = REPO / "exported_models" / "page"
ORT_WEB = REPO / "node_modules" / "onnxruntime-web" / "package.json"

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="needs node (part of the set-up: node 20)"),
    pytest.mark.skipif(not ORT_WEB.is_file(), reason="needs onnxruntime-web in node_modules/ (make test runs npm ci)"),
]


def test_the_page_answers_as_the_server_does(tmp_path: Path) -> None:
    x = fixture_images(120)
    src, dst = tmp_path / "inputs.bin", tmp_path / "probs.bin"
    src.write_bytes(b"X281" + struct.pack("<I", len(x)) + x.astype("<f4").tobytes())
    done = subprocess.run(["node", str(REPO / "tests" / "inference_node.mjs"), str(PAGE_MODELS), str(src), str(dst)],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    recognizer = Recognizer(PAGE_MODELS)
    slots = recognizer.default_slots()
    assert [(s["slot"], s["name"]) for s in summary["slots"]] == list(slots.items())
    probs = np.fromfile(dst, "<f4")
    start = 0
    for slot, name in slots.items():
        classes = len(recognizer.entry(name).labels)
        page = probs[start : start + len(x) * classes].reshape(len(x), classes)
        start += len(x) * classes
        server = recognizer.predict_batch(name, x)[0]
        assert (page.argmax(1) == server.argmax(1)).mean() >= 0.995, f"{slot}: top-1 differs"
        assert np.abs(page - server).max() < 1e-3, f"{slot}: probabilities differ by {np.abs(page - server).max():.2g}"
    assert start == probs.size
