"""Where the torch side reads and writes, each read from the environment at call time (tests set the variables).

- ``runs_dir()``: run folders, ``$RUNS_DIR`` else ``runs/``.
- ``results_dir()``: results tables, figures and pages, ``$RESULTS_DIR`` else ``assets/results``.
- ``models_dir()``: exported models and the manifest, ``$MODELS_DIR`` else ``exported_models``.
- ``embeddings_dir()``: embedding maps, ``$EMBEDDINGS_DIR`` else ``assets/embeddings``.
- ``repo_relative(path)``: a path as messages and records show it, relative to the repo when inside it.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _from_env(variable: str, default: Path) -> Path:
    return Path(os.environ[variable]) if os.environ.get(variable) else default


def runs_dir() -> Path:
    return _from_env("RUNS_DIR", REPO_ROOT / "runs")


def results_dir() -> Path:
    return _from_env("RESULTS_DIR", REPO_ROOT / "assets" / "results")


def models_dir() -> Path:
    return _from_env("MODELS_DIR", REPO_ROOT / "exported_models")


def embeddings_dir() -> Path:
    return _from_env("EMBEDDINGS_DIR", REPO_ROOT / "assets" / "embeddings")


def repo_relative(path: Path) -> Path:
    """A path as a message shows it: relative to the repo when inside it (no machine paths in the manifest)."""
    return path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
