"""Report functions longer than the code-shape limit (60 lines) and imports made inside functions.

    python scripts/code_shape.py            # every package the limit covers
    python scripts/code_shape.py training   # one folder or file

Benchmarks and tests are outside the limit. Imports inside functions are allowed only for the optional heavy
modules named in LAZY_OK (loaded when a feature is used, not when the package is imported).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COVERED = ("training", "recognizer", "webapp", "app.py")
MAX_LINES = 60
# Optional heavy modules: umap/numba compile for ~24 s, torchvision's EMNIST only when downloading, onnx only on
# the export path, ray (~1 s of imports) only when `reproduce` has runs to train (training/sweep.py), playwright-free
# app code imports gradio at module level anyway; torchvision's ResNet-50 (~2 s of imports: torch._dynamo through
# torchvision.ops) only when one is built.
LAZY_OK = {"umap", "sklearn.manifold", "torchvision.datasets", "torchvision.models", "onnx", "onnxscript", "ray",
           "lightly", "kornia"}


def python_files(targets: list[str]) -> list[Path]:
    files: list[Path] = []
    for target in targets:
        path = ROOT / target
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return [f for f in files if ".venv" not in f.parts]


def long_functions(path: Path) -> list[tuple[str, int, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = node.end_lineno - first + 1
            if length > MAX_LINES:
                found.append((node.name, node.lineno, length))
    return found


def inner_imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])  # fmt: skip
            for name in names:
                if not any(name == ok or name.startswith(ok + ".") for ok in LAZY_OK):
                    found.append((name, node.lineno))
    return found


def main(argv: list[str]) -> int:
    problems = 0
    for path in python_files(argv or list(COVERED)):
        rel = path.relative_to(ROOT)
        for name, line, length in long_functions(path):
            print(f"{rel}:{line}: {name} is {length} lines (limit {MAX_LINES})")
            problems += 1
        for name, line in inner_imports(path):
            print(f"{rel}:{line}: import of {name} inside a function")
            problems += 1
    print(f"{problems} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
