"""The drawing recipe's knobs (RunConfig's aug_*, schedule, label_smoothing, ema_decay, pool_images): knobs off keep
every run as it was, pair labels (training/data.py) and their loss (training/losses.py), every pool image from the
training part only, seeded batch augmentation (training/augmentation.py), and a run with every knob on (the cosine
schedule and the weight average of training/optim.py), end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from recognizer.labels import BYCLASS_CHARS, MERGED_CHARS
from training.augmentation import create_augmentation
from training.config import RunConfig
from training.data import PAIR_BASE, labels_from_merged, load_pool, load_split, pair_classes
from training.experiments import TABLES, load_spec
from training.losses import PartialLabelLoss, create_loss
from training.optim import EMAModel
from training.runfolder import load_trained
from training.trainer import prepare_data, train

EVERY_KNOB = dict(aug_rotate=12.0, aug_shear=12.0, aug_scale=0.12, aug_translate=0.08, aug_elastic=1.5,
                  aug_stroke=0.5, aug_contrast=0.3, aug_blur=1.0, schedule="cosine", warmup_epochs=1,
                  label_smoothing=0.1, ema_decay=0.99, pool_images="all")  # fmt: skip


def test_knobs_off_keep_run_ids_and_each_knob_changes_them() -> None:
    base = RunConfig(split="byclass", protocol="pool")
    assert "aug_rotate" not in json.dumps(base._hashed())  # recorded ids of the reproduction stay as they were
    ids = {RunConfig(split="byclass", protocol="pool", **{k: v}).run_id() for k, v in EVERY_KNOB.items()}
    assert base.run_id() not in ids and len(ids) == len(EVERY_KNOB)


def test_pair_labels_and_their_loss() -> None:
    merged = np.array([MERGED_CHARS.index(c) for c in ("7", "a", "A", "C", "Z")])
    labels = labels_from_merged(merged)
    assert [BYCLASS_CHARS[i] for i in labels[:3]] == ["7", "a", "A"]  # classes EMNIST never merges are exact
    assert labels[3] >= PAIR_BASE and labels[4] >= PAIR_BASE and labels[3] != labels[4]
    assert len(pair_classes()) == 15
    logits = torch.randn(5, 62)
    loss = create_loss(RunConfig(pool_images="all"), np.zeros(1, np.int64), 62)
    assert isinstance(loss, PartialLabelLoss)
    p = logits.softmax(1)
    c, lower_c = BYCLASS_CHARS.index("C"), BYCLASS_CHARS.index("c")
    expected = -torch.log(p[3, c] + p[3, lower_c])
    assert torch.allclose(loss(logits[3:4], torch.tensor(labels[3:4])), expected, atol=1e-5)
    exact = torch.nn.functional.cross_entropy(logits[:3], torch.tensor(labels[:3]))
    assert torch.allclose(loss(logits[:3], torch.tensor(labels[:3])), exact, atol=1e-5)


def test_every_pool_image_comes_from_the_training_part(emnist_env: Path) -> None:
    data = load_split("byclass", "pool", root=emnist_env)
    more = prepare_data(RunConfig(split="byclass", protocol="pool", pool_images="all"), data)
    pool = load_pool(emnist_env)
    added = len(more.parts["train"][1]) - len(data.parts["train"][1])
    assert added == int(((pool.part <= 7) & (pool.byclass < 0)).sum()) > 0
    for part in ("val", "test"):
        assert np.array_equal(more.parts[part][1], data.parts[part][1])
    held_out = {pool.images[i].tobytes() for i in np.flatnonzero(pool.part >= 8)}
    assert not any(img.tobytes() in held_out for img in more.parts["train"][0]), "a val/test image is trained on"
    with pytest.raises(Exception, match="byclass"):
        prepare_data(RunConfig(split="bymerge", protocol="pool", pool_images="all"),
                     load_split("bymerge", "pool", root=emnist_env))  # fmt: skip


def test_augmentation_is_per_image_seeded_and_in_range() -> None:
    augment = create_augmentation(RunConfig(**{k: v for k, v in EVERY_KNOB.items() if k.startswith("aug_")}))
    assert create_augmentation(RunConfig()) is None
    x = torch.zeros(16, 1, 28, 28)
    x[:, :, 8:20, 12:16] = 1.0  # the same bar in every image
    torch.manual_seed(0)
    a = augment(x)
    torch.manual_seed(0)
    b = augment(x)
    assert torch.equal(a, b) and a.shape == x.shape
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0 + 1e-6
    assert not torch.allclose(a[0], a[1]), "every image of the batch got the same transform"


def test_a_run_with_every_knob(emnist_env: Path, tmp_path: Path) -> None:
    config = RunConfig(model="lenet5", split="byclass", protocol="pool", epochs=2, batch_size=64, lr=1e-3,
                       early_stop_patience=0, profile="test",
                       **EVERY_KNOB)  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared 2-core CPU two threads per run are several times slower
    try:
        metrics = train(config, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    data = load_split("byclass", "pool", root=emnist_env)
    assert metrics.n_train > len(data.parts["train"][1])  # the pair-labelled images were trained on
    assert metrics.n_test == len(data.parts["test"][1])
    history = json.loads((tmp_path / "runs" / config.run_id() / "history.json").read_text())
    assert history[0]["lr"] == pytest.approx(1e-3) and history[-1]["lr"] == pytest.approx(config.min_lr)
    model, _ = load_trained(tmp_path / "runs" / config.run_id())
    assert not isinstance(model, EMAModel) and not model.training  # the weight average, as a plain network
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 62)


def test_lab_spec_is_loadable_but_not_part_of_all() -> None:
    spec = load_spec("lab")
    assert "lab" not in TABLES and {r.key for r in spec.rows} >= {"none", "all_aug", "all_pool", "recipe"}
    table8 = load_spec("table8")
    assert spec.settings(spec.rows[0]) | {"split": "byclass"} == table8.settings(table8.rows[0])
