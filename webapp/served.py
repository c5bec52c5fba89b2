"""The app's state: the served models (one ONNX Runtime session each) and the assets beside them.

``ServedModels`` is made once per app. It opens the models of a manifest, keeps the embedding maps it has read
(lazily, per model) and the drawing benchmark's figures. It answers questions about that state;
what the tabs do with it lives in their own modules. ``open_drawings`` (called once by ``build_demo``) opens the
kept-drawings store: ``store`` is it (None when off), ``keep_off`` why keeping is off (None when on).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from recognizer.conformal import DEFAULT_LEVEL
from recognizer.drawings import SQLiteStore, StoreUnavailable, open_store
from recognizer.embeddings import Embedding, EmbeddingError, load_embedding
from recognizer.inference import Recognizer
from recognizer.manifest import SLOTS, Manifest, ManifestError, ModelEntry, SkippedModel, manifest_path

from .limits import Limits


class ServedModels:
    """The models of an export folder and the assets beside them, loaded once for the app's lifetime."""

    def __init__(self, models_dir: str | os.PathLike = "exported_models", assets_dir: str | os.PathLike = "assets",
                 use_cuda: bool = False, threads: int = 1, level: float = DEFAULT_LEVEL) -> None:
        self.models_dir = Path(models_dir)
        self.level = level  # the answer sets' stated coverage (app.py --coverage)
        self.assets_dir = Path(assets_dir)
        self.problem: str | None = None
        self.recognizer: Recognizer | None = None
        try:
            self.recognizer = Recognizer(self.models_dir, use_cuda=use_cuda, intra_op_num_threads=threads)
        except Exception as err:  # a missing or broken manifest: the app still starts and says so
            self.problem = str(err) or type(err).__name__
        if self.recognizer is not None and not self.recognizer.entries:
            self.problem = f"the manifest {manifest_path(self.models_dir)} lists no models"
        self.skipped = self._read_skipped()
        self._embeddings: dict[str, Embedding | str] = {}
        self._lock = threading.Lock()
        self._drawbench: dict[str, dict] | None = None
        self.store: SQLiteStore | None = None  # the kept drawings (open_drawings)
        self.drawings_path: Path | None = None
        self.keep_off: str | None = "the app was started without a store for drawings"
        self.limits = Limits()  # the store's size and the per-client rates (build_demo sets the app's)
        self.page = None  # the page's own inference: webapp.page_files.PageFiles (build_demo sets it)

    def page_runs(self, names: list[str | None]) -> bool:
        """Whether the page answers for these slots itself: it can (``page.enabled``) and runs exactly these models."""
        if self.page is None or not self.page.enabled:
            return False
        return list(names) == [s["name"] for s in self.page.config["slots"]]

    # ------------------------------------------------------------ kept drawings

    def open_drawings(self, path: str | os.PathLike | None, keep: bool = True) -> None:
        """Open the store at ``path`` (None or ``keep=False``: keeping off). A store that cannot be opened for
        writing leaves keeping off with the reason, and is opened read-only where it can be, to show what it holds."""
        if not keep or path is None:
            self.keep_off = "this app was started with --no-keep" if not keep else self.keep_off
            return
        self.drawings_path = Path(path)
        try:
            self.store, self.keep_off = open_store(path, limits=self.limits.store), None
        except StoreUnavailable as err:
            self.keep_off = self.shown_reason(err)
            try:
                self.store = open_store(path, read_only=True)
            except StoreUnavailable:
                self.store = None

    def shown_reason(self, err: StoreUnavailable) -> str:
        """The store's reason without the server's path (the log has it)."""
        path = self.drawings_path
        if path is None:
            return err.reason
        return err.reason.removeprefix(f"{path}: ").replace(str(path.parent), "…").replace(str(path), path.name)

    # ------------------------------------------------------------ models

    @property
    def models(self) -> list[ModelEntry]:
        """The models that loaded, in manifest order."""
        return self.recognizer.models if self.recognizer else []

    @property
    def providers(self) -> list[str]:
        """The ONNX Runtime providers the models' sessions run on."""
        return sorted({p for ps in self.recognizer.providers.values() for p in ps}) if self.recognizer else []

    @property
    def unavailable(self) -> dict[str, str]:
        return dict(self.recognizer.unavailable) if self.recognizer else {}

    def _read_skipped(self) -> list[SkippedModel]:
        """Models the export step left out on purpose (the manifest's ``skipped`` list)."""
        try:
            return Manifest.read(self.models_dir).skipped
        except ManifestError:
            return []

    def serves(self, name: str | None) -> bool:
        """Whether the model loaded and can answer."""
        return bool(name) and self.recognizer is not None and name in self.recognizer.sessions

    def model_choices(self) -> list[tuple[str, str]]:
        """(label, name) for the model dropdowns: every model that loaded."""
        return [(e.name, e.name) for e in self.models]

    def slot_defaults(self) -> list[str | None]:
        """The model of each of the three slots: the manifest's choice per split, others filling any gap."""
        if self.recognizer is None:
            return [None] * len(SLOTS)
        chosen = self.recognizer.default_slots()
        names: list[str | None] = [chosen.get(slot) for slot in SLOTS]
        spare = [e.name for e in self.models if e.name not in names]
        return [n if n is not None else (spare.pop(0) if spare else None) for n in names]

    def entry(self, name: str | None) -> ModelEntry | None:
        if not name or self.recognizer is None:
            return None
        try:
            return self.recognizer.entry(name)
        except KeyError:
            return None

    def class_choices(self, name: str | None) -> list[str]:
        """The model's classes as shown to a person ('C/c' for a merged class)."""
        e = self.entry(name)
        return e.displays if e else []

    # ------------------------------------------------------------ assets

    def embedding_file(self, name: str) -> Path:
        return self.assets_dir / "embeddings" / f"{name}.npz"

    def embedding(self, name: str) -> Embedding:
        """The model's map file, loaded on first use and kept; raises EmbeddingError with a readable reason."""
        with self._lock:
            cached = self._embeddings.get(name)
            if cached is None:
                try:
                    cached = load_embedding(self.embedding_file(name))
                except EmbeddingError as err:
                    cached = str(err)  # remembered too: a missing file is not looked for on every event
                self._embeddings[name] = cached
        if isinstance(cached, str):
            raise EmbeddingError(cached)
        return cached

    def drawbench_figures(self) -> dict[str, dict]:
        """The committed drawing benchmark's figures per model file (by sha256: a re-exported file has none), read
        once from ``assets/drawbench/results.json``; {} when it is absent or unreadable."""
        if self._drawbench is None:
            try:
                bench = json.loads((self.assets_dir / "drawbench" / "results.json").read_text())
                drawings = bench["n_sources"] * len(bench["config"]["variants"])
                self._drawbench = {m["sha256"]: {**m["drawn"], "drawings": drawings} for m in bench["models"]}
            except (OSError, ValueError, KeyError, TypeError):
                self._drawbench = {}
        return self._drawbench
