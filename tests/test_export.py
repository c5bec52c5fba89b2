"""ONNX export: parity with torch, the manifest and metadata, dynamic batch, size, runtime scoring."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch
from app_support import fixture_data, train_tiny

from recognizer.inference import Recognizer
from recognizer.labels import split_chars
from recognizer.manifest import Manifest, load_manifest
from training import choose, convert
from training import export as E
from training.config import RunConfig
from training.records import Metrics

REPO = Path(__file__).resolve().parents[1]
FAMILIES = ("residual_cnn", "lenet5")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """Two tiny runs on the real-image fixture, exported once for the module."""
    tmp = tmp_path_factory.mktemp("export")
    with fixture_data(tmp):
        run_ids = {family: train_tiny(family) for family in FAMILIES}
        out = tmp / "models"
        argv = ["--out", str(out), "--quiet",
                "--run", run_ids["residual_cnn"], "--name", "residual_cnn-byclass", "--slot", "byclass",
                "--run", run_ids["lenet5"]]
        rc = E.main(argv)
        yield SimpleNamespace(rc=rc, out=out, run_ids=run_ids, tmp=tmp, runs=tmp / "runs")


def _test_images(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    from training.data import load_split

    x, y = load_split("byclass", "pool").parts["test"]
    return x[:n].astype(np.float32) / 255.0, y[:n]


def test_export_writes_both_models(exported) -> None:
    assert exported.rc == 0
    names = {e.name for e in load_manifest(exported.out)}
    assert names == {"residual_cnn-byclass", "lenet5-byclass"}
    assert not list(exported.out.glob(".staging-*")) and not list(exported.out.glob("*.tmp"))


def test_parity_recorded_and_holds(exported) -> None:
    import training.runfolder as T

    raw = json.loads((exported.out / "manifest.json").read_text())["models"]
    x, y = _test_images()
    for entry in raw:
        parity = entry["parity"]
        assert parity["passed"] and parity["weights"] == "float32"
        assert parity["max_abs_logit_diff"] <= 1e-4
        assert parity["torch_accuracy"] == parity["onnx_accuracy"]
        assert parity["n"] == len(y)  # the fixture's test part is smaller than 1,000: all of it
        # Recompute independently: torch on the run's weights against the written file.
        model, _ = T.load_trained(exported.runs / entry["training"]["run_id"])
        torch_logits, torch_features = convert.run_torch(model, x)
        onnx_logits, onnx_features = convert.run_session(convert.ort_session(exported.out / entry["file"]), x)
        assert np.abs(onnx_logits - torch_logits).max() <= 1e-4
        assert np.abs(onnx_features - torch_features).max() <= 1e-4
        assert (onnx_logits.argmax(1) == y).mean() == (torch_logits.argmax(1) == y).mean()


def test_export_keeps_the_torch_weights_and_a_fine_tune_starts_from_them(exported) -> None:
    """Each exported model's trained weights beside its ONNX file (safetensors, sha256 in the manifest); the
    fine-tune's loader takes them (BatchNorm as trained) and gives the ONNX logits; a changed file is refused."""
    import shutil

    import training.runfolder as T
    from training.fromonnx import OnnxLoadError, load_exported, torch_logits

    x, _ = _test_images()
    for entry in load_manifest(exported.out):
        weights = exported.out / entry.export.torch_weights
        assert weights.name == f"{entry.name}.safetensors"
        assert hashlib.sha256(weights.read_bytes()).hexdigest() == entry.export.torch_weights_sha256
        trained, _ = T.load_trained(exported.runs / entry.training.run_id)
        model, _ = load_exported(entry.name, exported.out)
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), trained.state_dict().values(),
                                                      strict=True))  # the run's own tensors, BatchNorm included
        onnx_logits, _ = convert.run_session(convert.ort_session(entry.path), x)
        assert np.abs(torch_logits(model, x) - onnx_logits).max() <= 1e-4
    broken = exported.out.parent / "broken-weights"
    shutil.copytree(exported.out, broken)
    entry = load_manifest(broken)[0]
    (broken / entry.export.torch_weights).write_bytes(b"not the weights")
    with pytest.raises(OnnxLoadError, match="do not match"):
        load_exported(entry.name, broken)


def test_manifest_and_metadata_round_trip(exported) -> None:
    entries = {e.name: e for e in load_manifest(exported.out)}
    raw = {e["name"]: e for e in json.loads((exported.out / "manifest.json").read_text())["models"]}
    for name, entry in entries.items():
        assert entry.labels == list(split_chars("byclass"))
        assert hashlib.sha256(entry.path.read_bytes()).hexdigest() == entry.sha256
        assert entry.family in FAMILIES and entry.split == "byclass" and entry.protocol == "pool"
        assert entry.profile == "test" and entry.training.run_id == exported.run_ids[entry.family]
        assert entry.training.environment["torch"] and entry.training.model == entry.family
        for key in ("test_accuracy", "test_loss", "weighted_f1", "n_test", "train_seconds", "epochs_run",
                    "runtime_test_accuracy"):
            assert key in raw[name]["metrics"] and getattr(entry.metrics, key) is not None, key
        assert entry.input.name == "image" and entry.outputs == {"logits": "logits", "features": "features"}
        assert entry.export.exporter and entry.parity.passed and not entry.extra
        # A lone .onnx file describes itself: its metadata is the manifest entry minus sha256.
        meta = convert.read_metadata(entry.path)
        assert meta == {k: v for k, v in raw[name].items() if k != "sha256"}
        record = exported.out / raw[name]["run_record"]
        assert json.loads((record / "metrics.json").read_text())["run_id"] == entry.training.run_id
        assert (record / "log.txt").exists() and (record / "config.json").exists()
        onnx.checker.check_model(onnx.load(str(entry.path)), full_check=True)
    assert entries["residual_cnn-byclass"].slot == "byclass"
    assert entries["lenet5-byclass"].slot is None
    assert Recognizer(exported.out).default_slots()["byclass"] == "residual_cnn-byclass"


def test_dynamic_batch_and_io_names(exported) -> None:
    x, _ = _test_images(7)
    for path in exported.out.glob("*.onnx"):
        session = convert.ort_session(path)
        assert [i.name for i in session.get_inputs()] == ["image"]
        assert [o.name for o in session.get_outputs()] == ["logits", "features"]
        shape = session.get_inputs()[0].shape
        assert isinstance(shape[0], str) and shape[1:] == [1, 28, 28]
        seven, feats = session.run(None, {"image": x[:, None]})
        one, _ = session.run(None, {"image": x[:1, None]})
        assert seven.shape == (7, 62) and one.shape == (1, 62) and feats.shape[0] == 7
        assert np.abs(one[0] - seven[0]).max() <= 1e-5


def test_size_limit(exported) -> None:
    for entry in load_manifest(exported.out):
        assert entry.path.stat().st_size < 10e6


def test_runtime_accuracy_matches_training(exported) -> None:
    for entry in load_manifest(exported.out):
        again = convert.evaluate_exported(exported.out, entry.name, progress=False)
        assert again["n"] == entry.metrics.n_test
        assert again["accuracy"] == pytest.approx(entry.metrics.runtime_test_accuracy)
        assert again["accuracy"] == pytest.approx(entry.metrics.test_accuracy, abs=1e-6)


def test_the_written_manifest_reads_and_writes_back_byte_identical(exported, tmp_path: Path) -> None:
    written = exported.out / "manifest.json"
    assert Manifest.read(written).write(tmp_path / "manifest.json").read_bytes() == written.read_bytes()


def test_reexport_keeps_other_entries_and_clean_drops_them(exported, tmp_path: Path) -> None:
    out = tmp_path / "models"
    # The legacy (TorchScript) exporter here: faster, and its path is checked too.
    fast = ["--out", str(out), "--quiet", "--eval-limit", "50", "--exporter", "legacy"]
    assert E.main([*fast, "--run", exported.run_ids["lenet5"], "--name", "first"]) == 0
    assert E.main([*fast, "--run", exported.run_ids["lenet5"], "--name", "second"]) == 0
    assert {e.name for e in load_manifest(out)} == {"first", "second"}
    assert json.loads((out / "manifest.json").read_text())["models"][0]["export"]["exporter"] == "legacy"
    assert E.main([*fast, "--clean", "--run", exported.run_ids["lenet5"], "--name", "second"]) == 0
    assert {e.name for e in load_manifest(out)} == {"second"} and not (out / "first.onnx").exists()


def test_oversized_model_is_skipped_or_stored_as_float16(exported, tmp_path: Path) -> None:
    run = exported.run_ids["lenet5"]
    # 0.2 MB: LeNet-5 (~0.33 MB in float32) fits only with float16 weights, checked at the looser tolerance.
    assert E.main(["--out", str(tmp_path / "half"), "--quiet", "--max-mb", "0.2", "--eval-limit", "50",
                   "--exporter", "legacy", "--run", run]) == 0
    raw = json.loads((tmp_path / "half" / "manifest.json").read_text())["models"][0]
    assert raw["export"]["weights"] == "float16" and raw["parity"]["passed"]
    assert (tmp_path / "half" / raw["file"]).stat().st_size < 0.2e6
    # 0.1 MB: too big even then, so it is skipped with a reason and nothing is exported.
    assert E.main(["--out", str(tmp_path / "none"), "--quiet", "--max-mb", "0.1", "--run", run]) == 1
    assert not (tmp_path / "none" / "manifest.json").exists()


def test_results_tables_choose_by_validation(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    done = {"status": "done", "test_accuracy": 0.5, "profile": "quick"}  # as training.reproduce writes rows
    rows8 = [{**done, "key": s, "run_id": f"r8-{s}", "model": "residual_cnn", "split": s, "val_accuracy": 0.9}
             for s in ("byclass", "bymerge", "balanced")]
    rows2 = [
        {**done, "key": "lenet5", "run_id": "lenet-a", "model": "lenet5", "split": "byclass", "val_accuracy": 0.80,
         "test_accuracy": 0.99},
        {**done, "key": "plain_cnn", "run_id": "plain-a", "model": "plain_cnn", "split": "byclass",
         "val_accuracy": 0.8, "val_loss": 0.6, "loss": "cross_entropy"},
    ]
    rows5 = [{**done, "key": "weighted", "run_id": "lenet-b", "model": "lenet5", "split": "byclass",
              "val_accuracy": 0.85, "test_accuracy": 0.10},
             {"key": "unfinished", "run_id": "lenet-c", "model": "lenet5", "split": "byclass", "status": "missing"},
             {**done, "key": "tie", "run_id": "plain-b", "model": "plain_cnn", "split": "byclass",
              "val_accuracy": 0.8, "val_loss": 0.5, "loss": "cross_entropy"},
             {"key": "resnet", "run_id": "resnet-a", "model": "resnet50", "split": "byclass", "status": "missing"}]
    for name, rows in (("table8", rows8), ("table2", rows2), ("section5", rows5)):
        (results / f"{name}.json").write_text(json.dumps({"table": name, "profile": "quick", "rows": rows}))
    picked, messages = choose.select_candidates(results, "quick")
    got = {c.name: (c.run_id, c.slot) for c in picked}
    assert got["residual_cnn-byclass"] == ("r8-byclass", "byclass")
    assert got["residual_cnn-balanced"] == ("r8-balanced", "balanced")
    assert got["lenet5-byclass"] == ("lenet-b", None)  # best validation accuracy wins, never test
    assert got["plain_cnn-byclass"] == ("plain-b", None)  # equal accuracy: the lower validation loss
    assert "resnet50-byclass" not in got
    assert any("no finished results row for resnet50" in m for m in messages)
    # Another profile's tables are not used.
    picked, messages = choose.select_candidates(results, "paper")
    assert not picked and any("profile" in m for m in messages)


def test_missing_results_give_a_clear_message(tmp_path: Path) -> None:
    env = {"RUNS_DIR": str(tmp_path / "runs"), "PATH": "/usr/bin:/bin"}
    missing = subprocess.run(
        [sys.executable, "-m", "training", "export", "--results", str(tmp_path / "nowhere"), "--out",
         str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True, env=env, timeout=120,
    )
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr
    assert "no results folder" in missing.stderr and "nothing to export" in missing.stderr


def test_missing_tables_and_run_folders_are_named(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("RUNS_DIR", str(tmp_path / "runs"))
    results = tmp_path / "results"
    results.mkdir()
    rows = [{"key": "byclass", "run_id": "residual_cnn-byclass-0000000000", "model": "residual_cnn",
             "split": "byclass", "val_accuracy": 0.9, "status": "done", "profile": "quick", "test_accuracy": 0.5}]
    (results / "table8.json").write_text(json.dumps({"table": "table8", "profile": "quick", "rows": rows}))
    assert E.main(["--results", str(results), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "residual_cnn-byclass-0000000000" in err and "does not exist" in err
    assert "table8.json has no finished bymerge row" in err and "no finished results row for lenet5" in err
    assert "nothing was exported" in err


def _hand_written_run(runs: Path, model: str) -> Path:
    """A finished run folder written by hand (training a ResNet-50 is far too slow here); export stops before data."""
    import torch

    from training.models import create_model

    config = RunConfig(model=model, split="byclass", protocol="pool")
    run = runs / config.run_id()
    run.mkdir(parents=True)
    torch.save(create_model(model, 62).state_dict(), run / "best.pt")
    Metrics(run_id=run.name, config=config, split="byclass", protocol="pool", data_source="pool", device="cpu",
            test_loss=0.0, test_accuracy=0.0, weighted_f1=0.0, per_class_accuracy=[], confusion_matrix=[],
            train_seconds=0.0, inference_seconds=0.0, epochs_run=0, best_epoch=0, best_val_loss=None,
            best_val_accuracy=None, n_train=0, n_val=0, n_test=0, chars=list(split_chars("byclass"))).write(run)
    return run


def test_resnet50_is_left_out_by_default_with_a_reason(tmp_path: Path, capsys) -> None:
    run = _hand_written_run(tmp_path / "runs", "resnet50")
    out = tmp_path / "models"
    assert E.main(["--out", str(out), "--runs-dir", str(tmp_path / "runs"), "--run", run.name]) == 1
    err = capsys.readouterr().err
    assert "resnet50-byclass" in err and "float16" in err and "--max-mb" in err


def test_a_bad_metrics_record_is_skipped_with_its_reason(tmp_path: Path, capsys) -> None:
    run = _hand_written_run(tmp_path / "runs", "lenet5")
    recorded = json.loads((run / "metrics.json").read_text())
    del recorded["n_test"], recorded["device"]
    (run / "metrics.json").write_text(json.dumps(recorded))
    out = tmp_path / "models"
    assert E.main(["--out", str(out), "--runs-dir", str(tmp_path / "runs"), "--run", run.name]) == 1
    err = capsys.readouterr().err
    assert f"skipped {run.name}" in err and "is not a finished run's record" in err
    assert "missing ['device', 'n_test']" in err and "Traceback" not in err
    assert not (out / "manifest.json").exists()


def test_shipped_manifest_reads_and_writes_back_unchanged(tmp_path: Path) -> None:
    """The one schema holds every field of the shipped manifest: reading and writing it changes nothing."""
    shipped = REPO / "exported_models" / "manifest.json"
    written = Manifest.read(shipped).write(tmp_path / "manifest.json")
    assert json.loads(written.read_text()) == json.loads(shipped.read_text())
