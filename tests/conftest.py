"""Shared fixtures: the shipped mini data root of real images, and isolated cache/run folders.

Every test, and every process a test starts, computes on one thread (``OMP_NUM_THREADS=1``, set before torch loads):
the tests' models are tiny, and on a shared 2-core CPU two OpenMP threads per process wait on each other, several
times slower (a residual CNN step: 65 ms on one thread, 470 ms on two while another process computes). Results do
not depend on it: every comparison a test makes is between runs made the same way. The suite runs in two processes
(pytest-xdist, ``-n 2 --dist loadfile`` in pyproject.toml), one per core, each file whole in one of them so a
module's fixtures are built once. Ray is no obstacle: the embedded sweeps start a Ray of their own
(``address="local"``), the two-node test its own cluster on its own port and temp folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

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
