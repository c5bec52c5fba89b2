"""Sweeps on Ray: the live line, the GPU share, and the smoke profile of Study B through a two-node local Ray
cluster (README's multi-node recipe on 127.0.0.1) with a task killed mid-run, whose results equal runs without Ray."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from board_support import image_tags, scalars

from training import runner, sweep
from training.plan import plan_table
from training.sweep import SweepLine, follow, gpu_share

REPO = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).parent / "ray"  # the venv's own CLI, whatever PATH holds
# One CPU per node: two CPU "nodes" on this machine, each running one run at a time.
NODE = ["--block", "--num-cpus", "1", "--num-gpus", "0", "--object-store-memory", str(100 * 1024**2),
        "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]  # fmt: skip
START_S = 120  # bound on each node's start-up (about 15 s on an idle 2-core machine)


def test_the_sweep_line_counts_runs_and_scales_time_by_cost(emnist_env: Path) -> None:
    configs = [c for p in plan_table("table2", "smoke", emnist_env) for c in p.configs]
    line = SweepLine({c.run_id(): c for c in configs})
    cheap, costly = min(configs, key=runner.run_cost), max(configs, key=runner.run_cost)
    assert line.describe().startswith(f"sweep: 0 done, 0 running, {len(configs)} left, ETA ?")
    line.start(cheap.run_id())
    line.start(costly.run_id())
    assert f"0 done, 2 running, {len(configs) - 2} left" in line.describe()
    line.started -= 10  # ten seconds in, the cheapest run done: the rest costs far more than ten seconds
    line.end(cheap.run_id())
    line.end(cheap.run_id())  # an event seen twice counts once
    assert f"1 done, 1 running, {len(configs) - 2} left" in line.describe()
    eta = line.describe().rsplit("ETA ", 1)[1]
    assert eta != "?" and eta > "00:10"
    line.close()


class _FakeRay:
    """Just what ``sweep.follow`` calls: a stream yields events, or an exception as a task that died for good."""

    class exceptions:  # as ray.exceptions
        class RayError(Exception):
            pass

    @staticmethod
    def wait(pending: list, num_returns: int) -> tuple[list, list]:
        return pending[:num_returns], pending[num_returns:]

    @staticmethod
    def get(value: object) -> object:
        if isinstance(value, Exception):
            raise value
        return value


def test_follow_reports_failed_runs_dead_tasks_and_runs_it_cannot_see(emnist_env: Path, tmp_path: Path) -> None:
    chain_a, chain_b = (runner.chains([c])[0] for p in plan_table("class_weight", "smoke", emnist_env)
                        for c in p.configs)  # fmt: skip
    a, b = chain_a[0].run_id(), chain_b[0].run_id()
    (tmp_path / a).mkdir()
    (tmp_path / a / "metrics.json").write_text("{}")  # a finished where this machine sees it; b never did
    streams = {iter([runner.RunEvent(a), runner.RunEvent(a, ended=True)]): chain_a,
               iter([runner.RunEvent(b), _FakeRay.exceptions.RayError("worker died 4 times")]): chain_b}  # fmt: skip
    failures = follow(_FakeRay, streams, {a: chain_a[0], b: chain_b[0]}, tmp_path)
    assert list(failures) == [b] and "worker died 4 times" in failures[b]
    streams = {iter([runner.RunEvent(b), runner.RunEvent(b, ended=True)]): chain_b,
               iter([runner.RunEvent(a), runner.RunEvent(a, ended=True, error="Traceback: boom")]): chain_a}
    failures = follow(_FakeRay, streams, {a: chain_a[0], b: chain_b[0]}, tmp_path)
    assert failures[a] == "Traceback: boom" and "give every node the same runs folder" in failures[b]


def test_gpu_share_follows_the_device() -> None:
    assert gpu_share("cpu", 12, None) == 0.0
    assert gpu_share("cuda", 12, None) == pytest.approx(1 / 12)
    assert gpu_share("cuda", 4, 0.5) == 0.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(log: Path, text: str, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if text in log.read_text():
            return
        assert proc.poll() is None, f"ray start exited: {log.read_text()[-2000:]}"
        time.sleep(0.2)
    pytest.fail(f"no '{text}' within {seconds} s: {log.read_text()[-2000:]}")


@pytest.fixture
def two_node_cluster(emnist_env: Path, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``ray start --head`` plus one ``ray start --address`` on 127.0.0.1 with token authentication, as README's
    recipe; both in the foreground (--block), so teardown stops exactly these processes (SIGTERM stops a node's own
    raylet, object store and workers). Yields the address and the environment a driver needs."""
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths must stay short
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen] = []
    try:
        for name, args in (("head", ["--head", "--port", str(port), "--include-dashboard", "false",
                                     "--temp-dir", str(temp)]),
                           ("worker", ["--address", f"127.0.0.1:{port}"])):  # fmt: skip
            log = tmp_path / f"ray-{name}.log"
            with log.open("w") as out:
                procs.append(subprocess.Popen([str(RAY), "start", *args, *NODE], env=env, cwd=REPO, stdout=out,
                                              stderr=subprocess.STDOUT, start_new_session=True))  # fmt: skip
            _wait_for(log, "Ray runtime started", procs[-1], START_S)
        yield f"127.0.0.1:{port}", env
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what this fixture started
                proc.wait()
        shutil.rmtree(temp, ignore_errors=True)


def _attempts(run_dir: Path) -> list[str]:
    """The 'ray task on ...' lines of a run's log: one per task attempt that started it."""
    log = run_dir / "log.txt"
    return re.findall(r"ray task on .*", log.read_text()) if log.exists() else []


def _kill_when_started(run_dir: Path, driver: subprocess.Popen, seconds: float) -> None:
    """SIGKILL the Ray worker that starts this run, as soon as its log names it (before it can finish)."""
    deadline = time.time() + seconds
    while time.time() < deadline and driver.poll() is None:
        lines = _attempts(run_dir)
        if lines:
            assert not (run_dir / "metrics.json").exists(), "the run finished before it could be killed"
            os.kill(int(re.search(r"pid (\d+)", lines[0]).group(1)), signal.SIGKILL)
            return
        time.sleep(0.02)
    pytest.fail("the run to kill never started")


def _comparable(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    return {"history": [{k: v for k, v in row.items() if k != "seconds"} for row in history],
            **{k: metrics[k] for k in ("test_loss", "test_accuracy", "mnist_test_accuracy", "confusion_matrix")}}


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_two_node_sweep_survives_a_killed_task_and_equals_runs_without_ray(
    two_node_cluster: tuple[str, dict[str, str]], emnist_env: Path, tmp_path: Path
) -> None:
    address, env = two_node_cluster
    configs = [c for p in plan_table("studyB", "smoke", emnist_env) for c in p.configs]
    chains = runner.chains(list({c.run_id(): c for c in configs}.values()))
    first, killed = next(chain for chain in chains if len(chain) == 2)  # a 1-epoch run, then a warm-started 2-epoch one
    runs, out = tmp_path / "runs", tmp_path / "out"
    command = [sys.executable, "-m", "training", "reproduce", "studyB", "--profile", "smoke", "--address", address,
               "--runs-dir", str(runs), "--out", str(out), "--no-plots", "--in-order"]  # fmt: skip
    with (tmp_path / "driver.log").open("w") as log:
        driver = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _kill_when_started(runs / killed.run_id(), driver, 240)
            assert driver.wait(timeout=300) == 0, (tmp_path / "driver.log").read_text()[-3000:]
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()

    # Ray retried the chain: the finished first run was not trained again, the killed one resumed.
    assert len(_attempts(runs / first.run_id())) == 1
    assert len(_attempts(runs / killed.run_id())) == 2
    assert "resuming" in (runs / killed.run_id() / "log.txt").read_text()
    nodes = {re.search(r"node (\w+)", line).group(1) for c in chains for line in _attempts(runs / c[-1].run_id())}
    assert len(nodes) == 2, "both nodes trained runs"
    rows = json.loads((out / "studyB.json").read_text())["rows"]
    assert all(r["status"] == "done" for r in rows if r["status"] != "reference")

    for c in (c for chain in chains for c in chain):
        curves = scalars(runs / c.run_id())  # TensorBoard: one point per epoch, killed or not
        assert [step for step, _ in curves["loss/train"]] == list(range(1, c.epochs + 1))
        assert "test/misclassified" in image_tags(runs / c.run_id())
        assert not (runs / c.run_id() / "checkpoint.pt").exists()

    # Without Ray, one torch thread as each task has: the killed chain and the cheapest chain the other node trained
    # give identical numbers, epoch for epoch.
    node = lambda c: re.search(r"node (\w+)", _attempts(runs / c.run_id())[-1]).group(1)
    other = min((chain for chain in chains if node(chain[-1]) != node(killed)), key=runner.estimated_cost)
    reference = tmp_path / "reference"
    with runner.torch_threads(1):
        for chain in ([first, killed], other):
            list(sweep.run_chain([c.to_dict() for c in chain], str(reference), "cpu", str(emnist_env), False))
            for c in chain:
                assert _comparable(runs / c.run_id()) == _comparable(reference / c.run_id()), c.run_id()
