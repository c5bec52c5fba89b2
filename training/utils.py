"""Small helpers the trainer and its callers share (torchvision's ``references/classification/utils.py``)."""

from __future__ import annotations

import os
import platform
import subprocess

import numpy as np
import torch

from training.paths import REPO_ROOT


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` is the GPU when there is one, else the CPU; any other name is taken as it is."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def environment() -> dict:
    """Where and with what a result was produced, recorded beside every result."""
    # $GIT_COMMIT names the commit where the code runs from a copy without .git (a lent GPU machine).
    commit = os.environ.get("GIT_COMMIT", "")
    try:
        commit = commit or subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "git_commit": commit or "unknown",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "host_cpus": os.cpu_count(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n indices keeping the class proportions, drawn with a seed (sorted)."""
    if n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    # Round-robin over classes in the shuffled order keeps proportions without a per-class loop.
    rank = np.empty(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        members = order[labels[order] == c]
        rank[members] = (np.arange(len(members)) + rng.random()) / len(members)
    return np.sort(np.argsort(rank, kind="stable")[:n])
