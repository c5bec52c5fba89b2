"""Shared fixtures: the shipped mini data root of real images, and isolated cache/run folders."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURE_ROOT = Path(__file__).parent / "fixtures" / "emnist"
SHARED_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "emnist"
OUTPUT_DIR = Path(__file__).parent / "output"  # screenshots and other artefacts a person may want to look at


@pytest.fixture
def emnist_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """EMNIST_ROOT -> the shipped fixture; cache and runs in a fresh temporary folder."""
    monkeypatch.setenv("EMNIST_ROOT", str(FIXTURE_ROOT))
    monkeypatch.setenv("EMNIST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RUNS_DIR", str(tmp_path / "runs"))  # training.paths.runs_dir() reads it at call time
    return FIXTURE_ROOT


@pytest.fixture
def shared_root() -> Path:
    """The real data beside the checkout; tests that need it skip with a reason when it is absent."""
    if not (SHARED_ROOT / "emnist-byclass-test-images-idx3-ubyte.gz").exists():
        pytest.skip(f"needs the EMNIST files in {SHARED_ROOT} (absent here)")
    return SHARED_ROOT
