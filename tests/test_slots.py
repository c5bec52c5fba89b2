"""The drawing recipe's models through the export on the fixture (training/choose.py, export.py, slots.py): a tiny
recipe run chosen on validation, exported as <model>_lab-<split> with its recipe, ONNX Runtime and drawing-benchmark
figures and latency, the default-slot rule both ways, and its card."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from app_support import fixture_data

from recognizer.inference import Recognizer
from recognizer.labels import split_chars
from recognizer.manifest import Manifest, ModelEntry, load_manifest
from training import choose, convert
from training import export as E
from training import slots as L
from training.config import RunConfig
from training.models import create_model
from training.records import Metrics
from training.trainer import train

RECIPE = dict(aug_rotate=12.0, aug_shear=12.0, aug_scale=0.12, aug_translate=0.08, aug_elastic=1.5, aug_stroke=0.5,
              aug_contrast=0.3, aug_blur=1.0, schedule="cosine", warmup_epochs=1, label_smoothing=0.1,
              ema_decay=0.99, pool_images="all")  # fmt: skip
# No test depends on the machine's speed: the 5 ms limit is the default, checked apart; here it is 1 s.
FAST = ["--exporter", "legacy", "--quiet", "--drawbench-per-class", "1", "--max-ms", "1000"]


def constant_run(runs: Path, seed: int, val_accuracy: float) -> str:
    """A finished lenet5 run with every weight zero (it always answers '0'), recorded with the given validation
    accuracy: a stand-in for the reproduction's model whose figures the test controls."""
    config = RunConfig(model="lenet5", split="byclass", protocol="pool", seed=seed, profile="paper")
    run = runs / config.run_id()
    run.mkdir(parents=True)
    model = create_model("lenet5", 62)
    torch.save({k: torch.zeros_like(v) for k, v in model.state_dict().items()}, run / "best.pt")
    Metrics(run_id=run.name, config=config, split="byclass", protocol="pool", data_source="pool", device="cpu",
            test_loss=0.0, test_accuracy=0.0, weighted_f1=0.0, per_class_accuracy=[], confusion_matrix=[],
            train_seconds=0.0, inference_seconds=0.0, epochs_run=1, best_epoch=1, best_val_loss=None,
            best_val_accuracy=val_accuracy, n_train=0, n_val=0, n_test=0,
            chars=list(split_chars("byclass"))).write(run)  # fmt: skip
    return run.name


def lab_table(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    done = {"status": "done", "model": "lenet5", "split": "byclass", "profile": "smoke", "loss": "cross_entropy"}
    table = {"table": "lab", "profile": "smoke", "rows": [{**done, **row} for row in rows]}
    (folder / "lab.json").write_text(json.dumps(table))
    return folder


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory):
    """A tiny lab run, two stand-in reproductions (one unbeatable on validation, one beaten), their exports."""
    tmp = tmp_path_factory.mktemp("slots")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with fixture_data(tmp):
        config = RunConfig(model="lenet5", split="byclass", protocol="pool", epochs=3, batch_size=64, lr=2e-3,
                           early_stop_patience=0, profile="smoke", **RECIPE)  # fmt: skip
        metrics = train(config, device="cpu", progress=False)
        # A second row with a better test figure but a worse validation one: validation alone chooses.
        results = lab_table(tmp / "results", [
            {"key": "recipe", "run_id": metrics.run_id, "val_accuracy": metrics.best_val_accuracy,
             "val_loss": 1.0, "test_accuracy": 0.01},
            {"key": "decoy", "run_id": "lenet5-byclass-decoy", "val_accuracy": metrics.best_val_accuracy - 0.01,
             "test_accuracy": 0.99}])  # fmt: skip
        refs = {}
        for kind, val in (("strong", 0.999), ("weak", 0.0)):
            run_id = constant_run(tmp / "runs", seed=1 if kind == "strong" else 2, val_accuracy=val)
            refs[kind] = tmp / kind
            assert E.main(["--out", str(refs[kind]), "--run", run_id, "--name", "residual_cnn-byclass", "--slot",
                           "byclass", "--exporter", "legacy", "--quiet"]) == 0  # fmt: skip
        codes = {}
        for kind in refs:  # the lab export into the folder holding the reproduction, as a GPU session runs it
            codes[kind] = E.main(["--lab", "--results", str(results), "--out", str(refs[kind]), "--against",
                                  str(refs[kind]), *FAST])  # fmt: skip
        yield SimpleNamespace(tmp=tmp, metrics=metrics, results=results, refs=refs, codes=codes)
    torch.set_num_threads(threads)


def entries(folder: Path) -> dict[str, ModelEntry]:
    return {e.name: e for e in load_manifest(folder)}


def test_lab_run_is_chosen_on_validation_and_exported_under_its_own_name(made) -> None:
    picks, messages = choose.recipe_candidates(made.results)
    assert [(p.run_id, p.name, p.checked) for p in picks] == [(made.metrics.run_id, "lenet5_lab-byclass", True)]
    assert "on byclass" in picks[0].source
    assert any("no finished lab row on bymerge" in m for m in messages)
    assert made.codes == {"strong": 0, "weak": 0}
    for folder in made.refs.values():
        assert set(entries(folder)) == {"residual_cnn-byclass", "lenet5_lab-byclass"}
        again = Manifest.read(folder).write(made.tmp / "again.json")  # recipe, slot_rule, drawbench, latency
        assert again.read_bytes() == (folder / "manifest.json").read_bytes()


def test_the_entry_carries_recipe_images_and_figures(made) -> None:
    e = entries(made.refs["strong"])["lenet5_lab-byclass"]
    m = made.metrics
    r = e.recipe
    assert r.profile == "smoke" and r.pool_images == "all" and r.schedule == "cosine"
    assert r.augmentation == {k.removeprefix("aug_"): v for k, v in RECIPE.items() if k.startswith("aug_")}
    assert r.label_smoothing == 0.1 and r.ema_decay == 0.99 and r.warmup_epochs == 1
    assert r.n_train == m.n_train and r.images_seen == m.n_train * m.epochs_run and "pool images" in r.data_source
    assert e.metrics.best_val_accuracy == m.best_val_accuracy
    assert e.metrics.runtime_test_accuracy == pytest.approx(m.test_accuracy, abs=1e-6)
    d = e.metrics.drawbench
    assert 0 <= d.top1 <= d.top3 <= 1 and d.drawings == 3 * d.n_sources >= 3 * 40
    latency = e.metrics.latency
    assert latency.threads == 1 and latency.p50_ms > 0 and latency.repeats == L.LATENCY_REPEATS
    assert latency.max_ms > 0 and not r.extra and not e.metrics.extra and not e.slot_rule.extra
    assert e.path.stat().st_size < convert.MAX_MB * 1e6
    assert convert.read_metadata(e.path)["recipe"] == r.to_dict()  # the lone file describes itself


def test_the_reproduction_keeps_the_slot_unless_beaten_on_both(made) -> None:
    strong, weak = entries(made.refs["strong"]), entries(made.refs["weak"])
    kept = strong["lenet5_lab-byclass"].slot_rule
    assert not kept.takes_slot and "not beaten on validation" in kept.reason
    assert kept.reproduction.name == "residual_cnn-byclass" and kept.reproduction.validation == 0.999
    assert strong["lenet5_lab-byclass"].slot is None and strong["residual_cnn-byclass"].slot == "byclass"
    assert Recognizer(made.refs["strong"]).default_slots()["byclass"] == "residual_cnn-byclass"
    won = weak["lenet5_lab-byclass"].slot_rule
    # The stand-in always answers '0': on the drawings it is right on the '0' sources only.
    assert won.reproduction.drawn_top1 < won.lab.drawn_top1, won
    assert won.takes_slot and weak["lenet5_lab-byclass"].slot == "byclass", won.reason
    assert weak["residual_cnn-byclass"].slot is None  # selectable, named as the reproduction
    assert Recognizer(made.refs["weak"]).default_slots()["byclass"] == "lenet5_lab-byclass"


def test_decide_slot_needs_both_figures() -> None:
    rep = L.SlotFigures("residual_cnn-byclass", 0.88, 0.80)
    assert L.decide_slot("byclass", L.SlotFigures("x", 0.89, 0.81), rep).takes_slot
    for val, drawn in ((0.89, 0.80), (0.88, 0.95), (0.87, 0.95), (None, 0.95), (0.95, None)):
        decision = L.decide_slot("byclass", L.SlotFigures("x", val, drawn), rep)
        assert not decision.takes_slot and "residual_cnn-byclass stays the default" in decision.reason
    decided = L.decide_slot("byclass", L.SlotFigures("x", 0.1, 0.1), None)
    assert decided.takes_slot and decided.to_dict()["reproduction"] is None  # written as null, as before


def test_settle_slots_gives_a_lost_slot_back_to_the_reproduction() -> None:
    rule = L.decide_slot("byclass", L.SlotFigures("lab", 0.5, 0.5), L.SlotFigures("repro", 0.9, 0.9))
    models = [ModelEntry("lab", "lab.onnx", "", slot_rule=rule), ModelEntry("repro", "r.onnx", ""),
              ModelEntry("old", "o.onnx", "", slot="byclass")]  # fmt: skip
    L.settle_slots(models)
    assert [e.slot for e in models] == [None, "byclass", None]


def test_a_slow_model_is_not_exported(made, tmp_path: Path, capsys) -> None:
    parser = argparse.ArgumentParser()
    E.add_arguments(parser)
    defaults = parser.parse_args(["--lab"])
    assert (defaults.max_ms, defaults.max_mb) == (L.MAX_MS, convert.MAX_MB) == (5.0, 10.0)
    out = tmp_path / "slow"
    shutil.copytree(made.refs["strong"], out)
    with fixture_data(made.tmp):
        code = E.main(["--lab", "--results", str(made.results), "--out", str(out), "--against", str(out),
                       *FAST, "--max-ms", "1e-6"])  # fmt: skip
    assert code == 1 and "over the 1e-06 ms limit" in capsys.readouterr().err
    assert (out / "manifest.json").read_text() == (made.refs["strong"] / "manifest.json").read_text()


def test_the_model_card_shows_how_and_on_what_it_was_trained(made) -> None:
    from webapp.model_cards import model_card, models_table
    from webapp.served import ServedModels

    lab = ServedModels(made.refs["strong"], made.tmp / "assets")
    card = model_card(lab, "lenet5_lab-byclass")
    e = lab.entry("lenet5_lab-byclass")
    for words in (f"trained on **{e.recipe.n_train:,} images**", f"{e.recipe.images_seen:,} images seen",
                  "profile smoke", "augmentation: rotation ±12°, shear ±12°, scale ±12%, shift ±8%, elastic 1.5 px",
                  "label smoothing 0.1, EMA 0.99", "test accuracy in this app", "(ONNX Runtime on",
                  f"drawings (drawing benchmark) top-1 **{100 * e.metrics.drawbench.top1:.2f}%**",
                  "selectable, not the default: residual_cnn-byclass stays the default"):  # fmt: skip
        assert words in card, words
    assert f"| {e.recipe.n_train:,} images | {100 * e.metrics.drawbench.top1:.2f}% |" in models_table(lab)
    assert "drawings" not in model_card(lab, "residual_cnn-byclass")  # no benchmark figure for that file here


def test_lab_slots_trains_the_ablations_shipping_runs(emnist_env: Path) -> None:
    """`reproduce lab_slots` trains exactly the ablation's three recipe runs: a lease can train them first."""
    from training.plan import plan_table

    def run_ids(table: str) -> dict[str, str]:
        return {p.row.key: p.configs[0].run_id() for p in plan_table(table, "lab", emnist_env)}

    slots, ablation = run_ids("lab_slots"), run_ids("lab")
    assert slots == {k: ablation[k] for k in ("recipe", "recipe_bymerge", "recipe_balanced")}
