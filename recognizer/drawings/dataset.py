"""Kept drawings as a dataset: 28x28 images and labels in EMNIST's gzip IDX form (images stored transposed, as
NIST's files are; recognizer/idx.py), NIST-style mapping files, one PNG per drawing, its strokes as InkML
(``inkml/<id>.inkml``, where the drawing has strokes: one drawn on the canvas) and a CSV whose ``strokes`` column
names that file or says why there is none.
The app's download and ``python -m recognizer.drawings export`` write the same files.
"""

from __future__ import annotations

import csv
import io
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..files import write_atomic
from ..idx import gzip_bytes, idx_bytes
from ..labels import BYCLASS_CHARS, MERGED_CHARS
from .inkml import inkml_text
from .record import Drawing, answers_json, byclass_label, merged_label

DATASET_PREFIX = "emnist-drawings"
NO_LABEL = 255  # the byclass label file's value for a drawing whose case was left open
NO_STROKES = {"upload": "none: an uploaded image has no strokes", "api": "none: an image sent to the API",
              "": "none: no strokes were recorded (kept before version 2, or made by a script)",
              "canvas": "none"}  # fmt: skip


def mapping_text(chars: Sequence[str]) -> str:
    """A NIST mapping file (``label ascii_code`` per line, CRLF as NIST's)."""
    return "".join(f"{i} {ord(c)}\r\n" for i, c in enumerate(chars))


def write_dataset(drawings: Iterable[Drawing], out: str | Path,
                  part_of: Mapping[str, str] | None = None) -> dict[str, int]:  # fmt: skip
    """Every drawing as a dataset in ``out``; returns the count per part.

    Per part (``all``, or the parts ``part_of`` gives each id: e.g. train/val/test) the files NIST's names follow:
    ``emnist-drawings-<part>-images-idx3-ubyte.gz`` (28x28 uint8, stored transposed as EMNIST's are),
    ``-byclass-labels-idx1-ubyte.gz`` (0..61; 255 where the case was left open) and ``-bymerge-labels-idx1-ubyte.gz``
    (0..46, always set); the mapping files; ``png/<id>.png`` as drawn; ``inkml/<id>.inkml`` where it has strokes;
    ``drawings.csv``, one row per drawing.
    """
    out = Path(out)
    groups: dict[str, list[Drawing]] = {}
    rows = []
    for d in drawings:
        part = part_of.get(d.id, "all") if part_of else "all"
        groups.setdefault(part, []).append(d)
        write_atomic(out / "png" / f"{d.id}.png", d.canvas_png)
        if d.strokes is not None:
            write_atomic(out / "inkml" / f"{d.id}.inkml", inkml_text(d))
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
              "strokes", "source", "suspect", "review", "app_version", "answers")  # fmt: skip


def csv_row(d: Drawing, part: str) -> dict[str, Any]:
    label = byclass_label(d.character)
    return {"id": d.id, "part": part, "created_utc": d.created_utc, "character": d.character,
            "case_open": int(d.case_open), "byclass_label": "" if label is None else label,
            "bymerge_label": merged_label(d.character), "png": f"png/{d.id}.png",
            "strokes": f"inkml/{d.id}.inkml" if d.strokes is not None else NO_STROKES.get(d.source, "none"),
            "source": d.source, "suspect": int(d.suspect), "review": d.review, "app_version": d.app_version,
            "answers": answers_json(d.answers)}  # fmt: skip


def _csv_text(rows: list[dict[str, Any]]) -> str:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=CSV_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()
