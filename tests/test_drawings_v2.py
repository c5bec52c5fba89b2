"""The store's schema version 2 (strokes, source, suspects) without a server: the migration from a version-1 file,
limits that refuse whole drawings, the kept PNG normalised, suspects marked and reviewed, strokes to InkML.
"""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_drawings_store import answers, canvas_png, make, x28

from recognizer import drawings
from recognizer.drawings import Drawing, InvalidDrawing, StoreFull, StoreLimits, normalise_png, open_store
from recognizer.drawings.inkml import read_inkml

V1 = Path(__file__).resolve().parent / "fixtures" / "drawings-v1.sqlite3"
SHA = "ab" * 32
STROKES = [{"pointer": "mouse", "mode": "brush", "points": [[100, 50, 0, 0.5], [150.04, 260, 16.4, 0.5]]},
           {"pointer": "pen", "mode": "brush", "points": [[60, 200, 400, 0.31], [240, 200, 433, 0.7]]},
           {"pointer": "touch", "mode": "eraser", "points": [[61, 201, 900, 0]]}]  # fmt: skip


def v1_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id, created_utc, character, canvas_png, input28, answers, app_version FROM drawings "
                          "ORDER BY seq").fetchall()  # fmt: skip


def test_a_version_1_store_opens_migrated_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "drawings.sqlite3"
    shutil.copy(V1, path)
    before = v1_rows(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1 and len(before) == 3
    with open_store(path, read_only=True) as store:  # read-only: read as version 1, the file untouched
        assert [d.id for d in store.all()] == [r[0] for r in before] and store.get(before[0][0]).strokes is None
    assert V1.read_bytes() == path.read_bytes()
    with open_store(path) as store:
        kept = list(store.all())
        assert [(d.id, d.created_utc, d.character, d.canvas_png, d.x28.astype("<f4").tobytes(),
                 drawings.record.answers_json(d.answers), d.app_version) for d in kept] == before  # fmt: skip
        assert [d.strokes for d in kept] == [None] * 3 and {d.source for d in kept} == {""}
        # The suspect mark from the answers each already held: 'O/o' read as 0 D Q U G is suspect; the 'A' read
        # as A is not; the '7' kept with no answers cannot be judged.
        assert [d.suspect for d in kept] == [False, True, False]
        assert [d.id for d in store.suspects()] == [before[1][0]]
        store.keep(make("a", 1))  # and the migrated store keeps new drawings
        assert store.count() == 4
    assert v1_rows(path)[:3] == before
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == drawings.SCHEMA_VERSION == 2


def test_a_full_store_refuses_in_words_and_keeps_every_earlier_drawing(tmp_path: Path) -> None:
    path = tmp_path / "drawings.sqlite3"
    with open_store(path, limits=StoreLimits(drawings=5)) as store:
        kept = [store.keep(make("a", i)) for i in range(5)]
        with pytest.raises(StoreFull) as caught:
            store.keep(make("b", 9))
        assert "the store is full: it holds 5 drawings" in str(caught.value)
        assert "at most 5 drawings" in str(caught.value) and "every drawing kept before is safe" in str(caught.value)
        assert [d.id for d in store.all()] == kept
        store.undo(kept[0])  # room again
        kept.append(store.keep(make("c", 7)))
    with open_store(path, limits=StoreLimits(bytes=60_000)) as store:  # by bytes: refused before the file's cap
        with pytest.raises(StoreFull, match="MB"):
            for i in range(100):
                kept.append(store.keep(make("d", 10 + i)))
        assert store.bytes_used() <= 60_000 and [d.id for d in store.all()] == kept[1:]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_kept_png_is_normalised_grey_and_at_most_the_canvas() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (1200, 900, 4), np.uint8)
    raw = io.BytesIO()
    Image.fromarray(noise, "RGBA").save(raw, "PNG")
    small = normalise_png(raw.getvalue())
    with Image.open(io.BytesIO(small)) as image:
        assert image.mode == "L" and image.size == (300, 400)
    assert len(raw.getvalue()) > 3_000_000 and len(small) < 200_000  # noise: the worst case for PNG
    drawn = np.full((400, 400, 4), 0, np.uint8)
    drawn[100:300, 190:210, 3] = 255  # black ink on a transparent canvas, as the page sends it
    out = io.BytesIO()
    Image.fromarray(drawn, "RGBA").save(out, "PNG")
    grey = np.asarray(Image.open(io.BytesIO(normalise_png(out.getvalue()))))
    assert grey[200, 200] == 0 and grey[10, 10] == 255  # ink black, the transparent canvas white
    with pytest.raises(InvalidDrawing, match="could not be read"):
        normalise_png(b"not an image")


def test_suspects_are_marked_when_kept_and_reviewed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "drawings.sqlite3"
    with open_store(path) as store:
        fine = store.keep(make("o", 0))  # 'o' folds to O, in the top 5 (O 0 Q D o)
        wrong = [store.keep(make(c, i)) for i, c in enumerate(["A", "7", "x"])]
        no_answers = store.keep(Drawing.make(canvas_png(5), x28(5), "Z", [], "0.1.0"))
        assert [store.get(i).suspect for i in [fine, *wrong, no_answers]] == [False, True, True, True, False]
        kept, left_out = drawings.trusted(store.all())
        assert [d.id for d in kept] == [fine, no_answers] and left_out == 3
        assert len(drawings.trusted(store.all(), include_all=True)[0]) == 5
    assert drawings.main(["--store", str(path), "review"]) == 0
    listed = capsys.readouterr().out
    assert "3 suspect drawing(s)" in listed and all(i in listed for i in wrong) and fine not in listed
    assert "kept as 'A'; models read: residual_cnn-byclass: O 0 Q" in listed
    assert drawings.main(["--store", str(path), "review", "--accept", wrong[0], "--delete", wrong[1]]) == 0
    assert "accepted 1, deleted 1" in capsys.readouterr().out
    assert drawings.main(["--store", str(path), "review", "--accept", "f" * 32]) == 1
    with open_store(path, read_only=True) as store:
        assert [d.id for d in store.suspects()] == [wrong[2]] and store.get(wrong[1]) is None
        kept, left_out = drawings.trusted(store.all())
        assert [d.id for d in kept] == [fine, wrong[0], no_answers] and left_out == 1


def test_strokes_are_checked_kept_and_exported_as_inkml(tmp_path: Path) -> None:
    with open_store(tmp_path / "drawings.sqlite3") as store:
        drawn = store.keep(Drawing.make(canvas_png(0), x28(0), "7", answers(), "0.1.0", STROKES, "canvas"))
        upload = store.keep(Drawing.make(canvas_png(1), x28(1), "7", answers(), "0.1.0", None, "upload"))
        kept = store.get(drawn)
        assert kept.source == "canvas" and kept.strokes[0]["points"][1] == [150.0, 260.0, 16, 0.5]  # rounded
        assert [s["pointer"] for s in kept.strokes] == ["mouse", "pen", "touch"]
        counts = drawings.write_dataset(store.all(), tmp_path / "set")
    assert counts == {"all": 2}
    ink = read_inkml((tmp_path / "set" / "inkml" / f"{drawn}.inkml").read_text())
    assert ink["truth"] == "7" and ink["drawingId"] == drawn and ink["strokes"] == [dict(s) for s in kept.strokes]
    assert not (tmp_path / "set" / "inkml" / f"{upload}.inkml").exists()
    rows = {r["id"]: r for r in csv.DictReader((tmp_path / "set" / "drawings.csv").open())}
    assert rows[drawn]["strokes"] == f"inkml/{drawn}.inkml" and rows[drawn]["source"] == "canvas"
    assert rows[upload]["strokes"] == "none: an uploaded image has no strokes"
    for bad, words in (([{"pointer": "laser", "points": [[1, 1, 0, 0.5]]}], "pointer"),
                       ([{"points": [[1, 1, -5, 0.5]]}], "before the drawing began"),
                       ([{"points": [[1, "x", 0, 0.5]]}], "x, y, time_ms, pressure"),
                       ([{"points": [[1, 1, 0, 0.5]]}] * 201, "over the 200"), ("{", "not JSON")):  # fmt: skip
        with pytest.raises(InvalidDrawing, match=words):
            Drawing.make(canvas_png(0), x28(0), "7", answers(), "0.1.0", bad, "canvas")


def test_the_fine_tune_and_score_leave_suspects_out_by_default(tmp_path: Path, monkeypatch, capsys) -> None:
    import training.__main__ as cli
    from training import kept

    path = tmp_path / "drawings.sqlite3"
    with open_store(path) as store:
        fine = [store.keep(make("o", i)) for i in range(3)]
        wrong = [store.keep(make("A", 10 + i)) for i in range(2)]  # read as O 0 Q D o: suspect
        store.accept(wrong[0])
    assert kept.read_kept(path).ids == [*fine, wrong[0]] and kept.read_kept(path).left_out == 1
    assert len(kept.read_kept(path, include_all=True)) == 5
    seen = []
    monkeypatch.setattr(cli, "run_finetune", lambda args, drawings: seen.append(drawings) or 0)
    assert cli.main(["drawings", "finetune", "--store", str(path), "--no-export"]) == 0
    assert "4 kept drawings; left out 1 suspect drawing(s)" in capsys.readouterr().out
    assert cli.main(["drawings", "finetune", "--store", str(path), "--no-export", "--all-drawings"]) == 0
    assert "5 kept drawings, none left out" in capsys.readouterr().out
    assert [len(s) for s in seen] == [4, 5] and wrong[1] not in seen[0].ids and wrong[1] in seen[1].ids
