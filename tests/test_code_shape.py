"""The code's shape (issue 10): no function over 60 lines and no import inside a function in the covered packages
(training/, recognizer/, webapp/, app.py), except the optional heavy modules scripts/code_shape.py names."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "code_shape.py"


def _code_shape():
    spec = importlib.util.spec_from_file_location("code_shape", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_long_functions_and_no_imports_inside_functions(capsys: pytest.CaptureFixture[str]) -> None:
    assert _code_shape().main([]) == 0, capsys.readouterr().out


def test_the_check_catches_what_it_should(tmp_path: Path) -> None:
    shape = _code_shape()
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    source = tmp_path / "long.py"
    source.write_text(f"def long():\n{body}\n\n\ndef lazy():\n    import json\n    import umap\n")
    assert [(name, length) for name, _, length in shape.long_functions(source)] == [("long", 62)]
    assert [name for name, _ in shape.inner_imports(source)] == ["json"]
