"""Answers a person can trust: the drawing benchmark's calibration split, modes, conformal sets and their wording.

The model with known answers is a one-node ONNX graph whose logits ignore the image (a bias), served through the
app's own path (``ServedModels`` -> ``analyse`` -> ``recognizer.answers.shape``) with an ``answers`` record whose
thresholds are set by hand.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recognizer.conformal import calibrate, coverage_and_size, coverage_bounds, lac_scores, quantile
from recognizer.files import sha256_file
from recognizer.labels import BYCLASS_CHARS
from recognizer.manifest import AnswerRules, ModelEntry, save_manifest

# The known answer, in any mode: '0' 50%, 'O' 30%, 'o' 10%, 'Q' 6%, '8' 4% (the rest near zero).
KNOWN = {"0": 0.5, "O": 0.3, "o": 0.1, "Q": 0.06, "8": 0.04}


def constant_model(path: Path) -> None:
    """An ONNX model whose logits are log(KNOWN) whatever the image: Flatten, MatMul by zeros, Add the bias."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    bias = np.full(len(BYCLASS_CHARS), -1000.0, np.float32)  # exactly 0 after the softmax
    for c, p in KNOWN.items():
        bias[BYCLASS_CHARS.index(c)] = np.log(p)
    nodes = [helper.make_node("Flatten", ["image"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["logits"])]
    graph = helper.make_graph(
        nodes, "constant", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", len(BYCLASS_CHARS)])],
        [numpy_helper.from_array(np.zeros((784, len(BYCLASS_CHARS)), np.float32), "w"),
         numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what every ONNX Runtime in use reads
    onnx.save(model, path)


@pytest.fixture(scope="module")
def known_lab(tmp_path_factory: pytest.TempPathFactory):
    from webapp.served import ServedModels

    folder = tmp_path_factory.mktemp("known")
    constant_model(folder / "known.onnx")
    thresholds = {"anything": 0.25, "digits": 0.5, "letters": 0.05}  # least folded probability of a member
    rules = AnswerRules(method="LAC", levels=[0.9], tau=0.0, prior="training",
                        sets={m: {"thresholds": {"0.9": t}, "n": 100, "on": "test"} for m, t in thresholds.items()})
    entry = ModelEntry("known", "known.onnx", sha256_file(folder / "known.onnx"), split="byclass",
                       labels=list(BYCLASS_CHARS), outputs={"logits": "logits"}, slot="byclass", answers=rules)
    save_manifest(folder, [entry])
    return ServedModels(folder, folder)


def png_of_a_stroke() -> bytes:
    image = Image.new("RGB", (400, 400), "white")
    ImageDraw.Draw(image).line([(150, 100), (250, 300)], fill="black", width=24)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_drawbench_split_is_stable_disjoint_and_keeps_a_sources_renderings_together() -> None:
    from training.answers import bench_parts, bench_rows, source_part

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (400, 28, 28), dtype=np.uint8)
    parts = [source_part(img) for img in images]
    assert parts == [source_part(img) for img in images[::-1]][::-1]  # by bytes, not by order
    assert source_part(np.zeros((28, 28), np.uint8)) == "test"  # pinned: the same on every machine
    assert set(parts) == {"calibration", "test"} and 0.4 < parts.count("calibration") / len(parts) < 0.6

    class Bench:  # the BenchSet fields bench_rows reads: 3 variants of each source, one refused
        inputs = rng.random((3, 400, 28, 28), dtype=np.float32)
        ok = np.ones((3, 400), bool)
        truth = rng.integers(0, 47, 400)

    Bench.images, Bench.ok[1, 5] = images, False
    x, truth, part = bench_rows(Bench, bench_parts(Bench))
    assert len(x) == 3 * 400 - 1 and np.array_equal(np.sort(np.unique(part)), ["calibration", "test"])
    source = np.tile(np.arange(400), 3)[Bench.ok.ravel()]
    cal, test = set(source[part == "calibration"]), set(source[part == "test"])
    assert not cal & test and cal | test == set(range(400))  # disjoint by source: every rendering in its source's part


def test_modes_restrict_answers_and_sets_on_a_model_with_known_answers(known_lab) -> None:
    from webapp.analysis import analyse
    from webapp.api import predict_json
    from webapp.draw import shown

    png = png_of_a_stroke()
    seen = {}
    for mode in ("anything", "digits", "letters"):
        slot = analyse(known_lab, png, ["known"], saliency=False, mode=mode).slots[0]
        seen[mode] = ([c for c, _, _ in slot.prediction.top], slot.prediction.answer_set.chars)
    # anything: top as the model says; set: '0' 0.5 and O+o folded 0.4 (shown as byclass's own 'O'); Q is under 0.25
    assert seen["anything"] == (["0", "O", "o", "Q", "8"], ["0", "O"])
    assert seen["digits"] == (["0", "8"], ["0"])  # renormalised: 0 = 0.926, 8 = 0.074 < 0.5
    assert seen["letters"] == (["O", "o", "Q"], ["O", "Q"])  # O+o = 0.87, Q = 0.13
    line = shown(analyse(known_lab, png, ["known"], saliency=False)).infos[0]
    assert "**0** 50% or **O** 40%" in line and "90% of the time" in line

    answer = predict_json(known_lab, png, only="letters", include_input=False)
    assert answer["mode"] == "letters" and answer["models"][0]["set"] == ["O", "Q"]
    assert answer["models"][0]["coverage"] == 0.9 and answer["models"][0]["mode"] == "letters"
    assert all(t["char"].isalpha() for t in answer["models"][0]["top"])
    assert [t["char"] for t in predict_json(known_lab, png, only="digits")["models"][0]["top"]] == ["0", "8"]


def test_coverage_on_a_synthetic_exchangeable_set_is_within_its_finite_sample_bound() -> None:
    """400 calibration draws of 100 and 1,000 test points each from one distribution (a model's probabilities and
    labels drawn from them): the mean coverage lies in [level, level + 1/(n+1)], up to its standard error."""
    rng = np.random.default_rng(1)
    reps, n, m, classes, level = 400, 100, 1000, 10, 0.9
    probs = rng.dirichlet(np.full(classes, 0.3), (reps, n + m))
    truth = (rng.random((reps, n + m, 1)) > probs.cumsum(-1)).sum(-1)
    covered = []
    for r in range(reps):
        q = quantile(lac_scores(probs[r, :n], truth[r, :n]), level)
        covered.append(float((lac_scores(probs[r, n:], truth[r, n:]) <= q).mean()))
    low, high = coverage_bounds(n, level)
    error = 3 * np.std(covered) / np.sqrt(reps)
    assert low - error <= np.mean(covered) <= high + error, (np.mean(covered), low, high)
    # the app's sets (the most probable class always in) cover at least as much, and are never empty
    threshold = calibrate(probs[0, :n], truth[0, :n], level)
    coverage, size = coverage_and_size(probs[0, n:], truth[0, n:], threshold)
    assert coverage >= float((lac_scores(probs[0, n:], truth[0, n:]) <= 1 - threshold).mean()) and size >= 1


def test_the_prior_moves_answers_only_by_tau_and_towards_the_named_prior() -> None:
    from recognizer.answers import adjust

    probs = np.array([[0.6, 0.4]])  # a model trained where class 0 was 4x as frequent as class 1
    rules = AnswerRules(tau=0.0, prior="uniform", training_prior=[0.8, 0.2], kept_prior=[0.5, 0.5])
    assert np.allclose(adjust(probs, rules), probs)  # tau 0, the default: the model as trained
    assert np.allclose(adjust(probs, rules, tau=1.0), [[0.6 / 4 / (0.6 / 4 + 0.4), 0.4 / (0.6 / 4 + 0.4)]])
    rules.prior, rules.kept_prior = "kept", [0.8, 0.2]  # the kept drawings' frequencies equal the training ones
    assert np.allclose(adjust(probs, rules, tau=1.0), probs)
