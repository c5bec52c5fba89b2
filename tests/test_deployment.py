"""A deployment installs requirements.txt only (a Hugging Face Space does, then runs app.py): the app must import
nothing that file does not bring, and the file must not bring the training and test stack."""

from __future__ import annotations

import importlib.metadata as metadata
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
TRAINING_STACK = {"torch", "torchvision", "ray", "tensorboard", "playwright", "pytest", "scikit-learn", "umap-learn",
                  "kornia", "onnx", "ruff"}


def requirement_names(path: Path) -> list[str]:
    """The distributions a requirements file names (``-r`` lines are not followed)."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line).name for line in lines if line and not line.startswith("-")]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(names: list[str]) -> set[str]:
    """The named distributions and everything they require (as installed here, extras left out)."""
    seen: set[str] = set()
    todo = [canonical(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonical(req.name))
    return seen


def test_requirements_txt_is_the_runtime_only() -> None:
    runtime = {canonical(n) for n in requirement_names(REPO / "requirements.txt")}
    assert {"gradio", "onnxruntime-gpu", "numpy", "pillow", "matplotlib"} <= runtime
    assert not runtime & TRAINING_STACK, f"requirements.txt installs the training stack: {runtime & TRAINING_STACK}"
    assert "onnxruntime" not in runtime, "never onnxruntime beside onnxruntime-gpu (they share one module)"
    dev = (REPO / "requirements-dev.txt").read_text()
    assert "-r requirements.txt" in dev and "torch==" in dev


def test_the_app_imports_only_what_requirements_txt_installs() -> None:
    """Build the app on the shipped models in a fresh process and map every top-level module it imported to the
    distribution that installs it."""
    code = (
        "import sys, app; "
        f"app.build_demo({str(REPO / 'exported_models')!r}, {str(REPO / 'assets')!r}); "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names))))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = done.stdout.splitlines()[-1].split()
    allowed = closure(requirement_names(REPO / "requirements.txt"))
    owners = metadata.packages_distributions()
    project = {p.name for p in REPO.iterdir() if p.is_dir() or p.suffix == ".py"} | {"app"}
    outside = {}
    for module in imported:
        if module in project or module.startswith("_") or module not in owners:
            continue  # the project's own packages, interpreter internals, modules no installed distribution owns
        dists = {canonical(d) for d in owners[module]}
        if not dists & allowed:
            outside[module] = sorted(dists)
    assert not outside, f"the app imports modules requirements.txt does not install: {outside}"
