"""A sweep on Ray: every pending chain of runs is one Ray task, on an embedded local Ray (the default) or on a
cluster that ``--address`` joins (``ray start --head`` on one machine, ``ray start --address=...`` on the others).

Ray core tasks, not Ray Tune: a sweep here is the fixed list of runs the specs plan, and the run folders already
say what is finished and resume what was interrupted; Tune would keep its own trial folders, checkpoints and
experiment state beside them, and its search algorithms have nothing to search (a grid or a search is a spec).
Each chain is a streaming task that yields when each of its runs starts and ends, which drives the sweep's live
line; a task whose worker dies is retried by Ray and resumes from the run folders. Each task asks for CPU (one
slot) and, for GPU runs, a fraction of a GPU, so ``--workers 12 --device cuda`` shares one GPU among 12 runs.

Every node reads the same paths: the data root and the runs folder must exist on each (the same checkout path, a
copied data pack or a shared filesystem for the data, a shared filesystem for the runs folder; README.md).
``ray`` is imported only here, on first use: ~1 s of imports that ``train``, ``export`` and ``embed`` never need.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from training import runner, trainer
from training.config import RunConfig
from training.data import load_split
from training.runfolder import RunFolder
from training.runner import RunEvent, load_data, warm_start

# The embedded Ray's shared-memory object store: tasks only pass configs and events, so the minimum is plenty.
OBJECT_STORE_BYTES = 128 * 1024**2
# A task whose worker process dies (killed, out of memory, a lost node) runs again this often; it resumes from
# the run folders, so a retry costs at most the epoch that was under way.
TASK_RETRIES = 3


def connect(address: str | None, workers: int) -> types.ModuleType:
    """Join the Ray cluster at ``address`` (``auto``: the one ``ray start`` runs on this machine) or start an
    embedded local one with ``workers`` CPU slots (runs at once); returns the ``ray`` module."""
    import ray  # lazy: see the module docstring

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports from a lab's sweeps unless asked for
    # Workers print nothing the driver needs (each run's story is its log.txt; a failure comes back as an event):
    # not forwarding their output keeps the console to the sweep's one line.
    quiet = {"logging_level": logging.WARNING, "configure_logging": True, "log_to_driver": False}
    if address:
        ray.init(address=address, **quiet)
    else:
        # "local": a new Ray of its own, even where RAY_ADDRESS is set or `ray start` runs (ray.init() would join it)
        ray.init(address="local", num_cpus=workers, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False,
                 **quiet)  # fmt: skip
    return ray


def gpu_share(device: str, workers: int, gpus_per_run: float | None) -> float:
    """The GPU fraction each run asks for: as given, else 1/workers when the device is a GPU (``cuda`` or ``auto``
    on a machine with one), else none."""
    if gpus_per_run is not None:
        return gpus_per_run
    wants_gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return 1.0 / max(workers, 1) if wants_gpu else 0.0


def run_chain(config_dicts: list[dict], runs_dir: str, device: str, root: str, progress: bool,
              keep_checkpoints: bool = False, compile_model: bool = False) -> Iterator[RunEvent]:  # fmt: skip
    """Train a chain of configs in order, skipping finished ones; yields when each run starts and ends.

    A finished run's checkpoint.pt (weights plus optimizer state, 260 MB for Study B's CNN) is only
    needed to resume it or warm-start the next run of its chain, so it is removed once the chain is
    done unless ``keep_checkpoints``; best.pt and metrics.json stay.
    """
    previous, folders = None, []
    for values in config_dicts:
        config = RunConfig.from_dict(values)
        folders.append(RunFolder(Path(runs_dir) / config.run_id()))
        if not folders[-1].done:  # a finished run is only the warm start of the next
            yield RunEvent(config.run_id())
            error = None
            try:
                if previous is not None:
                    warm_start(previous, config, Path(runs_dir))
                data = load_data(config.split, config.protocol, root)
                trainer.train(config, runs_dir=Path(runs_dir), device=device, data=data, progress=progress,
                              compile_model=compile_model)
            except Exception:  # one failed run must not stop the others; the error is reported
                error = traceback.format_exc()
            yield RunEvent(config.run_id(), ended=True, error=error)
        previous = config
    if not keep_checkpoints:
        for folder in folders:
            if folder.done:
                folder.checkpoint_path.unlink(missing_ok=True)


def chain_task(config_dicts: list[dict], runs_dir: str, device: str, root: str, threads: int,
               options: dict[str, Any]) -> Iterator[RunEvent]:  # fmt: skip
    """One chain in a Ray worker, with ``threads`` torch threads and no bars of its own: the driver draws the sweep's
    one line from the chain's events, and each run's log.txt keeps its epochs. Each run's log says where it ran (a
    retried task shows two lines)."""
    import ray  # lazy: see the module docstring

    torch.set_num_threads(threads)
    node = ray.get_runtime_context().get_node_id()[:12]
    where = f"ray task on {socket.gethostname()}, node {node}, pid {os.getpid()}"
    for event in run_chain(config_dicts, runs_dir, device, root, progress=False, **options):
        if not event.ended:
            RunFolder(Path(runs_dir) / event.run_id).log(where, echo=False)
        yield event


def run_configs(configs: list[RunConfig], runs_dir: Path, device: str, root: Path, *, workers: int = 1,
                threads: int | None = None, address: str | None = None, gpus_per_run: float | None = None,
                in_order: bool = False, keep_checkpoints: bool = False,
                compile_model: bool = False) -> dict[str, str]:  # fmt: skip
    """Train every config not finished yet, one Ray task per chain; returns {run_id: error} for those that failed.

    Ray starts only when there is something to train. On the embedded Ray each run takes one of ``workers`` slots
    and CPUs/workers torch threads; on a cluster it asks for ``threads`` CPUs (default 1) and uses that many."""
    jobs = runner.pending_chains(configs, runs_dir, in_order)
    if not jobs:
        return {}
    todo = {c.run_id(): c for chain in jobs for c in chain if not RunFolder(runs_dir / c.run_id()).done}
    for split, protocol in sorted({(c.split, c.protocol) for chain in jobs for c in chain}):
        load_split(split, protocol, root=root)  # decode each split once here, so tasks on this machine find it cached
    ray = connect(address, workers)
    try:
        task = ray.remote(chain_task).options(
            num_cpus=(threads or 1) if address else 1, num_gpus=gpu_share(device, workers, gpus_per_run),
            num_returns="streaming", max_retries=TASK_RETRIES, retry_exceptions=False,
        )  # fmt: skip
        threads = threads or (1 if address else runner.threads_per_run(workers))
        options = {"keep_checkpoints": keep_checkpoints, "compile_model": compile_model}
        streams = {task.remote([c.to_dict() for c in chain], str(Path(runs_dir).resolve()), device,
                               str(Path(root).resolve()), threads, options): chain for chain in jobs}  # fmt: skip
        return follow(ray, streams, todo, runs_dir)
    finally:
        ray.shutdown()


def follow(ray: types.ModuleType, streams: dict[Any, list[RunConfig]], todo: dict[str, RunConfig],
           runs_dir: Path) -> dict[str, str]:  # fmt: skip
    """Read every task's events as they come and keep the sweep's line on ``todo`` (the runs not finished before
    the sweep) up to date; returns {run_id: error} for the runs that failed."""
    line, failures = SweepLine(todo), {}
    pending = list(streams)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for stream in ready:
            try:
                event = ray.get(next(stream))
            except StopIteration:
                continue
            except ray.exceptions.RayError as err:  # the task failed past its retries: its unfinished runs fail
                for c in streams[stream]:
                    if c.run_id() in todo and not line.ended(c.run_id()):
                        failures[c.run_id()] = f"its Ray task failed: {err}"
                        line.end(c.run_id())
                continue
            pending.append(stream)
            error = event.error or (missing(runs_dir, event.run_id) if event.ended else None)
            if error:
                failures[event.run_id] = error
                tqdm.write(f"FAILED {event.run_id}:\n{error}")
            if event.ended:
                line.end(event.run_id)
            else:
                line.start(event.run_id)
    line.close()
    return failures


def missing(runs_dir: Path, run_id: str) -> str | None:
    """An error when a run a task finished is not in this machine's runs folder (it ran on a node that has another
    folder at that path: the runs folder must be shared)."""
    if RunFolder(runs_dir / run_id).done:
        return None
    return f"finished on another node but not in {runs_dir} here: give every node the same runs folder (README.md)"


class SweepLine:
    """The sweep's one live line on the driver: runs done / running / left and an ETA (the workers draw no bars).

    The ETA scales the time so far by the estimated cost still to go (``runner.run_cost``), not by a count of runs:
    a ResNet-50 run costs a hundred MLP runs."""

    def __init__(self, todo: dict[str, RunConfig]) -> None:
        self.cost = {run_id: runner.run_cost(c) for run_id, c in todo.items()}
        self.running: set[str] = set()
        self.done: set[str] = set()
        self.started = time.perf_counter()
        self.bar = tqdm(total=len(todo), desc=self.describe(), unit="run", dynamic_ncols=True)

    def ended(self, run_id: str) -> bool:
        return run_id in self.done

    def start(self, run_id: str) -> None:
        self.running.add(run_id)
        self.bar.set_description(self.describe())

    def end(self, run_id: str) -> None:
        if run_id in self.cost and run_id not in self.done:
            self.done.add(run_id)
            self.bar.update(1)
        self.running.discard(run_id)
        self.bar.set_description(self.describe())

    def describe(self) -> str:
        done_cost = sum(self.cost[r] for r in self.done)
        left_cost = sum(self.cost.values()) - done_cost
        eta = tqdm.format_interval((time.perf_counter() - self.started) * left_cost / done_cost) if done_cost else "?"
        left = len(self.cost) - len(self.done) - len(self.running)
        return f"sweep: {len(self.done)} done, {len(self.running)} running, {left} left, ETA {eta}"

    def close(self) -> None:
        self.bar.close()

