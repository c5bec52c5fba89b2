"""Running: the unique configs of a plan, chained by warm starts, trained in one process or in worker processes.

Finished runs are skipped and interrupted ones resume (the trainer's run folder), so running a plan again only
does what is missing.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import torch
from tqdm import tqdm

from training import trainer
from training.config import RunConfig
from training.data import SplitData, load_split
from training.runfolder import RunFolder

# Rough training cost per image and epoch relative to the residual CNN (measured on 2 CPU cores);
# only used to start the longest runs first.
RELATIVE_COST = {"resnet50": 4.0, "residual_cnn": 1.0, "cnn_small": 1.2, "plain_cnn": 0.1, "lenet5": 0.05,
                 "mlp_basic": 0.03}  # fmt: skip
# Training images of a run without ``limit_train``, for the same estimate (EMNIST's pool parts are ~100k).
FULL_TRAIN_IMAGES = {"mnist50": 400}
DEFAULT_TRAIN_IMAGES = 100_000


@lru_cache(maxsize=8)
def load_data(split: str, protocol: str, root: str) -> SplitData:
    """One decoded split per process, shared by every run (and every cross-split scoring) that reads it."""
    return load_split(split, protocol, root=Path(root))


def chains(configs: list[RunConfig]) -> list[list[RunConfig]]:
    """Configs that differ only in ``epochs`` form a chain, run shortest first.

    The trainer seeds every epoch from (seed, epoch), so a longer run continuing from a shorter
    one's last checkpoint draws exactly what an unbroken run would; Study B's 1/10/20/50/100-epoch
    runs then cost 100 epochs, not 181.
    """
    groups: dict[str, list[RunConfig]] = defaultdict(list)
    for config in configs:
        groups[config.chain_key()].append(config)
    return [sorted(group, key=lambda c: c.epochs) for group in groups.values()]


def estimated_cost(chain: list[RunConfig]) -> float:
    last = chain[-1]
    images = last.limit_train or FULL_TRAIN_IMAGES.get(last.split, DEFAULT_TRAIN_IMAGES)
    return RELATIVE_COST.get(last.model, 1.0) * images * last.epochs


def warm_start(previous: RunConfig, config: RunConfig, runs_dir: Path) -> None:
    source, target = RunFolder(runs_dir / previous.run_id()), RunFolder(runs_dir / config.run_id())
    if not source.checkpoint_path.exists() or target.done or target.checkpoint_path.exists():
        return
    target.path.mkdir(parents=True, exist_ok=True)
    # best.pt travels with the checkpoint: a run with a validation part that never improves on the
    # shorter run's best epoch must still restore those weights, as an unbroken run would.
    if source.best_path.exists():
        shutil.copy2(source.best_path, target.best_path)
    shutil.copy2(source.checkpoint_path, target.checkpoint_path)
    target.log(f"warm start from {previous.run_id()} after its {previous.epochs} epochs (same settings)", echo=False)


def run_chain(config_dicts: list[dict], runs_dir: str, device: str, root: str, progress: bool,
              keep_checkpoints: bool = False, compile_model: bool = False) -> list[tuple[str, str | None]]:  # fmt: skip
    """Train a chain of configs in order; returns (run_id, error or None) per config.

    A finished run's checkpoint.pt (weights plus optimizer state, 260 MB for Study B's CNN) is only
    needed to resume it or warm-start the next run of its chain, so it is removed once the chain is
    done unless ``keep_checkpoints``; best.pt and metrics.json stay.
    """
    results: list[tuple[str, str | None]] = []
    previous, folders = None, []
    for values in config_dicts:
        config = RunConfig.from_dict(values)
        folders.append(RunFolder(Path(runs_dir) / config.run_id()))
        try:
            if previous is not None:
                warm_start(previous, config, Path(runs_dir))
            data = load_data(config.split, config.protocol, root)
            trainer.train(config, runs_dir=Path(runs_dir), device=device, data=data, progress=progress,
                          compile_model=compile_model)
            results.append((config.run_id(), None))
        except Exception:  # one failed run must not stop the others; the error is reported
            results.append((config.run_id(), traceback.format_exc()))
        previous = config
    if not keep_checkpoints:
        for folder in folders:
            if folder.done:
                folder.checkpoint_path.unlink(missing_ok=True)
    return results


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def threads_per_run(workers: int, threads: int | None = None) -> int:
    return threads or max(1, available_cpus() // max(workers, 1))


def pending_chains(configs: list[RunConfig], runs_dir: Path) -> list[list[RunConfig]]:
    """The chains with a run not finished yet (built over every config: a finished short run still warm-starts
    a new longer one)."""
    unique = list({c.run_id(): c for c in configs}.values())
    return [chain for chain in chains(unique) if not all(RunFolder(runs_dir / c.run_id()).done for c in chain)]


def run_configs(configs: list[RunConfig], runs_dir: Path, workers: int, device: str, root: Path,
                keep_checkpoints: bool = False, threads: int | None = None,
                in_order: bool = False, compile_model: bool = False) -> dict[str, str]:  # fmt: skip
    """Train every config not finished yet; returns {run_id: error} for the ones that failed.

    Runs start longest first (the best packing), or in the order given with ``in_order``.
    """
    jobs = pending_chains(configs, runs_dir)
    if not jobs:
        return {}
    todo = [c for chain in jobs for c in chain]
    for split, protocol in sorted({(c.split, c.protocol) for c in todo}):
        load_split(split, protocol, root=root)  # decode each split once here, so workers find it in the cache
    if not in_order:
        jobs.sort(key=estimated_cost, reverse=True)
    bar = tqdm(total=len(todo), desc=f"{sum(not RunFolder(runs_dir / c.run_id()).done for c in todo)} runs to train",
               unit="run")  # fmt: skip
    failures: dict[str, str] = {}

    def record(results: list[tuple[str, str | None]]) -> None:
        for run_id, error in results:
            bar.update(1)
            if error:
                failures[run_id] = error
                tqdm.write(f"FAILED {run_id}:\n{error}")

    payloads = [([c.to_dict() for c in chain], str(runs_dir), device, str(root)) for chain in jobs]
    run = _run_in_workers if workers > 1 else _run_here
    options = {"keep_checkpoints": keep_checkpoints, "compile_model": compile_model}
    run(payloads, workers, threads_per_run(workers, threads), options, record)
    bar.close()
    return failures


def _run_here(payloads: list[tuple], workers: int, threads: int, options: dict, record: Callable) -> None:
    with torch_threads(threads):
        for payload in payloads:
            record(run_chain(*payload, progress=True, **options))


def _run_in_workers(payloads: list[tuple], workers: int, threads: int, options: dict, record: Callable) -> None:
    context = multiprocessing.get_context("spawn")  # fork after torch's thread pools start can hang
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
        futures = [pool.submit(run_chain, *payload, progress=False, **options) for payload in payloads]
        for future in as_completed(futures):
            record(future.result())


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch threads, then restore the previous number."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
