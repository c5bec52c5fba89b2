"""Kept drawings on the torch side (training/kept.py, training/finetune_kept.py, training/fromonnx.py): the
keyed split, the exact ONNX-to-torch load, and export -> score -> fine-tune -> export on a store of drawing-benchmark
renderings of the fixture's real images."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from app_support import fixture_data

from recognizer.drawings import open_store, score_drawings
from recognizer.files import sha256_file
from recognizer.inference import Recognizer
from recognizer.labels import BYCLASS_CHARS, MERGED_CHARS, folded_hits
from recognizer.manifest import Manifest
from training import drawbench, export, finetune_kept, fromonnx
from training import kept as drawings
from training.__main__ import main
from training.data import load_pool

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "exported_models"
CONFIG = finetune_kept.FinetuneConfig(epochs=1, pool_per_epoch=64, batch_size=64)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory):
    """The fixture data root, and a store filled once with ~100 canvas renderings of its test-part images."""
    tmp = tmp_path_factory.mktemp("kept")
    threads = torch.get_num_threads()
    with fixture_data(tmp) as root:
        torch.set_num_threads(1)  # as the fine-tune runs on a shared CPU; put back for the tests after these
        pool = load_pool(root)
        sources = drawbench.pick_sources(pool, 2, seed=2026)
        store = tmp / "drawings.sqlite3"
        with open_store(store) as s:
            ids = drawings.render_into(s, pool, sources, 2026, MODELS, progress=False)
        yield {"tmp": tmp, "root": root, "pool": pool, "store": store, "ids": ids}
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def finetuned(work: dict):
    kept = drawings.read_kept(work["store"])
    run_dir = finetune_kept.finetune(kept, CONFIG, MODELS, progress=False)
    return kept, run_dir


def test_the_split_is_keyed_stable_and_about_80_10_10() -> None:
    ids = [f"{i:032x}" for i in range(3000)]
    parts = [drawings.drawing_part(i) for i in ids]
    assert parts == [drawings.drawing_part(i) for i in ids]
    share = {p: parts.count(p) / len(parts) for p in drawings.PARTS}
    assert abs(share["train"] - 0.8) < 0.03 and abs(share["val"] - 0.1) < 0.02 and abs(share["test"] - 0.1) < 0.02
    other = [drawings.drawing_part(i, key=b"another key") for i in ids]
    assert np.mean(np.array(other) != np.array(parts)) > 0.2  # the key decides, not the id's order


@pytest.mark.parametrize("name", ["residual_cnn-byclass", "ssl_cnn-mnist50", "lenet5-byclass"])
def test_exact_onnx_to_torch_load(work: dict, name: str) -> None:
    model, entry = fromonnx.load_exported(name, MODELS)
    images = work["pool"].images[:200].astype(np.float32) / 255.0
    ours = fromonnx.torch_logits(model, images)
    theirs = Recognizer(MODELS).run(name, images)[0]
    assert np.abs(ours - theirs).max() < 1e-4, name
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    norms = [m for m in model.modules() if isinstance(m, fromonnx.BATCHNORM)]
    assert (len(norms) > 0) == (entry.family != "lenet5")
    # Fine-tuning mode: dropout trains, BatchNorm stays in eval mode and its statistics do not move.
    fromonnx.frozen_bn_train(model)
    assert model.training and not any(m.training for m in norms)
    before = [m.running_mean.clone() for m in norms]
    model(torch.from_numpy(images[:32])[:, None])
    assert all(torch.equal(a, m.running_mean) for a, m in zip(before, norms, strict=True))


def test_a_finetune_needs_kept_training_drawings_and_a_letter_model(work: dict) -> None:
    with pytest.raises(ValueError, match="no kept drawings"):
        finetune_kept.finetune(drawings.kept_set([]), CONFIG, MODELS, progress=False)
    kept = drawings.read_kept(work["store"])
    with pytest.raises(ValueError, match="reads mnist50"):
        finetune_kept.finetune(kept, finetune_kept.FinetuneConfig(model="ssl_cnn-mnist50"), MODELS, progress=False)


def test_trial_renderings_come_from_the_pool_training_part_only(work: dict) -> None:
    pool = work["pool"]
    sources = drawings.pick_training_sources(pool, 200, seed=1)
    assert len(sources) == len(set(sources.tolist())) == 200
    assert set(pool.part[sources].tolist()) <= set(range(8)), "a trial source from validation or test"
    assert len(set(pool.merged[sources].tolist())) == 47  # spread over every merged class
    for i in sources[:50]:
        char = drawings.pool_character(pool, int(i))
        assert drawings.merged_character(char) == MERGED_CHARS[pool.merged[i]]
        assert ("/" in char) == (pool.byclass[i] < 0 and MERGED_CHARS[pool.merged[i]] in "CIJKLMOPSUVWXYZ")


def test_a_model_that_does_not_fit_the_file_is_refused() -> None:
    entry = fromonnx.manifest_entry("residual_cnn-byclass", MODELS)
    wrong = fromonnx.create_model("lenet5", 62)
    with pytest.raises(fromonnx.OnnxLoadError):
        fromonnx.load_onnx_into(wrong, entry.path)


def test_open_case_drawings_count_for_either_case() -> None:
    labels = list(BYCLASS_CHARS)
    masks = finetune_kept.label_masks(["O/o", "o", "a"], labels, merged_model=False)
    assert [labels[i] for i in np.flatnonzero(masks[0])] == ["O", "o"]
    assert [labels[i] for i in np.flatnonzero(masks[1])] == ["o"]
    merged = finetune_kept.label_masks(["o", "O/o", "a"], list(MERGED_CHARS), merged_model=True)
    assert [[MERGED_CHARS[i] for i in np.flatnonzero(m)] for m in merged] == [["O"], ["O"], ["a"]]
    logits = torch.randn(3, 62)
    one_hot = torch.from_numpy(masks[1:2].repeat(3, 0))
    plain = torch.nn.functional.cross_entropy(logits, torch.full((3,), labels.index("o")))
    assert torch.allclose(finetune_kept.set_loss(logits, one_hot), plain)


def test_export_splits_by_id(work: dict) -> None:
    out = work["tmp"] / "dataset"
    counts = drawings.export_kept(work["store"], out)
    assert sum(counts.values()) == len(work["ids"]) >= 90
    expected = {p: sum(drawings.drawing_part(i) == p for i in work["ids"]) for p in drawings.PARTS}
    assert counts == {p: n for p, n in expected.items() if n}
    for part in counts:
        assert (out / f"emnist-drawings-{part}-images-idx3-ubyte.gz").is_file()
    rows = (out / "drawings.csv").read_text().splitlines()[1:]
    assert all(row.split(",")[1] == drawings.drawing_part(row.split(",")[0]) for row in rows)
    assert main(["drawings", "export", "--store", str(work["store"]), "--out", str(work["tmp"] / "cli")]) == 0
    assert json.loads((work["tmp"] / "cli" / "split.json").read_text())["counts"] == counts


def test_score_every_model_on_the_kept_drawings(work: dict) -> None:
    kept = drawings.read_kept(work["store"])
    results = drawings.score_models(kept, MODELS)
    names = [r["name"] for r in results]
    assert "residual_cnn-byclass" in names and "ssl_cnn-mnist50" not in names  # digits-only models are not scored
    for r in results:
        assert r["all"]["n"] == len(kept) and r["test"]["n"] == len(kept.part("test"))
        assert 0 <= r["all"]["top1"] <= r["all"]["top3"] <= 1
    # The app's torch-free live score (recognizer.drawings.score_drawings) gives the same figures.
    with open_store(work["store"], read_only=True) as store:
        live = {r["name"]: r for r in score_drawings(Recognizer(MODELS), store.all())}
    for r in results:
        assert (live[r["name"]]["top1"], live[r["name"]]["top3"], live[r["name"]]["n"]) == (
            r["all"]["top1"], r["all"]["top3"], r["all"]["n"])
    probs = np.random.default_rng(0).random((500, 62))
    truth = np.random.default_rng(1).integers(0, 47, 500)
    for ours, theirs in zip(folded_hits(probs, BYCLASS_CHARS, truth), drawbench.folded_hits(probs, list(BYCLASS_CHARS),
                                                                                             truth), strict=True):
        assert np.array_equal(ours, theirs)
    best = max(r["all"]["top1"] for r in results)
    assert best > 0.5, "the shipped models fail on drawings of real images: the folding or the labels are wrong"
    assert main(["drawings", "score", "--store", str(work["store"]), "--json", str(work["tmp"] / "s.json")]) == 0
    assert json.loads((work["tmp"] / "s.json").read_text())["n"] == len(kept)


def test_finetune_reports_before_and_after(work: dict, finetuned: tuple) -> None:
    kept, run_dir = finetuned
    store = work["store"]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["kept"] == {p: len(kept.part(p)) for p in drawings.PARTS}
    for when in ("before", "after"):
        figures = result[when]
        assert set(figures) == {"kept_val", "kept_test", "pool_val", "pool_test"}
        assert figures["pool_test"]["n"] > 100 and 0 < figures["pool_test"]["accuracy"] <= 1
    assert result["chosen_epoch"] in (0, 1) and len(result["history"]) == 1
    # The start (epoch 0) is a candidate: the chosen epoch is never worse on the kept validation drawings.
    assert result["after"]["kept_val"]["top1"] >= result["before"]["kept_val"]["top1"]
    for name in ("config.json", "log.txt", "history.json", "checkpoint.pt", "best.pt"):
        assert (run_dir / name).is_file(), name
    # A finished run is found again, not trained again (also from the command line, with the same settings).
    assert finetune_kept.finetune(kept, CONFIG, MODELS, progress=False) == run_dir
    log = (run_dir / "log.txt").read_text()
    assert main(["drawings", "finetune", "--store", str(store), "--epochs", "1", "--pool-per-epoch", "64",
                 "--batch-size", "64", "--models", str(MODELS), "--no-export", "--quiet"]) == 0  # fmt: skip
    assert (run_dir / "log.txt").read_text().count("already finished") == log.count("already finished") + 1


def test_a_killed_finetune_resumes_after_its_last_epoch(work: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = drawings.read_kept(work["store"])
    config = finetune_kept.FinetuneConfig(epochs=2, pool_per_epoch=32, batch_size=64, seed=7)
    original = finetune_kept.train_epoch

    def dies_in_epoch_2(*args, **kwargs):
        if args[5] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(finetune_kept, "train_epoch", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        finetune_kept.finetune(kept, config, MODELS, progress=False)
    monkeypatch.setattr(finetune_kept, "train_epoch", original)
    run_dir = finetune_kept.finetune(kept, config, MODELS, progress=False)
    assert "resuming after epoch 1" in (run_dir / "log.txt").read_text()
    assert [r["epoch"] for r in json.loads((run_dir / "result.json").read_text())["history"]] == [1, 2]


def test_the_finetuned_model_exports_as_a_selectable_model(work: dict, finetuned: tuple) -> None:
    _, run_dir = finetuned
    shipped = {p.name: sha256_file(p) for p in MODELS.glob("*.onnx")}
    out = work["tmp"] / "models"
    entry = export.export_finetuned(run_dir, out, MODELS, bench_per_class=1, progress=False)
    assert entry.name == "residual_cnn-byclass_kept" and entry.family == "residual_cnn"
    assert entry.parity.passed and entry.parity.max_abs_logit_diff < 1e-4
    assert entry.recipe.finetuned_from["name"] == "residual_cnn-byclass"
    assert entry.recipe.kept_drawings["train"] > 50
    assert entry.metrics.kept.after["pool_test"]["accuracy"] == entry.metrics.test_accuracy
    rule = entry.slot_rule
    assert rule.reproduction.name == "residual_cnn-byclass" and (entry.slot == "byclass") == rule.takes_slot
    manifest = Manifest.read(out)
    assert [e.name for e in manifest.models] == [entry.name]
    again = manifest.write(work["tmp"] / "again.json")  # kept figures, recipe and slot_rule write back unchanged
    assert again.read_bytes() == (out / "manifest.json").read_bytes()
    assert (out / "runs" / entry.name / "result.json").is_file()
    recognizer = Recognizer(out)
    assert entry.name in recognizer.sessions and recognizer.unavailable == {}
    assert {p.name: sha256_file(p) for p in MODELS.glob("*.onnx")} == shipped  # the reproduced models untouched
    assert not os.path.exists(MODELS / f"{entry.name}.onnx")
    again_model, _ = fromonnx.load_exported(entry.name, out)  # from its torch weights now, not the folded graph
    assert entry.export.torch_weights == f"{entry.name}.safetensors"
    assert sha256_file(out / entry.export.torch_weights) == entry.export.torch_weights_sha256
    images = work["pool"].images[:100].astype(np.float32) / 255.0
    assert np.abs(fromonnx.torch_logits(again_model, images) - recognizer.run(entry.name, images)[0]).max() < 1e-4
