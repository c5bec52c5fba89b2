"""Where kept drawings live: the store interface (``DrawingStore``) and its one implementation, ``SQLiteStore``.

    store = open_store()                      # data/drawings.sqlite3 (git-ignored), or open_store(path)
    drawing_id = store.keep(Drawing.make(png, x28, "O/o", answers, app_version()))
    store.undo(drawing_id)                    # the person who kept it takes it back
    store.count_per_class(); store.recent(12); store.all(); store.get(drawing_id); store.close()
    store.suspects(); store.accept(drawing_id)   # labels in no model's top 5, and a person's review of them

Bounded: ``limits`` (``StoreLimits``: drawings and bytes) refuses a drawing past either with ``StoreFull``, whose
message a person understands, checked inside the drawing's own transaction (so concurrent keeps never pass it), and
the file can never grow past the byte limit (``PRAGMA max_page_count``): a drawing is written whole or not at all.
An older store is migrated when opened for writing (``migrate.py``), in one transaction; read-only, it is read as is.

Write-ahead log, one transaction per drawing (``BEGIN IMMEDIATE``, so concurrent writers queue on the busy timeout
instead of failing), ``synchronous=FULL`` (a drawing whose ``keep`` returned survives a killed process and a power
cut), the schema version in ``PRAGMA user_version``. Each call borrows its own connection from a small pool. A store
that cannot be opened or written (read-only, corrupt, full, missing folder) raises ``StoreUnavailable`` with the
reason, so the app keeps reading drawings and says why keeping is off.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .migrate import migrate
from .record import ACCEPTED, CHARACTERS, REPO_ROOT, Drawing, InvalidDrawing, answers_json
from .strokes import strokes_json

DEFAULT_PATH = REPO_ROOT / "data" / "drawings.sqlite3"  # data/ is git-ignored
SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 30_000  # how long a writer waits for another's transaction before giving up


@dataclass(frozen=True)
class StoreLimits:
    """The most a store holds: drawings and bytes on disk (None: no limit)."""

    drawings: int | None = None
    bytes: int | None = None

    def words(self) -> str:
        parts = [f"{self.drawings:,} drawings" if self.drawings else "",
                 f"{self.bytes / 1e6:g} MB" if self.bytes else ""]  # fmt: skip
        return " and ".join(p for p in parts if p) or "no limit"


# A small host's store: a kept record is about 5-10 KB (normalised PNG, input, answers, strokes), so 20,000
# drawings fill about 200 MB.
DEFAULT_LIMITS = StoreLimits(drawings=20_000, bytes=200_000_000)


class StoreUnavailable(RuntimeError):
    """The store cannot be opened or written; ``reason`` says why in words a person can act on."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"keeping drawings is off: {reason}")


class StoreFull(StoreUnavailable):
    """The store holds as much as its limits allow: this drawing was not written, every earlier one is kept."""

    def __init__(self, reason: str) -> None:
        self.reason = f"the store is full: {reason}"
        RuntimeError.__init__(self, self.reason)


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


SCHEMA = """
CREATE TABLE IF NOT EXISTS drawings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- order of keeping
    id TEXT NOT NULL UNIQUE,                 -- uuid4 hex
    created_utc TEXT NOT NULL,
    character TEXT NOT NULL,                 -- one of the 62, or 'C/c' for an open case
    canvas_png BLOB NOT NULL,
    input28 BLOB NOT NULL,                   -- 784 float32, little-endian, upright
    answers TEXT NOT NULL,                   -- JSON: per slot model, sha256, top 5
    app_version TEXT NOT NULL,
    strokes TEXT,                            -- JSON list of strokes as drawn (version 2); NULL: none
    source TEXT NOT NULL DEFAULT '',         -- canvas | upload | api; '' kept before version 2
    suspect INTEGER NOT NULL DEFAULT 0,      -- 1: the character is in no answering model's top 5
    review TEXT NOT NULL DEFAULT ''          -- '' or 'accepted' (a person looked at a suspect)
);
CREATE INDEX IF NOT EXISTS drawings_character ON drawings (character);
CREATE INDEX IF NOT EXISTS drawings_suspect ON drawings (suspect);
"""


COLUMNS = "id, created_utc, character, canvas_png, input28, answers, app_version, strokes, source, suspect, review"
V1_COLUMNS = "id, created_utc, character, canvas_png, input28, answers, app_version, NULL, '', 0, ''"


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

    ``read_only``: reads work, ``keep`` and ``undo`` raise ``StoreUnavailable``. ``limits``: a keep past its
    drawings or bytes raises ``StoreFull``; ``max_bytes`` (or ``limits.bytes``): the file never grows past this
    (``PRAGMA max_page_count``), so even a record the check misjudged is refused whole, as on a full disk.
    """

    def __init__(self, path: str | Path = DEFAULT_PATH, read_only: bool = False, max_bytes: int | None = None,
                 busy_timeout_ms: int = BUSY_TIMEOUT_MS, limits: StoreLimits | None = None) -> None:  # fmt: skip
        self.path = Path(path)
        self.read_only = read_only
        self.limits = limits or StoreLimits(bytes=max_bytes)
        self.max_bytes = max_bytes if max_bytes is not None else self.limits.bytes
        self.columns = COLUMNS  # V1_COLUMNS for a version-1 store opened read-only
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
            if version not in (1, SCHEMA_VERSION):
                raise StoreUnavailable(f"{self.path}: not a drawings store (schema version {version})")
            self.columns = V1_COLUMNS if version == 1 else COLUMNS  # read as is: the file is not changed
            return
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise StoreUnavailable(f"{self.path}: the write-ahead log cannot be turned on")
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if version == 0:
                    for statement in _statements():  # not executescript: it would commit first
                        conn.execute(statement)
                else:
                    migrate(conn, version, SCHEMA_VERSION)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    def _write(self, sql: str, params: tuple, before: Callable[[sqlite3.Connection], None] | None = None) -> int:
        """One statement in its own immediate transaction (``before`` runs first inside it, and may refuse by
        raising); returns the rows it changed."""
        if self.read_only:
            raise StoreUnavailable(f"{self.path}: the store is open read-only")
        try:
            with self._borrow() as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if before is not None:
                        before(conn)
                    changed = conn.execute(sql, params).rowcount
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
        except sqlite3.Error as err:
            name = getattr(err, "sqlite_errorname", "") or ""
            if name.startswith("SQLITE_FULL"):
                raise StoreFull(self._full_words(f"the disk or the size limit has no room for it ({name})")) from err
            raise unavailable(self.path, err) from err
        return changed

    def _full_words(self, why: str) -> str:
        return (f"{why} (this store keeps at most {self.limits.words()}); nothing was written and every drawing "
                "kept before is safe")

    def _room_for(self, size: int) -> Callable[[sqlite3.Connection], None]:
        """The check a keep runs inside its transaction: ``StoreFull`` past the drawings or the bytes limit."""
        def check(conn: sqlite3.Connection) -> None:
            if self.limits.drawings is not None:
                held = conn.execute("SELECT COUNT(*) FROM drawings").fetchone()[0]
                if held >= self.limits.drawings:
                    raise StoreFull(self._full_words(f"it holds {held:,} drawings"))
            if self.limits.bytes is not None:
                page = conn.execute("PRAGMA page_size").fetchone()[0]
                used = page * (conn.execute("PRAGMA page_count").fetchone()[0]
                               - conn.execute("PRAGMA freelist_count").fetchone()[0])  # fmt: skip
                if used + 2 * size + 4 * page > self.limits.bytes:  # the row, its index entries, a page split
                    raise StoreFull(self._full_words(f"it holds {used / 1e6:.2f} MB"))

        return check

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
                  drawing.x28.astype("<f4").tobytes(), answers_json(drawing.answers), drawing.app_version,
                  strokes_json(drawing.strokes), drawing.source, int(drawing.suspect), drawing.review)  # fmt: skip
        size = sum(len(p) for p in params if isinstance(p, str | bytes))
        try:
            self._write(f"INSERT INTO drawings ({COLUMNS}) VALUES ({', '.join('?' * len(params))})", params,
                        self._room_for(size))  # fmt: skip
        except StoreFull:
            raise
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
        rows = self._read(f"SELECT {self.columns} FROM drawings WHERE id = ?", (str(drawing_id),))
        return _row(rows[0]) if rows else None

    def suspects(self, reviewed: bool = False) -> list[Drawing]:
        """The drawings marked suspect, in the order kept: those not yet reviewed (``reviewed``: all of them)."""
        where = "suspect = 1" + ("" if reviewed else f" AND review != '{ACCEPTED}'")
        return [_row(r) for r in self._read(f"SELECT {self.columns} FROM drawings WHERE {where} ORDER BY seq")]

    def accept(self, drawing_id: str) -> bool:
        """A person looked at a suspect and its label is right: the fine-tune may use it. False: no such drawing."""
        return self._write("UPDATE drawings SET review = ? WHERE id = ?", (ACCEPTED, str(drawing_id))) > 0

    def bytes_used(self) -> int:
        """The bytes the store's pages hold (what ``StoreLimits.bytes`` bounds)."""
        page, count, free = (self._read(f"PRAGMA {p}")[0][0] for p in ("page_size", "page_count", "freelist_count"))
        return page * (count - free)

    def count(self) -> int:
        return self._read("SELECT COUNT(*) FROM drawings")[0][0]

    def count_per_class(self) -> dict[str, int]:
        """Kept drawings per character, in the order of ``CHARACTERS`` (only characters that have any)."""
        counts = dict(self._read("SELECT character, COUNT(*) FROM drawings GROUP BY character"))
        return {c: counts[c] for c in CHARACTERS if c in counts}

    def recent(self, n: int = 12) -> list[Drawing]:
        """The ``n`` drawings kept last, newest first."""
        rows = self._read(f"SELECT {self.columns} FROM drawings ORDER BY seq DESC LIMIT ?", (max(0, int(n)),))
        return [_row(r) for r in rows]

    def all(self) -> Iterator[Drawing]:
        """Every drawing in the order kept, read in pages (a large store never sits in memory at once)."""
        last = 0
        while True:
            rows = self._read(f"SELECT seq, {self.columns} FROM drawings WHERE seq > ? ORDER BY seq LIMIT 500",
                              (last,))  # fmt: skip
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
    drawing_id, created, character, png, x28, answers, version, strokes, source, suspect, review = row
    x = np.frombuffer(x28, dtype="<f4").reshape(28, 28).astype(np.float32)
    ink = None if strokes is None else tuple(json.loads(strokes))
    return Drawing(bytes(png), x, character, tuple(json.loads(answers)), version, drawing_id, created, ink, source,
                   bool(suspect), review)  # fmt: skip


def open_store(path: str | Path | None = None, read_only: bool = False, max_bytes: int | None = None,
               limits: StoreLimits | None = None) -> SQLiteStore:  # fmt: skip
    """The default store (``data/drawings.sqlite3``) or the one at ``path``; ``StoreUnavailable`` says why not."""
    return SQLiteStore(DEFAULT_PATH if path is None else path, read_only=read_only, max_bytes=max_bytes,
                       limits=limits)
