"""Kept drawings on the torch side: a dataset with a keyed-hash split, a score of every model, renderings into a store.

    python -m training drawings export --out /tmp/kept            # IDX + PNG + CSV, split train/val/test by id
    python -m training drawings score                             # every exported model on the kept drawings
    python -m training drawings finetune --model residual_cnn-byclass --epochs 3
    python -m training drawings render --count 500                # fill a store with renderings of pool training images

The store is ``recognizer.drawings`` (``data/drawings.sqlite3`` unless ``--store``); it is opened read-only except
by ``render``. ``score`` and ``finetune`` use the drawings whose label can be trusted (not suspect, or accepted with
``python -m recognizer.drawings review``) and say how many they left out; ``--all-drawings`` uses every one.
The split follows DATA.md's pool split, by drawing id instead of pixel bytes:
``int.from_bytes(hmac_sha256(SPLIT_KEY, id)[:8], "little") % 10``, 0-7 train, 8 validation, 9 test, so a drawing
stays in its part however the store grows. Scores fold classes as the drawing benchmark does
(``recognizer.labels.folded_hits``: a byclass 'c' is right for a 'C' or 'C/c'). The fine-tune on them is
training/finetune_kept.py, its export training/export.py's ``export_finetuned``; the command is wired in
training/__main__.py, the one file above all three.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from recognizer.drawings import (
    Drawing,
    DrawingStore,
    app_version,
    encode_png,
    merged_character,
    open_store,
    trusted,
    write_dataset,
)
from recognizer.files import write_json
from recognizer.inference import Recognizer
from recognizer.labels import BYCLASS_CHARS, MERGED_CASE_LETTERS, MERGED_CHARS, folded_hits
from recognizer.preprocess import InputError, to_model_input
from training.data import Pool
from training.drawbench import BenchConfig, benched, render
from training.paths import models_dir

SPLIT_KEY = b"kept-drawings-42"
PARTS = ("train", "val", "test")
SUFFIX = "_kept"  # a model fine-tuned on kept drawings ships as <base>_kept
TRAIN_PARTS = range(8)  # DATA.md's pool codes 0-7: the pool's training part


def drawing_part(drawing_id: str, key: bytes = SPLIT_KEY) -> str:
    """train / val / test by a keyed hash of the drawing's id (80 / 10 / 10)."""
    digest = hmac.new(key, drawing_id.encode(), hashlib.sha256).digest()
    code = int.from_bytes(digest[:8], "little") % 10
    return "train" if code <= 7 else "val" if code == 8 else "test"


@dataclass
class KeptSet:
    """The kept drawings as arrays: ids, model inputs (N, 28, 28) float32, characters, parts."""

    ids: list[str]
    inputs: np.ndarray
    characters: list[str]
    parts: np.ndarray
    left_out: int = 0  # suspect drawings (labels in no model's top 5, not accepted) left out of the set

    def __len__(self) -> int:
        return len(self.ids)

    def part(self, name: str) -> KeptSet:
        keep = self.parts == name if name != "all" else np.ones(len(self), bool)
        return KeptSet([i for i, k in zip(self.ids, keep, strict=True) if k], self.inputs[keep],
                       [c for c, k in zip(self.characters, keep, strict=True) if k], self.parts[keep])  # fmt: skip

    def truth(self) -> np.ndarray:
        """Each drawing's merged class index (MERGED_CHARS), what the folded scores compare with."""
        return np.array([MERGED_CHARS.index(merged_character(c)) for c in self.characters], np.int64)

    def digest(self) -> str:
        """Which drawings these are (a fine-tune run's id changes when its training drawings do)."""
        return hashlib.sha256("|".join(sorted(self.ids)).encode()).hexdigest()[:12]


def kept_set(drawings: Iterable[Drawing], key: bytes = SPLIT_KEY, include_all: bool = True) -> KeptSet:
    """The drawings as arrays; ``include_all=False`` leaves out the suspect ones (``recognizer.drawings.trusted``)
    and counts them in ``left_out``."""
    rows, left_out = trusted(drawings, include_all)
    inputs = np.stack([d.x28 for d in rows]) if rows else np.zeros((0, 28, 28), np.float32)
    parts = np.array([drawing_part(d.id, key) for d in rows], dtype="<U5")
    return KeptSet([d.id for d in rows], inputs.astype(np.float32), [d.character for d in rows], parts, left_out)


def read_kept(store_path: Path | None = None, key: bytes = SPLIT_KEY, include_all: bool = False) -> KeptSet:
    """The kept drawings a fine-tune can trust (every one with ``include_all``), from the store opened read-only."""
    with open_store(store_path, read_only=True) as store:
        return kept_set(store.all(), key, include_all)


def left_out_line(kept: KeptSet) -> str:
    """What a command says about the suspects it did not use."""
    if not kept.left_out:
        return f"{len(kept)} kept drawings, none left out"
    return (f"{len(kept)} kept drawings; left out {kept.left_out} suspect drawing(s) whose label is in no model's "
            "top 5 (review them: python -m recognizer.drawings review; use them all: --all-drawings)")


# ---------------------------------------------------------------------------------------------
# export and score


def export_kept(store_path: Path | None, out: Path, key: bytes = SPLIT_KEY) -> dict[str, int]:
    """The kept drawings as a dataset (recognizer.drawings.write_dataset), one IDX set per part."""
    with open_store(store_path, read_only=True) as store:
        parts = {d.id: drawing_part(d.id, key) for d in store.all()}
        counts = write_dataset(store.all(), out, parts)
    write_json(out / "split.json", {"rule": "hmac_sha256(key, id)[:8] little-endian % 10: 0-7 train, 8 val, 9 test",
                                    "counts": counts})  # fmt: skip
    return counts


def score_models(kept: KeptSet, folder: Path | None = None, parts: tuple[str, ...] = ("all", "test")) -> list[dict]:
    """Every letter-reading model of an export folder through the app's runtime, on each named part."""
    recognizer = Recognizer(folder or models_dir())
    results = []
    for entry in benched(recognizer.models):
        row = {"name": entry.name, "split": entry.split, "slot": entry.slot, "sha256": entry.sha256}
        for part in parts:
            subset = kept.part(part)
            probs = recognizer.predict_batch(entry.name, subset.inputs)[0]
            row[part] = folded_scores(probs, list(entry.labels), subset)
        results.append(row)
    return results


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def score_table(results: list[dict], parts: tuple[str, ...]) -> list[str]:
    lines = ["| model | slot | " + " | ".join(f"{p} top-1 | {p} top-3 | {p} n" for p in parts) + " |",
             "|" + "---|" * (2 + 3 * len(parts))]  # fmt: skip
    for r in results:
        cells = [r["name"], r["slot"] or ""]
        for p in parts:
            cells += [pct(r[p]["top1"]), pct(r[p]["top3"]), str(r[p]["n"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# ---------------------------------------------------------------------------------------------
# Renderings of pool images as kept drawings (the tests' store, and the fine-tune's trial data)


def pool_character(pool: Pool, index: int) -> str:
    """The finest character a pool image carries: its byclass label, else its merged class ('O/o' for a merged
    letter, whose case the pool does not know)."""
    if pool.byclass[index] >= 0:
        return BYCLASS_CHARS[int(pool.byclass[index])]
    char = MERGED_CHARS[int(pool.merged[index])]
    return f"{char}/{char.lower()}" if char in MERGED_CASE_LETTERS else char


def pick_training_sources(pool: Pool, count: int, seed: int) -> np.ndarray:
    """``count`` images of the pool's training part (never the test part the drawing benchmark draws from), spread
    over the merged classes as evenly as they allow, drawn with the seed."""
    rng = np.random.default_rng(seed)
    train = np.flatnonzero(np.isin(pool.part, TRAIN_PARTS))
    by_class = [rng.permutation(train[pool.merged[train] == c]) for c in range(len(MERGED_CHARS))]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < count and any(depth < len(m) for m in by_class):
        chosen += [int(m[depth]) for m in by_class if depth < len(m)][: count - len(chosen)]
        depth += 1
    return np.array(sorted(chosen), np.int64)


def slot_answers(recognizer: Recognizer | None, x28: np.ndarray) -> list[dict]:
    """What each slot's model said, as the app records it: model, sha256, top 5."""
    if recognizer is None:
        return []
    answers = []
    for slot, name in recognizer.default_slots().items():
        prediction = recognizer.predict(name, x28, k=5)
        answers.append({"slot": slot, "model": name, "sha256": recognizer.entry(name).sha256,
                        "top": [[c, p] for c, _, p in prediction.top]})  # fmt: skip
    return answers


def rendered_drawing(image: np.ndarray, character: str, seed: list[int], recognizer: Recognizer | None,
                     config: BenchConfig) -> Drawing | None:  # fmt: skip
    """One pool image drawn on the canvas as the drawing benchmark draws it, preprocessed as the app does."""
    _, renderings = render(image, config, np.random.default_rng(seed))
    canvas = renderings["canvas"]
    try:
        x28 = to_model_input(canvas)
    except InputError:
        return None  # the preprocessing refuses it, so the app would have nothing to keep
    return Drawing.make(encode_png(canvas["composite"]), x28, character, slot_answers(recognizer, x28),
                        f"{app_version()}+render")  # fmt: skip


def render_into(store: DrawingStore, pool: Pool, sources: np.ndarray, seed: int, folder: Path | None = None,
                progress: bool = True) -> list[str]:  # fmt: skip
    """Keep one canvas rendering per source image (with each slot's answers when an export folder is given)."""
    recognizer = Recognizer(folder) if folder else None
    config = BenchConfig(seed=seed, variants=("canvas",))
    ids = []
    for index in tqdm(sources, desc="render into the store", disable=not progress):
        drawing = rendered_drawing(pool.images[index], pool_character(pool, int(index)), [seed, int(index)],
                                   recognizer, config)  # fmt: skip
        if drawing is not None:
            ids.append(store.keep(drawing))
    return ids


# ---------------------------------------------------------------------------------------------
# Scores on kept drawings, and the name of a model fine-tuned on them (training/finetune_kept.py)


def folded_scores(probs: np.ndarray, labels: list[str], kept: KeptSet) -> dict:
    """Top-1 and top-3 in the merged classes (``labels.folded_hits``), and how many drawings they are over."""
    if len(kept) == 0:
        return {"top1": None, "top3": None, "n": 0}
    top1, top3 = folded_hits(probs, labels, kept.truth())
    return {"top1": float(top1.mean()), "top3": float(top3.mean()), "n": len(kept)}


def kept_name(base: str) -> str:
    return f"{base}{SUFFIX}"
