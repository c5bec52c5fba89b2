"""How a judged claim is worded: one wording for the results page (training/report.py) and the app's Results tab
(webapp/results.py), both reading a claim as the table JSON holds it (``ClaimResult.to_dict``: plain data, figures
in fractions). Torch-free, so the app can use it without importing ``training``.
"""

from __future__ import annotations

from typing import Any

HOLDS, TIE, REVERSED = "holds", "tie", "reversed"
NOT_JUDGED = "not judged"
# The verdicts written before claims carried intervals: a claim's ``holds`` was True / False / None.
LEGACY_VERDICT = {True: HOLDS, False: "does not hold", None: NOT_JUDGED}


def verdict_of(claim: dict[str, Any]) -> str:
    """The claim's verdict (holds / tie / reversed / not judged; 'does not hold' in records before intervals)."""
    verdict = claim.get("verdict")
    return verdict if isinstance(verdict, str) else LEGACY_VERDICT.get(claim.get("holds"), NOT_JUDGED)


def points(fraction: float) -> str:
    """A signed difference in points, with a true minus sign."""
    return f"{100 * fraction:+.2f}".replace("-", "\N{MINUS SIGN}")


def _interval(claim: dict[str, Any]) -> dict[str, Any] | None:
    d = claim.get("interval")
    if not isinstance(d, dict) or not all(isinstance(d.get(k), (int, float)) for k in ("diff", "low", "high")):
        return None
    return d


def interval_text(claim: dict[str, Any]) -> str:
    """The deciding comparison in words: "swish − relu = −0.04 pts [−0.31, +0.23], paired bootstrap over
    12,675 test images; McNemar p = 0.71"; empty when the claim was not judged."""
    d = _interval(claim)
    if d is None:
        return ""
    images = "MNIST test images" if claim.get("part") == "mnist_test" else "test images"
    method = str(d.get("method") or "")
    text = (f"{claim.get('expect', '?')} \N{MINUS SIGN} {claim.get('against', '?')} = {points(d['diff'])} pts "
            f"[{points(d['low'])}, {points(d['high'])}]" + (f", {method}" if method else ""))  # fmt: skip
    if "assumed" not in method and isinstance(d.get("n"), int):
        text += f" over {d['n']:,} {images}"
    if method.startswith("unpaired"):
        text += (" (Table 8's cross-split scores keep no per-image predictions)" if claim.get("kind") == "cross_best"
                 else " (these runs predate per-image predictions)")  # fmt: skip
    if isinstance(p := d.get("mcnemar_p"), (int, float)):
        text += f"; McNemar p = {p:.2f}" if p >= 0.01 else f"; McNemar p = {p:.1e}"
    if isinstance(d.get("seed_std"), (int, float)):
        text += f"; seed-to-seed std of the difference {100 * d['seed_std']:.2f} pts"
    return text


def verdict_cell(claim: dict[str, Any]) -> str:
    """The verdict with its deciding interval, short enough for a table cell."""
    d = _interval(claim)
    if d is None:
        return verdict_of(claim)
    paired = "" if str(d.get("method") or "").startswith("paired") else ", unpaired"
    return (f"{verdict_of(claim)}: {points(d['diff'])} [{points(d['low'])}, {points(d['high'])}] pts vs "
            f"{claim.get('against')}{paired}")  # fmt: skip


def basis_text(claim: dict[str, Any]) -> str:
    """How the claim was judged: on a winner chosen on validation, or on test figures (and why)."""
    if claim.get("basis") == "validation":
        return "Winner chosen on validation metrics"
    if claim.get("kind") == "cross_best":
        return "Compared on test figures (this table makes no choice)"
    return "Compared on test figures (there is no validation part)"
