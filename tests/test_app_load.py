"""benchmarks/app_load.py's own parts: the server CPU reading, the caps and the loopback rule (no server here;
its REST calls are exercised against a served app in test_app.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from types import ModuleType

import pytest
from app_support import REPO


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("app_load", REPO / "benchmarks" / "app_load.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["app_load"] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


app_load = load_benchmark()


def test_process_ticks_follow_cpu_time() -> None:
    before = app_load.process_ticks(os.getpid())
    started = time.process_time()
    while time.process_time() - started < 0.2:  # burn 0.2 s of CPU
        pass
    spent = app_load.process_ticks(os.getpid()) - before
    assert 0.1 * app_load.TICK <= spent <= 2.0 * app_load.TICK
    assert app_load.process_ticks(2**22 + 12345) == 0  # a process that does not exist counts nothing


def test_server_cpu_counts_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in app_load.descendants(os.getpid())
        assert os.getpid() in app_load.descendants(os.getpid())
        assert app_load.server_cpu_seconds(os.getpid()) >= app_load.process_ticks(os.getpid()) / app_load.TICK
    finally:
        child.kill()
        child.wait()


def test_caps_and_loopback_only() -> None:
    args = app_load.parse_args(["--users", "5000", "--requests", "100000", "--seconds", "99999", "--think", "-1"])
    assert (args.users, args.requests, args.seconds, args.think) == (
        app_load.MAX_USERS, app_load.MAX_REQUESTS, app_load.MAX_SECONDS, 0.0)
    assert app_load.parse_args(["--users", "0"]).users == 1
    assert app_load.parse_args(["--url", "http://localhost:7860/"]).url
    with pytest.raises(SystemExit):
        app_load.parse_args(["--url", "http://example.org:7860/"])


def test_report_prints_each_target(capsys: pytest.CaptureFixture[str]) -> None:
    tally = app_load.Tally(latencies=[100.0] * 95 + [300.0] * 5)
    args = app_load.parse_args([])
    result = {"tally": tally, "wall": 10.0, "server_cpu": 1.0, "client_cpu": 0.3}
    assert app_load.report(result, 50, 20, args, "http://127.0.0.1:1/") is True
    out = capsys.readouterr().out
    assert "throughput 10.0 requests/s" in out and "p50 100" in out and "max 300" in out
    assert "p95 <= 250 ms -> 0 errors" in out and "<= 12 ms -> 10.0 ms" in out and "MISSES" not in out
    tally.errors.append("boom")
    assert app_load.report(result, 50, 20, args, "http://127.0.0.1:1/") is False
    assert "error: boom" in capsys.readouterr().out


def test_floor_serves_a_bare_gradio_app_and_measures_it(tmp_path) -> None:
    """--floor: the same REST calls against a Gradio app whose /predict does nothing (Gradio's own cost); its record
    goes to a folder of the test's own, not assets/benchmarks/."""
    command = [sys.executable, str(REPO / "benchmarks" / "app_load.py"), "--floor", "--route", "run",
               "--users", "3", "--requests", "3", "--think", "0", "--warmup", "1", "--seconds", "20"]
    env = {**os.environ, "EMNIST_BENCHMARK_RECORDS": str(tmp_path)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=REPO, env=env)
    out = done.stdout
    assert "Gradio's floor" in out and "completed 9, errors 0" in out, done.stdout + done.stderr
    assert "server CPU per /predict <= 12 ms ->" in out and "app's own work" not in out
    record = json.loads((tmp_path / "app_load-run-floor-think0.json").read_text())
    assert {row[0]: row[1] for row in record["figures"]["rows"]}["calls answered"] == 9
    with pytest.raises(SystemExit):
        app_load.parse_args(["--floor", "--route", "raw"])
