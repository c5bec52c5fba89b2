"""What a kept drawing is: the record (``Drawing``), the characters a person may mean, and the checks a drawing
must pass before any store takes it.

A kept record holds the canvas (a grey PNG, at most 400x400: ``normalise_png``), the 28x28 float32 model input, the
character (one of the 62 EMNIST byclass characters, or ``"O/o"`` for one of the 15 letters EMNIST merges when the
person leaves the case open), each slot's model name, sha256 and top 5 at that moment, the app's version, a UTC time
and a random id (uuid4 hex); since schema version 2 also the strokes as drawn (``strokes``; None for an upload or an
image sent to the API), where it came from (``source``), whether its label is ``suspect`` (in no answering model's top
5) and its ``review`` ("accepted" once a person has looked at a suspect). Nothing about the person: no address, cookie
or browser string has a field. Bad input raises ``InvalidDrawing`` (a ``ValueError`` whose message a person can read).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import tomllib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..labels import BYCLASS_CHARS, MERGED_CASE_LETTERS, MERGED_CHARS, merge_key
from .strokes import Stroke, StrokeError, parse_strokes

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_PNG_BYTES = 2_000_000  # a 400x400 canvas is ~10-40 KB as PNG; anything near this is not a drawing
MAX_PNG_SIDE = 4096
MAX_ANSWERS_BYTES = 64_000
MIN_INK = 0.05  # a model input whose brightest pixel is below this holds no character
TOP_K = 5
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OPEN_CASE: dict[str, str] = {f"{c}/{c.lower()}": c for c in MERGED_CASE_LETTERS}
CHARACTERS: tuple[str, ...] = BYCLASS_CHARS + tuple(OPEN_CASE)
SOURCES = ("canvas", "upload", "api", "")  # "": kept before the store recorded it (schema version 1)
ACCEPTED = "accepted"  # a suspect a person has reviewed and kept


class InvalidDrawing(ValueError):
    """A drawing the store refuses (bad character, empty, oversized, malformed); nothing was stored."""


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
    strokes: tuple[Stroke, ...] | None = field(default=None, repr=False)  # None: an image with no strokes
    source: str = ""  # canvas | upload | api; "" before schema version 2
    suspect: bool = False  # the character is in no answering model's top 5
    review: str = ""  # "" or ACCEPTED

    @classmethod
    def make(cls, canvas_png: bytes, x28: np.ndarray, character: str, answers: Sequence[Mapping[str, Any]] = (),
             app_version: str = "", strokes: Any = None, source: str = "") -> Drawing:  # fmt: skip
        """A new drawing, checked (``InvalidDrawing``), with a fresh random id, the current UTC time, and marked
        suspect when no answering model has its character in its top 5."""
        character = parse_character(character)
        checked = tuple(_answer(a) for a in answers)
        drawing = cls(bytes(canvas_png), _as_input(x28), character, checked, str(app_version)[:64], uuid.uuid4().hex,
                      dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), _as_strokes(strokes), source,
                      is_suspect(character, checked))  # fmt: skip
        drawing.check()
        return drawing

    @property
    def trusted(self) -> bool:
        """Whether a fine-tune and the live benchmark use it by default: not suspect, or accepted by a person."""
        return not self.suspect or self.review == ACCEPTED

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
        if self.source not in SOURCES or self.review not in ("", ACCEPTED):
            raise InvalidDrawing(f"source {self.source!r} or review {self.review!r} is not one the store knows")
        _as_strokes(self.strokes)

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


def _as_strokes(strokes: Any) -> tuple[Stroke, ...] | None:
    if strokes is None:
        return None
    try:
        return parse_strokes(strokes)
    except StrokeError as err:
        raise InvalidDrawing(f"the strokes are not the canvas's: {err}") from None


def is_suspect(character: str, answers: Iterable[Mapping[str, Any]]) -> bool:
    """True when models answered and none has the character (folded to the 47 merged classes, so 'c' counts for
    'C' and 'C/c') in its top 5: a label a fine-tune should not trust before a person has looked."""
    answers = list(answers)
    wanted = merged_character(character)
    return bool(answers) and not any(
        wanted in {_merged_or_none(str(item[0])) for item in a.get("top", [])[:TOP_K]} for a in answers)


def _merged_or_none(char: str) -> str | None:
    try:
        return merged_character(char)
    except (KeyError, ValueError):
        return None


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


CANVAS_SIDE = 400  # the page's canvas: a kept PNG is never larger


def normalise_png(data: bytes, side: int = CANVAS_SIDE) -> bytes:
    """Any image Pillow reads as the store keeps it: grey ink over white (transparency flattened), at most
    ``side`` pixels on a side (aspect kept), optimised PNG: a few KB whatever was sent. ``InvalidDrawing`` when
    the bytes are not an image (or a huge one)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if max(image.size) > MAX_PNG_SIDE:
                raise InvalidDrawing(f"the image is {image.size[0]}x{image.size[1]} pixels, over {MAX_PNG_SIDE}")
            image.load()
            rgba = image.convert("RGBA")
    except InvalidDrawing:
        raise
    except Exception as err:  # Pillow raises many types for broken files
        raise InvalidDrawing(f"the image could not be read: {err}") from None
    grey = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    grey.alpha_composite(rgba)
    grey = grey.convert("L")
    grey.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    grey.save(out, "PNG", optimize=True)
    return out.getvalue()


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
