"""The command line: one mechanism for the five commands, and every RunConfig field reachable from ``train``."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from training.__main__ import COMMANDS, build_parser, config_from_args, flag, main
from training.config import RunConfig

REPO = Path(__file__).resolve().parents[1]


def _help(capsys: pytest.CaptureFixture, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_help_lists_every_command() -> None:
    done = subprocess.run([sys.executable, "-m", "training", "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert set(COMMANDS) == {"data", "train", "reproduce", "export", "embed", "drawbench", "drawings", "answers"}
    for name in COMMANDS:
        assert name in done.stdout


def test_each_command_shows_its_own_flags(capsys) -> None:
    assert "--plan" in _help(capsys, "reproduce")
    assert "--max-mb" in _help(capsys, "export") and "--run RUN_ID" in _help(capsys, "export")
    assert "--tsne-max-iter" in _help(capsys, "embed")
    assert "--pack" in _help(capsys, "data")


def test_train_has_a_flag_for_every_config_field(capsys) -> None:
    text = _help(capsys, "train")
    for field in dataclasses.fields(RunConfig):
        assert flag(field.name) in text, field.name
    for convenience in ("--config", "--blocks", "--activation", "--device", "--runs-dir", "--data-root"):
        assert convenience in text


def test_unknown_settings_fail_with_exit_code_2(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--setting", "3"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--model-args", "[1, 2]"])
    assert exit_.value.code == 2
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": "lenet5", "setting": "typo"}))
    capsys.readouterr()
    assert main(["train", "--config", str(config)]) == 2
    assert "unknown run settings: ['setting']" in capsys.readouterr().err


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": "residual_cnn", "lr": 0.1, "epochs": 7,
                                  "model_args": {"blocks": 3, "activation_name": "relu"}}))
    args = build_parser().parse_args([
        "train", "--config", str(config), "--lr", "2e-4", "--min-delta", "0.01", "--plateau-patience", "4",
        "--plateau-factor", "0.2", "--min-lr", "1e-7", "--profile", "mine", "--limit-train", "300",
        "--model-args", '{"blocks": 5, "width": 8}', "--activation", "swish",
    ])
    got = config_from_args(args)
    assert got == RunConfig(model="residual_cnn", lr=2e-4, epochs=7, min_delta=0.01, plateau_patience=4,
                            plateau_factor=0.2, min_lr=1e-7, profile="mine", limit_train=300,
                            model_args={"blocks": 5, "activation_name": "swish", "width": 8})
    # Nothing given: the defaults, exactly.
    assert config_from_args(build_parser().parse_args(["train"])) == RunConfig()
