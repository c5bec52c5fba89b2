"""The kept-drawings store (recognizer/drawings.py): keep, undo, count, recent; refused input; 50 concurrent writers;
corrupt, read-only and full stores; a killed process; the dataset export in EMNIST's IDX form."""

from __future__ import annotations

import csv
import gzip
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from recognizer import drawings
from recognizer.drawings import Drawing, InvalidDrawing, SQLiteStore, StoreUnavailable, open_store
from recognizer.labels import MERGED_CHARS

REPO = Path(__file__).resolve().parents[1]
SHA = "ab" * 32


def canvas_png(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    canvas = np.full((40, 40, 4), 255, np.uint8)
    canvas[10:30, 18:22, :3] = rng.integers(0, 50)
    return drawings.encode_png(canvas)


def x28(seed: int = 0) -> np.ndarray:
    x = np.zeros((28, 28), np.float32)
    x[4:24, 12:16] = 0.5 + 0.5 * np.random.default_rng(seed).random()
    return x


def answers() -> list[dict]:
    top = [("O", "O", 0.6), ("0", "0", 0.3), ("Q", "Q", 0.05), ("D", "D", 0.03), ("o", "o", 0.01), ("C", "C", 0)]
    return [{"slot": "byclass", "model": "residual_cnn-byclass", "sha256": SHA, "top": top}]


def make(character: str = "O/o", seed: int = 0) -> Drawing:
    return Drawing.make(canvas_png(seed), x28(seed), character, answers(), "0.1.0")


@pytest.fixture
def store(tmp_path: Path):
    with open_store(tmp_path / "data" / "drawings.sqlite3") as s:
        yield s


def test_keep_undo_count_recent(store: SQLiteStore) -> None:
    first = store.keep(make("O/o", 1))
    second = store.keep(make("a", 2))
    third = store.keep(make("o/O", 3))  # either order of an open case is the same label
    assert store.count() == 3
    assert store.count_per_class() == {"a": 1, "O/o": 2}
    assert [d.id for d in store.recent(2)] == [third, second]
    kept = store.get(first)
    assert kept is not None and kept.character == "O/o" and kept.case_open
    assert kept.canvas_png == canvas_png(1) and np.array_equal(kept.x28, x28(1)) and kept.x28.dtype == np.float32
    assert kept.answers[0]["top"] == [["O", 0.6], ["0", 0.3], ["Q", 0.05], ["D", 0.03], ["o", 0.01]]  # top 5
    assert kept.answers[0]["model"] == "residual_cnn-byclass" and kept.answers[0]["sha256"] == SHA
    assert len(kept.id) == 32 and kept.created_utc.endswith("+00:00") and kept.app_version == "0.1.0"
    assert store.undo(second) and not store.undo(second)  # undone once; a second undo finds nothing
    assert [d.id for d in store.all()] == [first, third]
    assert store.get(second) is None and store.count_per_class() == {"O/o": 2}
    # Nothing about the person has a place: the table's columns are the record's fields.
    columns = {r[1] for r in store._read("PRAGMA table_info(drawings)")}
    assert columns == {"seq", "id", "created_utc", "character", "canvas_png", "input28", "answers", "app_version",
                       "strokes", "source", "suspect", "review"}  # fmt: skip
    assert store._read("PRAGMA user_version")[0][0] == drawings.SCHEMA_VERSION
    assert store._read("PRAGMA journal_mode")[0][0] == "wal"


def test_labels_of_kept_characters() -> None:
    assert len(drawings.CHARACTERS) == 62 + 15
    assert drawings.merged_character("o") == drawings.merged_character("O/o") == "O"
    assert drawings.byclass_label("O/o") is None and drawings.byclass_label("z") == 61
    assert drawings.merged_label("a") == MERGED_CHARS.index("a")
    assert drawings.parse_character(" 7 ") == "7"


@pytest.mark.parametrize("character", ["é", "", "ab", "A/a", "O/0", "?", "a/A"])
def test_a_character_outside_the_62_is_refused(store: SQLiteStore, character: str) -> None:
    with pytest.raises(InvalidDrawing, match="62 EMNIST characters"):
        make(character)
    assert store.count() == 0


def test_empty_oversized_and_malformed_input_is_refused(store: SQLiteStore) -> None:
    with pytest.raises(InvalidDrawing, match="empty canvas"):
        Drawing.make(canvas_png(), np.zeros((28, 28)), "a")
    with pytest.raises(InvalidDrawing, match="no PNG bytes"):
        Drawing.make(b"", x28(), "a")
    big = drawings.PNG_SIGNATURE + bytes(drawings.MAX_PNG_BYTES)
    with pytest.raises(InvalidDrawing, match="over the 2 MB limit"):
        Drawing.make(big, x28(), "a")
    with pytest.raises(InvalidDrawing, match="not a PNG"):
        Drawing.make(b"GIF89a....", x28(), "a")
    with pytest.raises(InvalidDrawing, match="28x28"):
        Drawing.make(canvas_png(), np.ones((27, 28)), "a")
    with pytest.raises(InvalidDrawing, match=r"\[0, 1\]"):
        Drawing.make(canvas_png(), np.full((28, 28), 3.0), "a")
    with pytest.raises(InvalidDrawing, match="sha256"):
        Drawing.make(canvas_png(), x28(), "a", [{"model": "m", "sha256": "x", "top": []}])
    # A record altered after it was made is checked again by the store itself.
    bad = make()
    object.__setattr__(bad, "character", "ß")
    with pytest.raises(InvalidDrawing):
        store.keep(bad)
    kept = make()
    store.keep(kept)
    with pytest.raises(InvalidDrawing, match="already kept"):
        store.keep(kept)
    assert store.count() == 1


def test_fifty_concurrent_keeps_lose_nothing(tmp_path: Path) -> None:
    """25 threads share one store (a connection each), 25 open their own store on the same file; all at once."""
    path = tmp_path / "drawings.sqlite3"
    shared = open_store(path)
    start, ids, errors = threading.Barrier(50), [], []

    def client(i: int) -> None:
        own = open_store(path) if i % 2 else None
        try:
            start.wait()
            ids.append((shared if own is None else own).keep(make("a" if i % 3 else "O/o", i)))
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)
        finally:
            if own is not None:
                own.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert 1 <= len(shared._idle) <= 25  # a connection per call in flight, kept for the next calls
    shared.close()
    assert errors == []
    with open_store(path) as reopened:
        assert reopened.count() == 50 and {d.id for d in reopened.all()} == set(ids)


def test_a_corrupt_file_is_unavailable_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "drawings.sqlite3"
    path.write_bytes(b"this is not a database, it is a text file that happens to be long enough" * 100)
    with pytest.raises(StoreUnavailable, match="not a SQLite database") as caught:
        open_store(path)
    assert str(path) in caught.value.reason
    # A real store with a damaged page: quick_check finds it when the store opens.
    good = tmp_path / "damaged.sqlite3"
    with open_store(good) as s:
        for i in range(20):
            s.keep(make("a", i))
    data = bytearray(good.read_bytes())
    data[4096:] = os.urandom(len(data) - 4096)  # every page after the header page
    good.write_bytes(bytes(data))
    with pytest.raises(StoreUnavailable, match="corrupt|not a SQLite"):
        open_store(good)
    # A newer schema than this code knows is not touched.
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreUnavailable, match="newer"):
        open_store(newer)


def test_a_read_only_store_reads_but_does_not_keep(tmp_path: Path) -> None:
    # Tests run as root, where chmod does not stop writes: a folder that is a file, and a mode=ro connection.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    with pytest.raises(StoreUnavailable, match="folder cannot be created") as caught:
        open_store(blocker / "drawings.sqlite3")
    assert "not-a-folder" in caught.value.reason
    path = tmp_path / "drawings.sqlite3"
    with open_store(path) as s:
        kept = s.keep(make("b"))
    with open_store(path, read_only=True) as ro:
        assert ro.count() == 1 and ro.get(kept) is not None and ro.count_per_class() == {"b": 1}
        with pytest.raises(StoreUnavailable, match="read-only"):
            ro.keep(make("c"))
        with pytest.raises(StoreUnavailable, match="read-only"):
            ro.undo(kept)
    with pytest.raises(StoreUnavailable, match="nothing kept yet"):
        open_store(tmp_path / "absent.sqlite3", read_only=True)


def test_a_full_store_refuses_and_keeps_what_it_had(tmp_path: Path) -> None:
    # Opening on a disk too full for the schema: max_page_count stands in for the disk.
    with pytest.raises(StoreUnavailable, match="full"):
        open_store(tmp_path / "tiny.sqlite3", max_bytes=1024)
    path = tmp_path / "drawings.sqlite3"
    with open_store(path, max_bytes=64_000, limits=drawings.StoreLimits()) as s:  # no check before: the file's cap
        kept = []
        with pytest.raises(StoreUnavailable, match="full") as caught:
            for i in range(100):  # each drawing is about 3.5 KB
                kept.append(s.keep(make("a", i)))
        assert "SQLITE_FULL" in caught.value.reason
        assert 0 < len(kept) < 100 and s.count() == len(kept)  # the failed one left nothing half-written
    with open_store(path) as s:
        assert [d.id for d in s.all()] == kept


KILLED = """
import os, signal, sys
sys.path.insert(0, {repo!r})
sys.path.insert(0, {tests!r})
from test_drawings_store import make
from recognizer.drawings import open_store
store = open_store({path!r})
ids = [store.keep(make("k", i)) for i in range(3)]
print(" ".join(ids), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint, no atexit
"""


def test_a_killed_process_loses_nothing_it_confirmed(tmp_path: Path) -> None:
    path = tmp_path / "drawings.sqlite3"
    code = KILLED.format(repo=str(REPO), tests=str(REPO / "tests"), path=str(path))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == -signal.SIGKILL, result.stderr
    ids = result.stdout.split()
    assert len(ids) == 3 and Path(f"{path}-wal").exists()  # the drawings were only in the log when it died
    with open_store(path) as s:
        assert [d.id for d in s.all()] == ids and all(s.get(i).character == "k" for i in ids)


def test_dataset_export_in_emnist_form(store: SQLiteStore, tmp_path: Path) -> None:
    kept = [store.keep(make(c, i)) for i, c in enumerate(["a", "O/o", "7", "o"])]
    counts = drawings.write_dataset(store.all(), tmp_path / "set", {kept[0]: "train", kept[1]: "train"})
    assert counts == {"train": 2, "all": 2}
    out = tmp_path / "set"
    images = gzip.decompress((out / "emnist-drawings-train-images-idx3-ubyte.gz").read_bytes())
    assert images[:4] == b"\x00\x00\x08\x03" and int.from_bytes(images[4:8], "big") == 2
    stored = np.frombuffer(images[16:], np.uint8).reshape(2, 28, 28)
    assert np.array_equal(stored[0].T, store.get(kept[0]).image8())  # transposed, as NIST stores them
    byclass = gzip.decompress((out / "emnist-drawings-train-byclass-labels-idx1-ubyte.gz").read_bytes())
    merged = gzip.decompress((out / "emnist-drawings-train-bymerge-labels-idx1-ubyte.gz").read_bytes())
    assert list(byclass[8:]) == [36, drawings.NO_LABEL]  # 'a' is byclass 36; 'O/o' has no byclass label
    assert list(merged[8:]) == [MERGED_CHARS.index("a"), MERGED_CHARS.index("O")]
    mapping = (out / "emnist-drawings-byclass-mapping.txt").read_text().splitlines()
    assert mapping[36] == f"36 {ord('a')}" and len(mapping) == 62
    rows = list(csv.DictReader((out / "drawings.csv").open()))
    assert [r["id"] for r in rows] == kept and rows[1]["case_open"] == "1" and rows[1]["byclass_label"] == ""
    assert (out / rows[2]["png"]).read_bytes() == store.get(kept[2]).canvas_png
    # The download: the same files in one zip.
    assert drawings.write_dataset_zip(store.all(), tmp_path / "kept.zip") == {"all": 4}
    with zipfile.ZipFile(tmp_path / "kept.zip") as archive:
        names = set(archive.namelist())
    assert {"drawings/drawings.csv", "drawings/emnist-drawings-all-images-idx3-ubyte.gz",
            f"drawings/png/{kept[0]}.png"} <= names  # fmt: skip


def test_the_store_module_needs_no_torch() -> None:
    code = ("import sys, recognizer.drawings\n"
            "bad = [m for m in ('torch', 'training', 'gradio', 'matplotlib', 'webapp') if m in sys.modules]\n"
            "assert not bad, bad\n")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_command_line_counts_deletes_and_exports(store: SQLiteStore, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    ids = [store.keep(make("a", i)) for i in range(3)]
    path = str(store.path)
    assert drawings.main(["--store", path, "count"]) == 0
    assert '"total": 3' in capsys.readouterr().out
    assert drawings.main(["--store", path, "delete", ids[0], "f" * 32]) == 1  # one deleted, one not found
    assert store.get(ids[0]) is None and store.count() == 2
    assert drawings.main(["--store", path, "export", str(tmp_path / "set")]) == 0
    assert (tmp_path / "set" / "emnist-drawings-all-images-idx3-ubyte.gz").is_file()
    assert drawings.main(["--store", str(tmp_path / "absent.sqlite3"), "count"]) == 2
