"""`make test` runs the browser tests or fails saying why: scripts/ensure_chromium.sh exits 1 when it cannot install
Chromium, the Makefile requires the browser, and with it required a missing browser fails the browser tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "ensure_chromium.sh"


def test_ensure_chromium_fails_with_its_reason_when_it_cannot_install(tmp_path: Path) -> None:
    tools = tmp_path / "bin"  # `id` only: no apt-get to install with, root or not
    tools.mkdir()
    (tools / "id").symlink_to(shutil.which("id"))
    env = {"PATH": str(tools), "EMNIST_CHROMIUM": str(tmp_path / "no-chromium")}
    done = subprocess.run(["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "cannot be installed here" in done.stderr and str(tmp_path / "no-chromium") in done.stderr
    present = subprocess.run(["/bin/bash", str(SCRIPT)], env={**env, "EMNIST_CHROMIUM": "/bin/sh"},
                             capture_output=True, text=True, timeout=60)
    assert present.returncode == 0, present.stderr


def test_make_test_requires_the_browser() -> None:
    recipe = subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True, timeout=60).stdout
    lines = recipe.splitlines()
    assert "bash scripts/ensure_chromium.sh" in lines, recipe
    assert any(line.startswith("EMNIST_REQUIRE_BROWSER=1 ") and line.endswith(" -m pytest") for line in lines), recipe


def _browser_test(env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "-n0", "-q", "-p", "no:cacheprovider", "tests/test_browser.py",
               "-k", "test_draw_a_character_and_see_three_predictions"]  # fmt: skip
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)


def test_a_missing_browser_fails_the_browser_tests_when_required_and_skips_them_otherwise(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EMNIST_REQUIRE_BROWSER"}
    env["EMNIST_CHROMIUM"] = str(tmp_path / "no-chromium")
    required = _browser_test({**env, "EMNIST_REQUIRE_BROWSER": "1"})
    assert required.returncode == 1 and "1 error" in required.stdout, required.stdout[-3000:]
    assert f"{tmp_path / 'no-chromium'} is absent" in required.stdout
    optional = _browser_test(env)
    assert optional.returncode == 0 and "1 skipped" in optional.stdout, optional.stdout[-3000:]


def test_every_browser_test_outside_test_browser_fails_too_when_required(tmp_path: Path) -> None:
    """The answer-set and keeping files' browser tests decide the same way (browser_support.need_browser)."""
    env = {k: v for k, v in os.environ.items() if k != "EMNIST_REQUIRE_BROWSER"}
    env |= {"EMNIST_CHROMIUM": str(tmp_path / "no-chromium"), "EMNIST_REQUIRE_BROWSER": "1"}
    command = [sys.executable, "-m", "pytest", "-n0", "-q", "-p", "no:cacheprovider", "-m", "browser",
               "tests/test_browser_answers.py", "tests/test_keep_public.py"]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 1 and "passed" not in summary and "skipped" not in summary, done.stdout[-3000:]
    assert f"{tmp_path / 'no-chromium'} is absent" in done.stdout
