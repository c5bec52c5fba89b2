"""Label rules of the EMNIST splits, in one place, with the folding rule every drawing score uses.

The characters follow NIST's mapping files (``emnist-<split>-mapping.txt``): byclass is
0-9, A-Z, a-z; bymerge and balanced merge the upper and lower case of 15 letters whose
shapes barely differ, keeping the upper-case character as the class name.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

# Letters whose upper and lower case are one class in bymerge and balanced.
MERGED_CASE_LETTERS = "CIJKLMOPSUVWXYZ"

BYCLASS_CHARS: tuple[str, ...] = tuple(string.digits + string.ascii_uppercase + string.ascii_lowercase)
MERGED_CHARS: tuple[str, ...] = tuple(
    string.digits
    + string.ascii_uppercase
    + "".join(c for c in string.ascii_lowercase if c.upper() not in MERGED_CASE_LETTERS)
)
DIGIT_CHARS: tuple[str, ...] = tuple(string.digits)

SPLIT_CHARS: dict[str, tuple[str, ...]] = {
    "byclass": BYCLASS_CHARS,
    "bymerge": MERGED_CHARS,
    "balanced": MERGED_CHARS,
    "digits": DIGIT_CHARS,
    "mnist": DIGIT_CHARS,
}
MERGED_SPLITS = ("bymerge", "balanced")


def split_chars(split: str) -> tuple[str, ...]:
    """Characters of a split's labels, in label order."""
    try:
        return SPLIT_CHARS[split]
    except KeyError:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_CHARS)}") from None


def merge_key(char: str) -> str:
    """The merged (47-class) name of a character: 'c' and 'C' both give 'C'."""
    return char.upper() if char.upper() in MERGED_CASE_LETTERS else char


def display(char: str, merged: bool) -> str:
    """How a class is shown to a person: a merged class of bymerge/balanced reads 'C/c'."""
    if merged and char in MERGED_CASE_LETTERS:
        return f"{char}/{char.lower()}"
    return char


def same_character(a: str, b: str) -> bool:
    """Whether two predictions agree once case is merged ('c' from byclass agrees with 'C/c')."""
    return merge_key(a) == merge_key(b)


def byclass_to_merged_index() -> list[int]:
    """For each byclass label, its label in the 47-class splits."""
    position = {c: i for i, c in enumerate(MERGED_CHARS)}
    return [position[merge_key(c)] for c in BYCLASS_CHARS]


LETTER_SPLITS = ("byclass", "bymerge", "balanced")  # models that read letters (a digits-only model is not scored)


def folded_hits(probs: np.ndarray, labels: Sequence[str], truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 and top-3 hits per drawing in the merged classes (``truth``: MERGED_CHARS indices); a byclass 'c' is
    right for 'C', 'c' and 'C/c'. The drawing benchmark, the kept drawings' scores and the fine-tune all use it."""
    folded = np.array([MERGED_CHARS.index(merge_key(c)) for c in labels])
    top3 = folded[np.argsort(-np.asarray(probs), axis=1, kind="stable")[:, :3]]
    return top3[:, 0] == truth, (top3 == truth[:, None]).any(1)
