"""One answer, two implementations: the server's (recognizer/answers.py through webapp.analysis.analyse_x28 and
webapp.draw_display.shown) and the page's (webapp/static/answers.js and words.js, run in node) read the same
probabilities into the same answers, sets and words.

The readings: the three shipped slot models' answers to real EMNIST test images (as logits: the page's own softmax,
webapp/static/inference.js, runs first) and synthetic probabilities made to be hard (ties, flat, peaked, exact zeros,
a digits-only vector read as letters, a set threshold exactly at a member's probability or a float64 hair above it),
in every mode at several levels, with the manifest's answer rules and with edited copies (a prior adjustment, no
``together`` record, a record naming the slots in another order), slots that fail and messages. Server and page must
give the same top labels, probabilities and set members (within ``TOLERANCE``), the same set together, and the
same texts for the tab, character for character. One node process answers every case.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from recognizer.answers import MODES, adjust, restrict
from recognizer.conformal import fold
from recognizer.inference import Prediction, softmax
from recognizer.manifest import AnswerRules, ModelEntry
from tests import parity_support
from webapp.analysis import analyse_x28
from webapp.analysis_records import TOP_K, Analysis, SlotResult
from webapp.draw_display import shown
from webapp.page_config import slot_config
from webapp.served import ServedModels

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "tests" / "answers_node.mjs"
TOLERANCE = 1e-6  # per probability where exp or log run (logits, tau > 0); to the bit where only arithmetic does
IMAGES = 240  # real inputs, each read in every mode at two levels
SATURATED = 24  # and as many of them unscaled (0-255)
LEVELS = (0.9, 0.95)
LATENCIES = (0.125, 0.375, 1.005, 2.675, 10.125, 0.0, 0.004999, 123.4565)  # ties for Python's and JS's rounding

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node (part of the set-up: node 20)")


class CannedLab:
    """What analyse_x28 reads of ServedModels, its models answering with given probabilities (the page's)."""

    def __init__(self, entries: list[ModelEntry], answers: dict[str, tuple[np.ndarray, float]], level: float,
                 unavailable: dict[str, str] | None = None) -> None:
        self.entries, self.answers, self.level = {e.name: e for e in entries}, answers, level
        self.models, self.unavailable, self.problem, self.recognizer = entries, unavailable or {}, None, self

    def serves(self, name: str | None) -> bool:
        return bool(name) and name in self.entries and name not in self.unavailable

    def entry(self, name: str) -> ModelEntry:
        return self.entries[name]

    def predict(self, name: str, x28: np.ndarray, k: int = TOP_K) -> Prediction:
        probs, latency = self.answers[name]
        return Prediction(name, [], probs, None, latency)


class Cases:
    """Readings for both sides: each a list of slot entries and their probabilities, a mode and a level."""

    def __init__(self) -> None:
        self.slots: dict[str, ModelEntry] = {}  # key -> entry (the page gets slot_config of it)
        self.vectors: list[dict] = []  # what node gets: {"probabilities": [...]} or {"logits": [...]}
        self.probs: list[np.ndarray] = []  # what the server's models give for the same vector (float32)
        self.arithmetic: list[bool] = []  # given as probabilities: no exp or log on either side (tau 0)
        self.cases: list[dict] = []
        self.analyses: list[Analysis] = []

    def slot(self, entry: ModelEntry, key: str | None = None) -> str:
        key = key or entry.name
        self.slots[key] = entry
        return key

    def vector(self, probs: np.ndarray | None = None, logits: np.ndarray | None = None) -> int:
        self.arithmetic.append(logits is None)
        if logits is not None:
            self.vectors.append({"logits": [float(v) for v in logits]})
            self.probs.append(softmax(np.asarray(logits, np.float32)))
        else:
            self.probs.append(np.asarray(probs, np.float32))
            self.vectors.append({"probabilities": [float(v) for v in self.probs[-1]]})
        return len(self.vectors) - 1

    def read(self, keys: list[str | None], inputs: list[int | None], mode: str, level: float,
             unavailable: dict[str, str] | None = None) -> None:
        """One reading through the server's analyse_x28, and the same for the page."""
        latencies = [LATENCIES[(len(self.cases) + i) % len(LATENCIES)] for i in range(len(keys))]
        entries = [self.slots[k] for k in keys if k is not None]
        answers = {self.slots[k].name: (self.probs[v], t)
                   for k, v, t in zip(keys, inputs, latencies, strict=True) if k is not None and v is not None}
        lab = CannedLab(entries, answers, level, unavailable)
        names = [self.slots[k].name if k is not None else None for k in keys]
        self.analyses.append(analyse_x28(lab, np.zeros((28, 28), np.float32), names, TOP_K, False, mode))
        self.cases.append({"slots": keys, "inputs": inputs, "latencies": latencies, "mode": mode, "level": level,
                           "k": TOP_K, "unavailable": unavailable or {}})  # fmt: skip

    def message(self, analysis: Analysis, keys: list[str | None]) -> None:
        """A reading with nothing to read (empty canvas, bad upload, no models)."""
        self.analyses.append(analysis)
        self.cases.append({"slots": keys, "inputs": [None] * len(keys), "latencies": [], "mode": analysis.mode,
                           "level": analysis.level, "k": TOP_K, "message": analysis.message, "kind": analysis.kind})

    def page_input(self) -> dict:
        slots = {key: slot_config(entry) for key, entry in self.slots.items()}
        return {"slots": slots, "vectors": self.vectors, "cases": self.cases}


def with_answers(entry: ModelEntry, edit) -> ModelEntry:
    """A copy of an entry whose answer rules are edited (``edit`` changes the dict in place)."""
    rules = copy.deepcopy(entry.answers.to_dict())
    edit(rules)
    return dataclasses.replace(entry, answers=AnswerRules.from_dict(rules))


def synthetic(labels: list[str], rng: np.random.Generator) -> list[np.ndarray]:
    """Hard probability vectors for one model's labels."""
    n, index = len(labels), {c: i for i, c in enumerate(labels)}
    out = [np.full(n, 1 / n), np.eye(n)[index["7"]], np.eye(n)[index["A"]] * (1 - 1e-6) + 1e-6 / n]
    tie = np.full(n, 0.2 / (n - 2))
    tie[index["0"]] = tie[index["O"]] = 0.4  # two best exactly equal, the rest equal too
    out.append(tie)
    look = np.full(n, 1e-4)
    for c, p in (("0", 0.35), ("O", 0.3), ("o", 0.3), ("Q", 0.03)):
        look[index.get(c, index["O"])] += p
    out.append(look)
    digits = np.array([float(c.isdigit()) * (1 + i % 3) for i, c in enumerate(labels)])
    out.append(digits)  # nothing outside the digits: read as letters it reads nothing
    tiny = np.full(n, 1e-45)  # float32 subnormals
    tiny[index["1"]], tiny[index["I"]], tiny[index.get("l", index["I"])] = 0.5, 0.25, 0.25
    out.append(tiny)
    for alpha in (0.05, 0.3, 2.0):
        out.extend(rng.dirichlet(np.full(n, alpha), 4))
    order = np.full(n, 2.0**-54)  # numpy's pairwise sum keeps what adding one by one loses: p('A') rounds otherwise
    order[index["A"]], order[index["B"]] = 1.0, 2.0**-25
    return [*((v / v.sum()).astype(np.float32) for v in out), order.astype(np.float32)]


def at_threshold(entry: ModelEntry, probs: np.ndarray, mode: str, level: float, rank: int, hair: float) -> ModelEntry:
    """An entry whose set threshold (mode, level) is the ``rank``-th best folded probability (plus ``hair``)."""
    folded = np.sort(fold(restrict(adjust(probs, entry.answers), entry.labels, mode), entry.labels))[::-1]
    return with_answers(entry, lambda r: r["sets"][mode]["thresholds"].__setitem__(f"{level:g}",
                                                                                   float(folded[rank]) + hair))


def build_cases() -> Cases:
    """Every reading both sides answer: the shipped slot models' on real inputs, synthetic ones, odd ones."""
    lab = ServedModels(REPO / "exported_models", REPO / "assets")
    names = lab.slot_defaults()
    assert None not in names, f"three slot models expected, got {names} ({lab.unavailable})"
    cases = Cases()
    keys = [cases.slot(lab.recognizer.entry(n)) for n in names]
    real_readings(cases, lab, keys)
    made = synthetic_readings(cases, keys, np.random.default_rng(7))
    odd_readings(cases, lab, keys, made)
    return cases


def real_readings(cases: Cases, lab: ServedModels, keys: list[str]) -> None:
    """EMNIST test images through the slot models, their logits read by both sides in every mode."""
    images = parity_support.test_images(IMAGES)[0].astype(np.float32)  # 0-255: real inputs are these / 255
    saturated = images[:SATURATED]  # unscaled: logits so far apart that most probabilities are 0 in float32
    logits = [lab.recognizer.run(cases.slots[k].name, np.concatenate([images / 255, saturated]))[0] for k in keys]
    for i in range(len(logits[0])):
        inputs = [cases.vector(logits=lg[i]) for lg in logits]
        for mode in MODES:
            cases.read(keys, inputs, mode, LEVELS[i % 2])
        if i % 8 == 0:
            cases.read(keys, inputs, MODES[i % 3], (0.8, 0.99, 0.5)[i % 3])  # 0.5: no threshold, no set


def synthetic_readings(cases: Cases, keys: list[str], rng: np.random.Generator) -> list[list[np.ndarray]]:
    """Hard vectors in every mode at both levels, under the shipped rules and edited copies (a prior adjustment, no
    together record, one naming the slots in another order, thresholds exactly at a member), with slots missing."""
    entries = [cases.slots[k] for k in keys]
    groups = {
        "kept": [with_answers(e, lambda r, e=e: r.update(tau=1.0, prior="kept", kept_prior=list(
            rng.dirichlet(np.full(len(e.labels), 3.0))))) for e in entries],
        "uniform": [with_answers(e, lambda r: r.update(tau=0.5, prior="uniform")) for e in entries],
        "alone": [with_answers(entries[0], lambda r: r.update(together=None)), *entries[1:]],
        "swapped": [with_answers(entries[0], lambda r: r["together"]["models"].reverse()), *entries[1:]],
    }
    edited = {name: [cases.slot(e, f"{name}-{i}") for i, e in enumerate(group)] for name, group in groups.items()}
    unavailable = {entries[1].name: "file x.onnx is missing"}
    made = [synthetic(e.labels, rng) for e in entries]
    for j in range(len(made[0])):
        inputs = [cases.vector(probs=m[j]) for m in made]
        for mode in MODES:
            for level in LEVELS:
                for group in [keys, *edited.values()]:
                    cases.read(group, inputs, mode, level)
                cases.read([keys[0], None, keys[2]], inputs, mode, level)  # two answering: no set together
                cases.read(keys, inputs, mode, level, unavailable=unavailable)
                cases.read(keys[:1], inputs[:1], mode, level)  # one slot alone
            for s, entry in enumerate(entries):  # threshold at the 2nd best: >= keeps it; a float64 hair above
                for hair in (0.0, 1e-12, 1e-6):  # still keeps it (float32 compare); 1e-6 above does not
                    edge = cases.slot(at_threshold(entry, made[s][j], mode, 0.9, 1, hair), f"edge-{len(cases.slots)}")
                    cases.read([edge if t == s else k for t, k in enumerate(keys)], inputs, mode, 0.9)
        mean = np.mean([fold(restrict(m[j], e.labels, "anything"), e.labels) for m, e in zip(made, entries,
                                                                                                 strict=True)], 0)
        second = float(np.sort(mean)[::-1][1])  # the set together's threshold at its 2nd best
        both = cases.slot(with_answers(entries[0], lambda r, t=second: r["together"]["modes"]["anything"]
                                       ["thresholds"].__setitem__("0.9", t)), f"together-edge-{j}")  # fmt: skip
        cases.read([both, *keys[1:]], inputs, "anything", 0.9)
    return made


def odd_readings(cases: Cases, lab: ServedModels, keys: list[str], made: list[list[np.ndarray]]) -> None:
    """A digits-only model in a slot (no rules: no set), and readings with nothing to read."""
    digits_only = dataclasses.replace(cases.slots[keys[0]], name="digits-only", split="digits",
                                      labels=list("0123456789"), answers=None)  # fmt: skip
    only, vector = cases.slot(digits_only), cases.vector(probs=np.arange(1, 11) / 55)
    for mode in MODES:
        cases.read([only, *keys[1:]], [vector, *(cases.vector(probs=m[0]) for m in made[1:])], mode, 0.9)
    names = [cases.slots[k].name for k in keys]
    for analysis in (analyse_x28(lab, None, names),
                     Analysis(None, "The file is too large.", "bad", [SlotResult(n) for n in names], "digits", 0.95),
                     Analysis(None, "No models to ask: none loaded.", "no_models", [SlotResult(n) for n in names])):
        cases.message(analysis, keys)


@pytest.fixture(scope="module")
def both_sides(tmp_path_factory) -> tuple[Cases, list[dict]]:
    cases = build_cases()
    folder = tmp_path_factory.mktemp("answers")
    src, dst = folder / "cases.json", folder / "page.json"
    src.write_text(json.dumps(cases.page_input()))
    done = subprocess.run(["node", str(DRIVER), str(src), str(dst)], capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    page = json.loads(dst.read_text())
    assert len(page) == len(cases.analyses)
    return cases, page


def close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and bool(np.all(np.abs(np.asarray(a, float) - np.asarray(b, float)) <= TOLERANCE))


def same_set(server, page: dict | None) -> bool:
    if server is None or page is None:
        return server is None and page is None
    return (server.level == page["level"] and [d for d, _ in server.members] == [d for d, _ in page["members"]]
            and close([p for _, p in server.members], [p for _, p in page["members"]]))  # fmt: skip


def test_the_cases_cover_what_they_should(both_sides) -> None:
    cases, _ = both_sides
    answered = [a for a in cases.analyses if a.message is None]
    sets = [len(s.prediction.answer_set.members) for a in answered for s in a.slots
            if s.prediction is not None and s.prediction.answer_set is not None]  # fmt: skip
    assert len(answered) >= 1000
    assert min(sets) == 1 and max(sets) >= 3  # single answers and real look-alike sets
    assert sum(a.together is not None for a in answered) >= 100
    assert sum(a.together is None and all(s.ok for s in a.slots) and len(a.slots) == 3 for a in answered) >= 100
    errors = {s.error.split(" ", 1)[1] for a in answered for s in a.slots if s.error}
    assert {"reads no letters.", "failed: ValueError: residual_cnn-byclass reads no letters",
            "is unavailable: file x.onnx is missing", "model in this slot."} <= errors
    assert {a.agree for a in answered} == {True, False, None}


def test_the_same_answers_and_sets(both_sides) -> None:
    cases, page = both_sides
    exact = total = 0  # probability vectors the same to the bit
    for n, (analysis, result) in enumerate(zip(cases.analyses, page, strict=True)):
        assert len(result["slots"]) == len(analysis.slots)
        for s, (server, mine) in enumerate(zip(analysis.slots, result["slots"], strict=True)):
            where = f"case {n} ({cases.cases[n]['mode']}, {cases.cases[n]['level']}), slot {s}"
            assert (server.model, server.error) == (mine["name"], mine["error"]), where
            if server.prediction is None:
                assert mine["shaped"] is None, where
                continue
            p, q = server.prediction, mine["shaped"]
            assert [list(t[:2]) for t in p.top] == [t[:2] for t in q["top"]], where
            assert close([t[2] for t in p.top], [t[2] for t in q["top"]]), where
            assert close(list(p.probabilities), q["probabilities"]), where
            assert same_set(p.answer_set, q["set"]), f"{where}: {p.answer_set} vs {q['set']}"
            assert (p.char, p.mode) == (q["char"], q["mode"]), where
            same = np.array_equal(p.probabilities.astype(np.float64), q["probabilities"])
            key, vector = cases.cases[n]["slots"][s], cases.cases[n]["inputs"][s]
            assert same or not cases.arithmetic[vector] or getattr(cases.slots[key].answers, "tau", 0), where
            exact, total = exact + same, total + 1
        assert same_set(analysis.together, result["together"]), f"case {n}: {analysis.together} vs " \
                                                                f"{result['together']}"
    assert exact >= 0.99 * total, f"{exact} of {total} the same to the bit"  # exp and log may differ in the last place


def test_the_same_words(both_sides) -> None:
    cases, page = both_sides
    label = gr.Label(num_top_classes=TOP_K)
    for n, (analysis, result) in enumerate(zip(cases.analyses, page, strict=True)):
        server, mine = shown(analysis), result["shown"]
        for part in ("status", "agreement", "line", "infos"):
            assert getattr(server, part) == mine[part], f"case {n}: {part} differs"
        values = [None if v is None else label.postprocess(v).model_dump() for v in server.labels]
        for value, theirs in zip(values, mine["labels"], strict=True):
            if value is None or theirs is None:
                assert value is None and theirs is None, f"case {n}"
                continue
            assert value["label"] == theirs["label"], f"case {n}"
            assert [c["label"] for c in value["confidences"]] == [c["label"] for c in theirs["confidences"]]
            assert close([c["confidence"] for c in value["confidences"]],
                         [c["confidence"] for c in theirs["confidences"]]), f"case {n}"  # fmt: skip
