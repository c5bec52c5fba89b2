"""Study B's representation learning: the unlabelled set, the augmentations, SimCLR's and VICReg's losses,
pretraining and its resume, their comparison on validation, a run that starts from the pretrained encoder, and
FixMatch's runs and their resume (training/ssl.py, unlabelled.py, augmentation.py, fixmatch.py)."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from recognizer.embeddings import STAGE_NAMES, load_embedding
from recognizer.manifest import TrainingRecord
from training import embed, fixmatch, ssl, trainer
from training.augmentation import strong_view
from training.choose import pick_without_validation
from training.collect import load_results
from training.config import RunConfig
from training.data import load_studyb
from training.experiments import Row, Spec, SpecError, load_spec
from training.export import select_candidates
from training.handwriting import MILD, SIMCLR_VIEWS, HandwritingAugment, augment
from training.models import create_model
from training.plan import plan_table
from training.runfolder import RunFolder
from training.runner import torch_threads
from training.trainer import train
from training.unlabelled import build_unlabelled
from training.utils import stratified_subset

REPO = Path(__file__).resolve().parents[1]
TINY = {"epochs": 2, "limit_unlabelled": 64, "batch_size": 32, "profile": "test"}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # On the shared 2-core CPU two torch threads wait on each other (several times slower), as in test_reproduce.
    with torch_threads(1):
        yield


def test_unlabelled_set_holds_no_study_b_test_image(emnist_env: Path) -> None:
    studyb = load_studyb(emnist_env)
    unlabelled = build_unlabelled(emnist_env, studyb)
    kept = {img.tobytes() for img in unlabelled.images}
    tests = [*studyb.parts["test"][0], *studyb.extra_tests["mnist_test"][0]]
    assert not kept & {img.tobytes() for img in tests}
    assert len(kept) == len(unlabelled.images)  # byte-identical images are one image
    summary = unlabelled.summary
    # The report's 100 test images come from the MNIST training slice, so they must have been found and removed.
    assert summary["removed_as_test_images"]["report_test"] == 100
    assert summary["distinct_images"] - summary["removed_total"] == summary["unlabelled_images"] == len(kept)
    assert summary["images_before_dedup"] == sum(summary["sources"].values())
    assert summary["labelled_train_images_kept_unlabelled"] == 400


def test_augmentations_are_batched_seeded_and_off_in_eval() -> None:
    x = torch.zeros(8, 1, 28, 28)
    x[:, :, 8:20, 12:16] = 1.0  # a bar: every view keeps ink in [0, 1]
    torch.manual_seed(0)
    a = augment(x, SIMCLR_VIEWS)
    torch.manual_seed(0)
    assert torch.equal(a, augment(x, SIMCLR_VIEWS))  # resumable: the same seed gives the same views
    assert a.shape == x.shape and float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert not torch.equal(a[0], a[1])  # each image of the batch gets its own map
    assert (a.sum((1, 2, 3)) > 10).all()  # the ink survives
    layer = HandwritingAugment(MILD)
    assert torch.equal(layer.eval()(x), x) and not torch.equal(layer.train()(x), x)


def test_nt_xent_is_the_simclr_formula() -> None:
    torch.manual_seed(0)
    z1, z2 = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    t = 0.3
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1).tolist()
    cos = lambda i, j: sum(a * b for a, b in zip(z[i], z[j], strict=True))  # noqa: E731
    losses = []
    for i in range(10):  # -log( exp(s_ij / t) / sum_{k != i} exp(s_ik / t) ), j the other view of i
        j = (i + 5) % 10
        losses.append(-cos(i, j) / t + math.log(sum(math.exp(cos(i, k) / t) for k in range(10) if k != i)))
    assert float(ssl.nt_xent(z1, z2, t)) == pytest.approx(sum(losses) / 10, rel=1e-9)


def interrupt_in_epoch_2(monkeypatch: pytest.MonkeyPatch, module: object, epoch_fn: str, epoch_arg: int,
                         run: Callable[[], object]) -> None:
    """``run`` interrupted as ``module.epoch_fn`` starts epoch 2 (its argument ``epoch_arg``), then the real
    function put back, so the next run resumes from what the interrupted one left."""
    real_epoch = getattr(module, epoch_fn)

    def killed_in_epoch_2(*args, **kwargs):
        if args[epoch_arg] == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(module, epoch_fn, killed_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.setattr(module, epoch_fn, real_epoch)


def test_pretraining_resumes_exactly_and_a_probe_keeps_its_encoder(
    emnist_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ssl.PretrainConfig(**TINY)
    unbroken = ssl.pretrain(config, tmp_path / "a", emnist_env, "cpu", progress=False)
    interrupt_in_epoch_2(monkeypatch, ssl, "pretrain_epoch", 4,
                         lambda: ssl.pretrain(config, tmp_path / "b", emnist_env, "cpu", progress=False))
    resumed = ssl.pretrain(config, tmp_path / "b", emnist_env, "cpu", progress=False)
    assert "resuming" in (tmp_path / "b" / config.run_id() / "log.txt").read_text()
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in unbroken["history"]]
    encoders = [torch.load(d / config.run_id() / ssl.ENCODER) for d in (tmp_path / "a", tmp_path / "b")]
    assert all(torch.equal(encoders[0][k], encoders[1][k]) for k in encoders[0])
    assert unbroken["data"]["used_for_pretraining"] == 64 and 0 <= unbroken["knn_loo_accuracy"] <= 1

    # A linear probe starts from the encoder and never changes it (weights and BatchNorm statistics alike).
    probe = RunConfig(model="ssl_cnn", split="mnist50", model_args={"frozen": True}, epochs=2, batch_size=20,
                      early_stop_patience=0, limit_train=40, init_from=config.run_id(), profile="test")  # fmt: skip
    train(probe, runs_dir=tmp_path / "a", device="cpu", progress=False)
    best = RunFolder(tmp_path / "a" / probe.run_id()).load_best("cpu")
    assert all(torch.equal(best[f"body.{k}"], v) for k, v in encoders[0].items())
    head = create_model("ssl_cnn").state_dict()["head.weight"]
    assert not torch.equal(best["head.weight"], head)  # (the head did train)
    assert "initialised from the pretrained encoder" in (tmp_path / "a" / probe.run_id() / "log.txt").read_text()


def test_a_run_without_its_pretraining_fails_loudly(emnist_env: Path, tmp_path: Path) -> None:
    config = RunConfig(model="ssl_cnn", split="mnist50", epochs=1, limit_train=40, init_from="pretrain-simclr-none")
    with pytest.raises(FileNotFoundError, match="not a finished pretraining"):
        train(config, runs_dir=tmp_path, device="cpu", progress=False)


def test_the_table_plans_its_pretraining_and_shares_study_b_runs(emnist_env: Path) -> None:
    plans = {name: {p.row.key: p for p in plan_table(name, "quick", emnist_env)} for name in ("studyB", "studyB_ssl")}
    ssl_rows, studyb = plans["studyB_ssl"], plans["studyB"]
    for key in ("cnn_ce", "cnn_focal", "basic_ce"):  # the report's supervised rows are Study B's own runs
        assert [c.run_id() for c in ssl_rows[key].configs] == [c.run_id() for c in studyb[key].configs]
    pretraining = ssl.planned_pretraining(load_spec("studyB_ssl"), "simclr", "quick")
    assert pretraining.profile == "quick" and pretraining.epochs < load_spec("studyB_ssl").pretrain["simclr"]["epochs"]
    assert {c.init_from for c in ssl_rows["finetune_ce"].configs} == {pretraining.run_id()}
    assert ssl_rows["scratch_ce"].configs[0].init_from is None
    assert {(c.fixmatch_mu, c.init_from) for c in ssl_rows["fixmatch_ce"].configs} == {(7, pretraining.run_id())}
    with pytest.raises(SpecError, match="not one of its pretrainings"):
        Spec("t", "T", {"split": "mnist50"}, (Row("a", "A", {"init_from": "byol"}),), (), budget="studyB")


def test_pretraining_page_names_the_overlaps(emnist_env: Path, tmp_path: Path) -> None:
    spec = Spec("t", "T", {"split": "mnist50"}, (Row("a", "A", {"model": "ssl_cnn", "init_from": "s"}),), (),
                budget="studyB", pretrain={"s": {"epochs": 1, "limit_unlabelled": 32, "batch_size": 16}})  # fmt: skip
    assert ssl.pretraining_page(spec, "smoke", tmp_path / "runs", tmp_path / "out").read_text().count("not run yet")
    ssl.pretrain_table(spec, "smoke", tmp_path / "runs", emnist_env, "cpu")
    page = ssl.pretraining_page(spec, "smoke", tmp_path / "runs", tmp_path / "out").read_text()
    assert "100 removed because they are Study B test images" in page
    run_id = ssl.planned_pretraining(spec, "s", "smoke").run_id()
    assert json.loads((tmp_path / "out" / "runs" / run_id / ssl.DONE).read_text())["run_id"] == run_id
    assert np.isfinite(json.loads((tmp_path / "out" / "runs" / run_id / "history.json").read_text())[0]["loss"])


def test_vicreg_is_the_papers_formula() -> None:
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64) * 0.3
    n, d = 6, 4
    invariance = sum((a - b) ** 2 for r1, r2 in zip(z1.tolist(), z2.tolist(), strict=True)
                     for a, b in zip(r1, r2, strict=True)) / (n * d)  # fmt: skip
    variance = covariance = 0.0
    for z in (z1.tolist(), z2.tolist()):
        means = [sum(row[j] for row in z) / n for j in range(d)]
        cov = [[sum((row[i] - means[i]) * (row[j] - means[j]) for row in z) / (n - 1) for j in range(d)]
               for i in range(d)]  # fmt: skip
        variance += sum(max(0.0, 1 - math.sqrt(cov[j][j] + 1e-4)) for j in range(d)) / d / 2
        covariance += sum(cov[i][j] ** 2 for i in range(d) for j in range(d) if i != j) / d
    expected = 25 * invariance + 25 * variance + covariance
    assert float(ssl.vicreg(z1, z2)) == pytest.approx(expected, rel=1e-9)


def test_two_pretrainings_are_compared_on_the_labelled_images_only(emnist_env: Path, tmp_path: Path) -> None:
    tiny = {"epochs": 1, "limit_unlabelled": 64, "batch_size": 32}
    spec = Spec("t", "T", {"split": "mnist50"}, (Row("a", "A", {"model": "ssl_cnn", "init_from": "s"}),), (),
                budget="studyB", pretrain={"s": tiny, "v": {**tiny, "method": "vicreg", "projection_dim": 32}})
    summaries = ssl.pretrain_table(spec, "smoke", tmp_path / "runs", emnist_env, "cpu")
    assert [s["config"]["method"] for s in summaries] == ["simclr", "vicreg"]
    assert all(np.isfinite(h["loss"]) for s in summaries for h in s["history"])
    page = ssl.pretraining_page(spec, "smoke", tmp_path / "runs", tmp_path / "out").read_text()
    choice = json.loads((tmp_path / "out" / "pretraining" / "t.json").read_text())
    assert [p["method"] for p in choice["pretrainings"]] == ["simclr", "vicreg"]
    assert choice["chosen"] in ("s", "v") and choice["rows_start_from"] == ["s"]
    assert all(0 <= p["probe_cv_accuracy"] <= 1 for p in choice["pretrainings"])
    assert f"`{choice['chosen']}` is chosen" in page and "VICReg loss" in page


def fixmatch_config(init_from: str, **settings) -> RunConfig:
    return RunConfig(**{"model": "ssl_cnn", "split": "mnist50", "model_args": {"augment": True}, "epochs": 2,
                        "batch_size": 20, "early_stop_patience": 0, "limit_train": 40, "init_from": init_from,
                        "fixmatch_mu": 2, "fixmatch_threshold": 0.0, "profile": "test", **settings})


def test_fixmatch_is_off_by_default_and_a_killed_run_resumes_exactly(
    emnist_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not any(key.startswith("fixmatch") for key in RunConfig().to_dict())  # the recorded ids stay
    assert fixmatch.create(RunConfig(), torch.device("cpu")) is None
    pretraining = ssl.PretrainConfig(**TINY)
    ssl.pretrain(pretraining, tmp_path / "a", emnist_env, "cpu", progress=False)
    shutil.copytree(tmp_path / "a" / pretraining.run_id(), tmp_path / "b" / pretraining.run_id())
    config = fixmatch_config(pretraining.run_id())  # threshold 0: every unlabelled image gets its pseudo-label
    unbroken = train(config, runs_dir=tmp_path / "a", device="cpu", progress=False)
    interrupt_in_epoch_2(monkeypatch, trainer, "train_one_epoch", 3,
                         lambda: train(config, runs_dir=tmp_path / "b", device="cpu", progress=False))
    resumed = train(config, runs_dir=tmp_path / "b", device="cpu", progress=False)
    assert "resuming" in (tmp_path / "b" / config.run_id() / "log.txt").read_text()
    assert (resumed.test_accuracy, resumed.mnist_test_accuracy) == (unbroken.test_accuracy,
                                                                    unbroken.mnist_test_accuracy)  # fmt: skip
    weights = [RunFolder(d / config.run_id()).load_best("cpu") for d in (tmp_path / "a", tmp_path / "b")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    history = json.loads((tmp_path / "b" / config.run_id() / "history.json").read_text())
    assert [row["unlabelled_used"] for row in history] == [1.0, 1.0]
    # The unlabelled images change what is learnt: the same run without them ends elsewhere.
    plain = train(fixmatch_config(pretraining.run_id(), fixmatch_mu=0), runs_dir=tmp_path / "a", device="cpu",
                  progress=False)  # fmt: skip
    assert plain.run_id != unbroken.run_id and plain.test_loss != unbroken.test_loss


def test_fixmatch_leaves_batchnorm_running_statistics_to_the_labelled_batches() -> None:
    model = create_model("ssl_cnn", augment=True).train()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    config = RunConfig(model="ssl_cnn", split="mnist50", fixmatch_mu=2, fixmatch_threshold=0.0)
    part = fixmatch.FixMatch(torch.randint(0, 256, (50, 28, 28), dtype=torch.uint8), config, torch.device("cpu"))
    loss, used = part.loss(model, 8)
    loss.backward()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and float(used) == 1.0
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    model(torch.rand(8, 1, 28, 28))  # a labelled batch still moves them
    assert not all(torch.equal(before[k], model.state_dict()[k]) for k in before)


def test_clean_batchnorm_statistics_change_only_the_final_statistics(emnist_env: Path, tmp_path: Path) -> None:
    settings = {"model": "ssl_cnn", "split": "mnist50", "model_args": {"augment": True}, "epochs": 2, "batch_size": 20,
                "early_stop_patience": 0, "limit_train": 40, "profile": "test"}  # fmt: skip
    running = train(RunConfig(**settings), runs_dir=tmp_path, device="cpu", progress=False)
    clean = train(RunConfig(**settings, bn_statistics="clean"), runs_dir=tmp_path, device="cpu", progress=False)
    folders = [tmp_path / m.run_id for m in (running, clean)]
    histories = [json.loads((f / "history.json").read_text()) for f in folders]
    assert _without_seconds(histories[0]) == _without_seconds(histories[1])  # the same training
    weights = [RunFolder(f).load_best("cpu") for f in folders]
    assert torch.equal(weights[0]["body.0.weight"], weights[1]["body.0.weight"])
    assert not torch.equal(weights[0]["body.1.running_mean"], weights[1]["body.1.running_mean"])
    assert "PreciseBN" in (folders[1] / "log.txt").read_text()
    # The first BatchNorm's mean is the plain average of the first convolution's output over the clean images.
    model = create_model("ssl_cnn", augment=True)
    model.load_state_dict(weights[1])
    x = torch.from_numpy(load_studyb(emnist_env).parts["train"][0]).unsqueeze(1).float() / 255
    x = x[torch.from_numpy(stratified_subset(load_studyb(emnist_env).parts["train"][1], 40, seed=42))]
    with torch.no_grad():
        means = torch.stack([model.body[0](x[i : i + 20]).mean((0, 2, 3)) for i in (0, 20)]).mean(0)
    assert torch.allclose(weights[1]["body.1.running_mean"], means, atol=1e-5)


def _without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_fixmatch_strong_views_are_seeded_and_stay_images() -> None:
    x = torch.zeros(16, 1, 28, 28)
    x[:, :, 6:22, 12:16] = 1.0
    strong = strong_view()
    torch.manual_seed(3)
    a = strong(x).clamp(0, 1)
    torch.manual_seed(3)
    assert torch.equal(a, strong(x).clamp(0, 1)) and a.shape == x.shape and not torch.equal(a[0], a[1])


@pytest.mark.slow
def test_embedding_maps_before_and_after_pretraining(emnist_env: Path, tmp_path: Path) -> None:
    config = ssl.PretrainConfig(**TINY)
    ssl.pretrain(config, tmp_path, emnist_env, "cpu", progress=False)
    x, y = load_studyb(emnist_env).parts["train"]
    thumbs, labels = x[:60], y[:60]
    pretrained = TrainingRecord({"init_from": config.run_id()})
    entry = SimpleNamespace(name="m", labels=list("0123456789"), training=pretrained)
    stages = embed.encoder_stages(tmp_path / config.run_id(), thumbs)
    again = embed.encoder_stages(tmp_path / config.run_id(), thumbs)
    assert np.array_equal(stages["random"], again["random"])  # the pretraining's own first weights, seeded
    assert not np.allclose(stages["random"], stages["pretrained"])
    maps, seconds = embed.pretraining_maps(entry, thumbs, tmp_path, tsne_max_iter=250)
    assert tuple(maps) == STAGE_NAMES and set(seconds) == set(STAGE_NAMES)
    assert all(m.shape == (60, 2) and np.isfinite(m).all() for m in maps.values())
    none = SimpleNamespace(name="n", training=TrainingRecord())
    assert embed.pretraining_maps(none, thumbs, tmp_path, 250) == ({}, {})
    # The file contract holds them beside the model's own maps, in the app's order.
    own = {"umap": maps["umap_pretrained"], "tsne": maps["tsne_pretrained"]}
    embed.save_npz(tmp_path / "m.npz", {"features": stages["pretrained"].astype(np.float16), "labels": labels,
                                        "preds": labels, "thumbs": thumbs, **own, **maps})  # fmt: skip
    assert load_embedding(tmp_path / "m.npz").methods == ["umap", "tsne", *STAGE_NAMES]
    assert (tmp_path / embed.plot_stages(tmp_path, entry, {**own, **maps}, labels)).stat().st_size > 10_000


def test_the_shipped_digit_model_is_the_no_validation_rule_s_pick() -> None:
    """Study B has no validation part: the export ships the first seed of the export row with the best mean on the
    full MNIST test set, and only when the table is named (the default export is unchanged)."""
    spec = load_spec("studyB_ssl")
    [winner] = pick_without_validation(load_results(REPO / "assets/results/paper"))
    rows = {r.key: r for r in load_results(REPO / "assets/results/paper")["studyB_ssl"].done}
    best = max(spec.export_rows, key=lambda k: rows[k].mnist_test_accuracy_mean if k in rows else -1)
    assert (winner.key, winner.run_id) == (best, rows[best].seed_run_ids[0])
    shipped = {e["name"]: e for e in json.loads((REPO / "exported_models/manifest.json").read_text())["models"]}
    assert shipped["ssl_cnn-mnist50"]["training"]["run_id"] == winner.run_id
    named, _ = select_candidates(REPO / "assets/results", "paper", ["studyB_ssl"])
    assert [c.run_id for c in named] == [winner.run_id]
    everything, _ = select_candidates(REPO / "assets/results", "paper")
    assert winner.run_id not in [c.run_id for c in everything]
