"""Kept drawings: what a person drew, what they meant and what each model said, in a small SQLite store.

    store = open_store()                      # data/drawings.sqlite3 (git-ignored), or open_store(path)
    drawing_id = store.keep(Drawing.make(png, x28, "O/o", answers, app_version()))
    store.undo(drawing_id)                    # the person who kept it takes it back
    store.count_per_class(); store.recent(12); store.all(); store.get(drawing_id); store.close()

A kept record (``Drawing``) holds the canvas as drawn (PNG bytes), the 28x28 float32 model input, the character
(one of the 62 EMNIST byclass characters, or ``"O/o"`` for one of the 15 letters EMNIST merges when the person
leaves the case open), each slot's model name, sha256 and top 5 at that moment, the app's version, a UTC time and a
random id (uuid4 hex). Nothing about the person: no address, cookie or browser string has a column.

The store (``DrawingStore``, the interface; ``SQLiteStore``, the one implementation): write-ahead log, one
transaction per drawing (``BEGIN IMMEDIATE``, so concurrent writers queue on the busy timeout instead of failing),
``synchronous=FULL`` (a drawing whose ``keep`` returned survives a killed process and a power cut), the schema
version in ``PRAGMA user_version``. Each call borrows its own connection from a small pool. Bad input raises
``InvalidDrawing`` (a ``ValueError`` whose message a person can read) and stores nothing; a store that cannot be
opened or written (read-only, corrupt, full, missing folder) raises ``StoreUnavailable`` with the reason, so the app
keeps reading drawings and says why keeping is off.

``write_dataset`` exports drawings as a dataset: 28x28 images and labels in EMNIST's gzip IDX form (images stored
transposed, as NIST's files are), NIST-style mapping files, one PNG per drawing and a CSV. ``score_drawings`` is the
live benchmark: every letter-reading model's top-1 and top-3 on kept drawings, folded to the 47 merged classes as the
drawing benchmark scores (``training/drawbench.py``), so the app can show it without torch.

    python -m recognizer.drawings count [--store PATH]
    python -m recognizer.drawings delete ID [ID ...]        # the command line may delete any drawing by id
    python -m recognizer.drawings export OUT                # the dataset (the app's download is the same files)

Needs only the standard library, numpy and Pillow (never torch, Gradio or ``training``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import gzip
import io
import json
import re
import sqlite3
import struct
import sys
import tempfile
import threading
import tomllib
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from .files import write_atomic
from .labels import BYCLASS_CHARS, MERGED_CASE_LETTERS, MERGED_CHARS, merge_key

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = REPO_ROOT / "data" / "drawings.sqlite3"  # data/ is git-ignored
SCHEMA_VERSION = 1
MAX_PNG_BYTES = 2_000_000  # a 400x400 canvas is ~10-40 KB as PNG; anything near this is not a drawing
MAX_PNG_SIDE = 4096
MAX_ANSWERS_BYTES = 64_000
MIN_INK = 0.05  # a model input whose brightest pixel is below this holds no character
TOP_K = 5
BUSY_TIMEOUT_MS = 30_000  # how long a writer waits for another's transaction before giving up
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# The 15 letters EMNIST merges may be kept with the case left open: "C/c", as ``labels.display`` shows them.
OPEN_CASE: dict[str, str] = {f"{c}/{c.lower()}": c for c in MERGED_CASE_LETTERS}
CHARACTERS: tuple[str, ...] = BYCLASS_CHARS + tuple(OPEN_CASE)


class InvalidDrawing(ValueError):
    """A drawing the store refuses (bad character, empty, oversized, malformed); nothing was stored."""


class StoreUnavailable(RuntimeError):
    """The store cannot be opened or written; ``reason`` says why in words a person can act on."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"keeping drawings is off: {reason}")


# ---------------------------------------------------------------------------------------------
# The record


def parse_character(text: str) -> str:
    """The stored form of a character: one of the 62, or ``"C/c"`` (either order) for an open case."""
    value = str(text).strip()
    if value in BYCLASS_CHARS:
        return value
    if re.fullmatch(r"[A-Za-z]/[A-Za-z]", value):
        a, b = value.split("/")
        both = f"{a.upper()}/{a.lower()}"
        if {a, b} == {a.upper(), a.lower()} and both in OPEN_CASE:
            return both
    raise InvalidDrawing(f"{text!r} is not a character the models know: use one of the 62 EMNIST characters "
                         "(0-9, A-Z, a-z), or for a letter whose case EMNIST merges (C I J K L M O P S U V W X Y Z) "
                         "'O/o' to leave the case open")  # fmt: skip


def case_open(character: str) -> bool:
    return character in OPEN_CASE


def merged_character(character: str) -> str:
    """The 47-class (bymerge) name of a stored character: 'o', 'O' and 'O/o' all give 'O'."""
    return OPEN_CASE.get(character) or merge_key(character)


def byclass_label(character: str) -> int | None:
    """The byclass label (0..61), or None when the case was left open."""
    return None if case_open(character) else BYCLASS_CHARS.index(character)


def merged_label(character: str) -> int:
    """The bymerge/balanced label (0..46)."""
    return MERGED_CHARS.index(merged_character(character))


@dataclass(frozen=True, eq=False)  # eq=False: an array field has no plain ==
class Drawing:
    """One kept drawing. ``answers``: per slot ``{"slot", "model", "sha256", "top": [[char, probability], ...]}``, and
    the mode it answered under ("What are you drawing?") with its set: ``"mode"``, ``"set"``."""

    canvas_png: bytes
    x28: np.ndarray = field(repr=False)  # (28, 28) float32 in [0, 1], upright: exactly what the models saw
    character: str
    answers: tuple[dict[str, Any], ...] = ()
    app_version: str = ""
    id: str = ""
    created_utc: str = ""

    @classmethod
    def make(cls, canvas_png: bytes, x28: np.ndarray, character: str, answers: Sequence[Mapping[str, Any]] = (),
             app_version: str = "") -> Drawing:  # fmt: skip
        """A new drawing, checked (``InvalidDrawing``), with a fresh random id and the current UTC time."""
        drawing = cls(bytes(canvas_png), _as_input(x28), parse_character(character),
                      tuple(_answer(a) for a in answers), str(app_version)[:64], uuid.uuid4().hex,
                      dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"))  # fmt: skip
        drawing.check()
        return drawing

    @property
    def case_open(self) -> bool:
        return case_open(self.character)

    def check(self) -> None:
        """``InvalidDrawing`` with a clear message when anything is off; the store calls it before writing."""
        parse_character(self.character)
        check_png(self.canvas_png)
        _as_input(self.x28)
        if not re.fullmatch(r"[0-9a-f]{32}", self.id):
            raise InvalidDrawing(f"drawing id {self.id!r} is not a uuid4 hex string")
        if len(answers_json(self.answers)) > MAX_ANSWERS_BYTES:
            raise InvalidDrawing(f"the models' answers take over {MAX_ANSWERS_BYTES:,} bytes")

    def image8(self) -> np.ndarray:
        """The model input as upright uint8 (0..255), as EMNIST's images are."""
        return np.round(np.clip(self.x28, 0, 1) * 255).astype(np.uint8)


def _as_input(x28: Any) -> np.ndarray:
    x = np.asarray(x28, dtype=np.float32)
    if x.shape != (28, 28):
        raise InvalidDrawing(f"the model input must be 28x28, not {x.shape}")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise InvalidDrawing("the model input must hold values in [0, 1]")
    if x.max() < MIN_INK:
        raise InvalidDrawing("nothing drawn: an empty canvas is not kept")
    return np.ascontiguousarray(x)


def _answer(answer: Mapping[str, Any]) -> dict[str, Any]:
    """One slot's answer, checked and in plain JSON types: a top-5 of [char, probability], the mode and set if given."""
    try:
        # [char, probability] or a Prediction's (char, display, probability): first and last
        top = [[str(item[0]), round(float(item[-1]), 6)] for item in answer["top"][:TOP_K]]
        out = {"slot": str(answer.get("slot") or ""), "model": str(answer["model"]), "sha256": str(answer["sha256"]),
               "top": top}  # fmt: skip
        if answer.get("mode"):  # "What are you drawing?" when it was kept, and the set shown
            out |= {"mode": str(answer["mode"]), "set": [str(c) for c in answer.get("set") or []]}
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidDrawing(f"a model answer needs model, sha256 and top [[char, probability], ...]: {err}") from None
    if not re.fullmatch(r"[0-9a-fA-F]{64}", out["sha256"]):
        raise InvalidDrawing(f"model {out['model']!r}: sha256 {out['sha256']!r} is not 64 hex digits")
    return out


def answers_json(answers: Iterable[Mapping[str, Any]]) -> str:
    return json.dumps(list(answers), separators=(",", ":"))


def check_png(data: bytes) -> tuple[int, int]:
    """The PNG's size; ``InvalidDrawing`` for empty, oversized, huge or malformed bytes."""
    if not data:
        raise InvalidDrawing("the canvas is empty (no PNG bytes)")
    if len(data) > MAX_PNG_BYTES:
        raise InvalidDrawing(f"the canvas PNG is {len(data) / 1e6:.1f} MB, over the {MAX_PNG_BYTES / 1e6:g} MB limit")
    if not data.startswith(PNG_SIGNATURE):
        raise InvalidDrawing("the canvas is not a PNG image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            size = image.size
            if max(size) > MAX_PNG_SIDE:
                raise InvalidDrawing(f"the canvas is {size[0]}x{size[1]} pixels, over {MAX_PNG_SIDE} on a side")
            image.verify()
    except InvalidDrawing:
        raise
    except Exception as err:  # Pillow raises many types for broken files
        raise InvalidDrawing(f"the canvas PNG is unreadable: {err}") from None
    return size


def encode_png(image: np.ndarray) -> bytes:
    """A canvas (H, W) or (H, W, 3|4) uint8 array as PNG bytes (what the app keeps as drawn)."""
    out = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(out, "PNG", optimize=True)
    return out.getvalue()


def app_version() -> str:
    """The project's version from pyproject.toml ("unknown" where the file is not beside the package)."""
    try:
        return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


# ---------------------------------------------------------------------------------------------
# The store interface


class DrawingStore(Protocol):
    """What the app and the training side use; ``SQLiteStore`` is the one implementation."""

    def keep(self, drawing: Drawing) -> str: ...

    def undo(self, drawing_id: str) -> bool: ...

    def get(self, drawing_id: str) -> Drawing | None: ...

    def count(self) -> int: ...

    def count_per_class(self) -> dict[str, int]: ...

    def recent(self, n: int = 12) -> list[Drawing]: ...

    def all(self) -> Iterator[Drawing]: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# SQLite

SCHEMA = """
CREATE TABLE IF NOT EXISTS drawings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- order of keeping
    id TEXT NOT NULL UNIQUE,                 -- uuid4 hex
    created_utc TEXT NOT NULL,
    character TEXT NOT NULL,                 -- one of the 62, or 'C/c' for an open case
    canvas_png BLOB NOT NULL,
    input28 BLOB NOT NULL,                   -- 784 float32, little-endian, upright
    answers TEXT NOT NULL,                   -- JSON: per slot model, sha256, top 5
    app_version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS drawings_character ON drawings (character);
"""
COLUMNS = "id, created_utc, character, canvas_png, input28, answers, app_version"

# sqlite3 error names -> what a person can do about them
REASONS = {
    "SQLITE_FULL": "the disk (or the store's size limit) is full",
    "SQLITE_READONLY": "the store is read-only",
    "SQLITE_NOTADB": "the file is not a SQLite database (corrupt?)",
    "SQLITE_CORRUPT": "the database file is corrupt",
    "SQLITE_CANTOPEN": "the file cannot be opened (missing folder or no permission)",
    "SQLITE_BUSY": "another process holds the store for longer than the busy timeout",
    "SQLITE_LOCKED": "another process holds the store for longer than the busy timeout",
    "SQLITE_IOERR": "the disk failed to read or write",
    "SQLITE_PERM": "no permission to write the store",
}


def unavailable(path: Path | str, err: BaseException) -> StoreUnavailable:
    """One clear ``StoreUnavailable`` for any sqlite3 or OS error, naming the file and the cause."""
    name = getattr(err, "sqlite_errorname", "") or ""
    base = next((REASONS[k] for k in REASONS if name.startswith(k)), None)
    if base is None and isinstance(err, OSError):
        base = "its folder cannot be created or written"
    reason = f"{path}: {base or 'the store failed'} ({name + ': ' if name else ''}{err})"
    return StoreUnavailable(reason)


class SQLiteStore:
    """Kept drawings in one SQLite file; safe to share between threads (a connection per call in flight).

    ``read_only``: reads work, ``keep`` and ``undo`` raise ``StoreUnavailable``. ``max_bytes``: the file never
    grows past this (``PRAGMA max_page_count``); a keep that would pass it raises ``StoreUnavailable``, as a
    full disk does.
    """

    def __init__(self, path: str | Path = DEFAULT_PATH, read_only: bool = False, max_bytes: int | None = None,
                 busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:  # fmt: skip
        self.path = Path(path)
        self.read_only = read_only
        self.max_bytes = max_bytes
        self.busy_timeout_ms = busy_timeout_ms
        self._idle: list[sqlite3.Connection] = []  # open connections no thread is using
        self._lock = threading.Lock()
        self._closed = False
        try:
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._borrow() as conn:
                self._prepare(conn)
        except (sqlite3.Error, OSError) as err:
            self.close()
            raise unavailable(self.path, err) from err

    # -------------------------------------------------------- connections and schema

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            if not self.path.is_file():
                raise StoreUnavailable(f"{self.path}: no store to read (nothing kept yet)")
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                                   check_same_thread=False)  # fmt: skip
        else:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                                   check_same_thread=False)  # fmt: skip
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        if not self.read_only:
            conn.execute("PRAGMA synchronous = FULL")
        if self.max_bytes is not None:
            page = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {max(1, self.max_bytes // page)}")
        return conn

    @contextlib.contextmanager
    def _borrow(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation: an idle one, else a new one. Each thread in a call holds its own, so
        SQLite's locks (and the busy timeout) order the writers; there are never more than the calls at once."""
        if self._closed:
            raise StoreUnavailable(f"{self.path}: the store is closed")
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        conn = conn or self._connect()
        try:
            yield conn
        finally:
            with self._lock:
                closed = self._closed
                if not closed:
                    self._idle.append(conn)
            if closed:
                conn.close()

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Check the file (catches corruption now, not mid-keep) and create or check the schema."""
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise StoreUnavailable(f"{self.path}: the database file is corrupt ({check})")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreUnavailable(f"{self.path}: schema version {version} is newer than this code's "
                                   f"{SCHEMA_VERSION}; update the app")  # fmt: skip
        if self.read_only:
            if version != SCHEMA_VERSION:
                raise StoreUnavailable(f"{self.path}: not a drawings store (schema version {version})")
            return
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise StoreUnavailable(f"{self.path}: the write-ahead log cannot be turned on")
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements():  # not executescript: it would commit first
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    def _write(self, sql: str, params: tuple) -> int:
        """One statement in its own immediate transaction; returns the rows it changed."""
        if self.read_only:
            raise StoreUnavailable(f"{self.path}: the store is open read-only")
        try:
            with self._borrow() as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    changed = conn.execute(sql, params).rowcount
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
        except sqlite3.Error as err:
            raise unavailable(self.path, err) from err
        return changed

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            with self._borrow() as conn:
                return conn.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise unavailable(self.path, err) from err

    # -------------------------------------------------------- the interface

    def keep(self, drawing: Drawing) -> str:
        """Store one checked drawing in one transaction; its id once it is on disk."""
        drawing.check()
        params = (drawing.id, drawing.created_utc, drawing.character, drawing.canvas_png,
                  drawing.x28.astype("<f4").tobytes(), answers_json(drawing.answers), drawing.app_version)
        try:
            self._write(f"INSERT INTO drawings ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", params)
        except StoreUnavailable as err:
            if "UNIQUE" in str(err) or "CONSTRAINT" in str(err):
                raise InvalidDrawing(f"a drawing with id {drawing.id} is already kept") from None
            raise
        return drawing.id

    def undo(self, drawing_id: str) -> bool:
        """Delete one drawing by its id; False when there was none."""
        return self._write("DELETE FROM drawings WHERE id = ?", (str(drawing_id),)) > 0

    delete = undo

    def get(self, drawing_id: str) -> Drawing | None:
        rows = self._read(f"SELECT {COLUMNS} FROM drawings WHERE id = ?", (str(drawing_id),))
        return _row(rows[0]) if rows else None

    def count(self) -> int:
        return self._read("SELECT COUNT(*) FROM drawings")[0][0]

    def count_per_class(self) -> dict[str, int]:
        """Kept drawings per character, in the order of ``CHARACTERS`` (only characters that have any)."""
        counts = dict(self._read("SELECT character, COUNT(*) FROM drawings GROUP BY character"))
        return {c: counts[c] for c in CHARACTERS if c in counts}

    def recent(self, n: int = 12) -> list[Drawing]:
        """The ``n`` drawings kept last, newest first."""
        rows = self._read(f"SELECT {COLUMNS} FROM drawings ORDER BY seq DESC LIMIT ?", (max(0, int(n)),))
        return [_row(r) for r in rows]

    def all(self) -> Iterator[Drawing]:
        """Every drawing in the order kept, read in pages (a large store never sits in memory at once)."""
        last = 0
        while True:
            rows = self._read(f"SELECT seq, {COLUMNS} FROM drawings WHERE seq > ? ORDER BY seq LIMIT 500", (last,))
            if not rows:
                return
            last = rows[-1][0]
            yield from (_row(r[1:]) for r in rows)

    def __iter__(self) -> Iterator[Drawing]:
        return self.all()

    def close(self) -> None:
        """Close the idle connections now and busy ones when their call ends (the last close checkpoints the log)."""
        with self._lock:
            self._closed = True
            connections, self._idle = self._idle, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):  # closing is best effort
                conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rollback(conn: sqlite3.Connection) -> None:
    """Undo an open transaction; some errors (SQLITE_FULL) have already rolled it back."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _statements() -> list[str]:
    lines = [line.split("--")[0] for line in SCHEMA.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _row(row: Sequence) -> Drawing:
    drawing_id, created, character, png, x28, answers, version = row
    x = np.frombuffer(x28, dtype="<f4").reshape(28, 28).astype(np.float32)
    return Drawing(bytes(png), x, character, tuple(json.loads(answers)), version, drawing_id, created)


def open_store(path: str | Path | None = None, read_only: bool = False, max_bytes: int | None = None) -> SQLiteStore:
    """The default store (``data/drawings.sqlite3``) or the one at ``path``; ``StoreUnavailable`` says why not."""
    return SQLiteStore(DEFAULT_PATH if path is None else path, read_only=read_only, max_bytes=max_bytes)


# ---------------------------------------------------------------------------------------------
# The dataset export (EMNIST's IDX form, PNGs, a CSV)

DATASET_PREFIX = "emnist-drawings"
NO_LABEL = 255  # the byclass label file's value for a drawing whose case was left open


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file (NIST's format): magic 0x00000803/0x00000801, big-endian dims, then the data."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)  # no timestamp: the same drawings give the same file


def mapping_text(chars: Sequence[str]) -> str:
    """A NIST mapping file (``label ascii_code`` per line, CRLF as NIST's)."""
    return "".join(f"{i} {ord(c)}\r\n" for i, c in enumerate(chars))


def write_dataset(drawings: Iterable[Drawing], out: str | Path,
                  part_of: Mapping[str, str] | None = None) -> dict[str, int]:  # fmt: skip
    """Every drawing as a dataset in ``out``; returns the count per part.

    Per part (``all``, or the parts ``part_of`` gives each id: e.g. train/val/test) the files NIST's names follow:
    ``emnist-drawings-<part>-images-idx3-ubyte.gz`` (28x28 uint8, stored transposed as EMNIST's are),
    ``-byclass-labels-idx1-ubyte.gz`` (0..61; 255 where the case was left open) and ``-bymerge-labels-idx1-ubyte.gz``
    (0..46, always set); the mapping files; ``png/<id>.png`` as drawn; ``drawings.csv``, one row per drawing.
    """
    out = Path(out)
    groups: dict[str, list[Drawing]] = {}
    rows = []
    for d in drawings:
        part = part_of.get(d.id, "all") if part_of else "all"
        groups.setdefault(part, []).append(d)
        write_atomic(out / "png" / f"{d.id}.png", d.canvas_png)
        rows.append(csv_row(d, part))
    for part, members in groups.items():
        images = np.stack([d.image8().T for d in members])  # transposed, as NIST stores them
        byclass = np.array([NO_LABEL if d.case_open else byclass_label(d.character) for d in members])
        merged = np.array([merged_label(d.character) for d in members])
        stem = f"{DATASET_PREFIX}-{part}"
        write_atomic(out / f"{stem}-images-idx3-ubyte.gz", gzip_bytes(idx_bytes(images)))
        write_atomic(out / f"{stem}-byclass-labels-idx1-ubyte.gz", gzip_bytes(idx_bytes(byclass)))
        write_atomic(out / f"{stem}-bymerge-labels-idx1-ubyte.gz", gzip_bytes(idx_bytes(merged)))
    write_atomic(out / f"{DATASET_PREFIX}-byclass-mapping.txt", mapping_text(BYCLASS_CHARS))
    write_atomic(out / f"{DATASET_PREFIX}-bymerge-mapping.txt", mapping_text(MERGED_CHARS))
    write_atomic(out / "drawings.csv", _csv_text(rows))
    return {part: len(members) for part, members in groups.items()}


def write_dataset_zip(drawings: Iterable[Drawing], path: str | Path,
                      part_of: Mapping[str, str] | None = None) -> dict[str, int]:  # fmt: skip
    """The same dataset as one zip file (the app's download), written atomically; the count per part."""
    with tempfile.TemporaryDirectory(prefix="drawings-") as tmp:
        counts = write_dataset(drawings, Path(tmp) / "drawings", part_of)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted((Path(tmp) / "drawings").rglob("*")):
                if file.is_file():
                    archive.write(file, file.relative_to(tmp))
        write_atomic(path, buffer.getvalue())
    return counts


CSV_FIELDS = ("id", "part", "created_utc", "character", "case_open", "byclass_label", "bymerge_label", "png",
              "app_version", "answers")  # fmt: skip


def csv_row(d: Drawing, part: str) -> dict[str, Any]:
    label = byclass_label(d.character)
    return {"id": d.id, "part": part, "created_utc": d.created_utc, "character": d.character,
            "case_open": int(d.case_open), "byclass_label": "" if label is None else label,
            "bymerge_label": merged_label(d.character), "png": f"png/{d.id}.png", "app_version": d.app_version,
            "answers": answers_json(d.answers)}  # fmt: skip


def _csv_text(rows: list[dict[str, Any]]) -> str:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=CSV_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


# ---------------------------------------------------------------------------------------------
# The live benchmark: every letter-reading model on kept drawings

LETTER_SPLITS = ("byclass", "bymerge", "balanced")  # models that read letters (drawbench.BENCH_SPLITS)


def folded_hits(probs: np.ndarray, labels: Sequence[str], truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 and top-3 hits per drawing in the merged classes (``truth``: MERGED_CHARS indices); a byclass 'c' is
    right for 'C', 'c' and 'C/c'. The same rule as ``training.drawbench.folded_hits``."""
    folded = np.array([MERGED_CHARS.index(merge_key(c)) for c in labels])
    top3 = folded[np.argsort(-np.asarray(probs), axis=1, kind="stable")[:, :3]]
    return top3[:, 0] == truth, (top3 == truth[:, None]).any(1)


def score_drawings(recognizer: Any, drawings: Iterable[Drawing]) -> list[dict[str, Any]]:
    """Each loaded letter-reading model of a ``recognizer.inference.Recognizer`` on the drawings: top-1, top-3 (folded)
    and the count, beside the manifest's pool test figure and drawing-benchmark top-1 where it has them."""
    rows = list(drawings)
    x = np.stack([d.x28 for d in rows]) if rows else np.zeros((0, 28, 28), np.float32)
    truth = np.array([merged_label(d.character) for d in rows], np.int64)
    results = []
    for entry in recognizer.models:
        if entry.split not in LETTER_SPLITS:
            continue
        top1 = top3 = None
        if rows:
            hits1, hits3 = folded_hits(recognizer.predict_batch(entry.name, x)[0], entry.labels, truth)
            top1, top3 = float(hits1.mean()), float(hits3.mean())
        results.append({"name": entry.name, "slot": entry.slot, "sha256": entry.sha256, "top1": top1, "top3": top3,
                        "n": len(rows), "pool_test": entry.metrics.runtime_test_accuracy,
                        "drawbench_top1": drawn.top1 if (drawn := entry.metrics.drawbench) else None})  # fmt: skip
    return results


# ---------------------------------------------------------------------------------------------
# The command line (torch-free, for the machine the app runs on)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recognizer.drawings", description="the kept-drawings store")
    parser.add_argument("--store", type=Path, default=None, help=f"default {DEFAULT_PATH}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("count", help="kept drawings per character")
    delete = sub.add_parser("delete", help="delete drawings by id")
    delete.add_argument("ids", nargs="+")
    export = sub.add_parser("export", help="every drawing as a dataset (EMNIST IDX, PNGs, CSV)")
    export.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        with open_store(args.store, read_only=args.command != "delete") as store:
            if args.command == "count":
                print(json.dumps({"total": store.count(), "per_class": store.count_per_class()}))
            elif args.command == "delete":
                missing = [i for i in args.ids if not store.delete(i)]
                print(f"deleted {len(args.ids) - len(missing)}; not found: {missing or 'none'}")
                return 1 if missing else 0
            else:
                print(json.dumps(write_dataset(store.all(), args.out)))
    except StoreUnavailable as err:
        print(err, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
