"""The house's rules that no other test holds (issue 27): the canvas's value is decoded once, its script is a file
of its own, and the Results tab reads the tables' JSON, never a README."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from app_support import letter_a

from recognizer.preprocess import to_model_input
from webapp.canvas import BRUSH, HTML, JS, CanvasDrawing, canvas_value, png_data_url
from webapp.results import read_results, results_views


def test_a_canvas_value_is_decoded_once_into_what_keeping_and_preprocessing_read() -> None:
    ink = (255 - letter_a().min(axis=-1)).astype(np.uint8)  # the canvas paints black strokes on a transparent page
    layer = np.zeros((*ink.shape, 4), np.uint8)
    layer[..., 3] = ink
    url = png_data_url(layer)
    drawing = canvas_value(url)
    assert isinstance(drawing, CanvasDrawing)
    assert drawing.png == base64.b64decode(url.split(",", 1)[1])  # what a keep stores: the bytes as drawn
    assert np.array_equal(drawing.layer, layer)
    assert drawing.composite.shape == (*ink.shape, 4) and (drawing.composite[..., 3] == 255).all()
    assert to_model_input(drawing.composite).max() == 1.0  # preprocessing reads the decoded pixels as they are


def test_the_canvas_script_is_its_own_file() -> None:
    script = Path(__file__).resolve().parents[1] / "webapp" / "canvas.js"
    assert script.read_text(encoding="utf-8") == JS and "{{" not in JS
    assert f'data-brush="{BRUSH}"' in HTML and "canvas.dataset.brush" in JS


def test_the_results_tab_never_reads_a_readme(tmp_path: Path) -> None:
    """A README that cannot even be decoded changes nothing: every figure comes from the tables' JSON."""
    folder = tmp_path / "results"
    (folder / "paper").mkdir(parents=True)
    row = {"key": "a", "label": "Model A", "status": "done", "test_accuracy": 0.9, "val_accuracy": 0.88,
           "epochs_run": 3, "report": {"test_accuracy": 91.0}}
    table = {"table": "table2", "title": "Table 2: models", "profile": "quick", "notes": "A note.", "rows": [row],
             "claims": [{"text": "A wins", "verdict": "holds", "basis": "validation"}]}
    for where, profile in ((folder, "quick"), (folder / "paper", "paper")):
        (where / "table2.json").write_text(json.dumps({**table, "profile": profile}))
        (where / "README.md").write_bytes(b"\xff\xfe not text")
    views = results_views(folder)
    assert [v.label for v in views] == ["paper profile", "quick profile"]
    view = read_results(folder)
    assert view.message is None and [s.title for s in view.sections] == ["Table 2: models"]
    body = view.sections[0].body
    assert "| Model A | 90.00 | 91.0 | 88.00 | 3 |" in body and "A note." in body
    assert "**holds**" in view.sections[0].verdicts[0] and "| Table 2 | ✓ **holds**" in view.overview
