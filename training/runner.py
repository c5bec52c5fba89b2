"""Planning the runs of a sweep without running them: the unique configs of a plan chained by warm starts, what
each costs, which chains are pending, how many torch threads each gets. Running a chain (``sweep.run_chain``, one
Ray task each) is training/sweep.py's; this file never imports the trainer.

Finished runs are skipped and interrupted ones resume (the trainer's run folder), so running a plan again only
does what is missing.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from training.config import RunConfig
from training.data import SplitData, load_split
from training.runfolder import RunFolder

# Rough training cost per image and epoch relative to the residual CNN (measured on 2 CPU cores);
# only used to start the longest runs first and for the sweep's ETA.
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


def run_cost(config: RunConfig) -> float:
    images = config.limit_train or FULL_TRAIN_IMAGES.get(config.split, DEFAULT_TRAIN_IMAGES)
    return RELATIVE_COST.get(config.model, 1.0) * images * config.epochs


def estimated_cost(chain: list[RunConfig]) -> float:
    return run_cost(chain[-1])  # a chain costs its longest run's epochs


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


@dataclass(frozen=True)
class RunEvent:
    """What a chain reports as it goes: a run started, or ended (with its error when it failed)."""

    run_id: str
    ended: bool = False
    error: str | None = None


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def threads_per_run(workers: int, threads: int | None = None) -> int:
    return threads or max(1, available_cpus() // max(workers, 1))


def pending_chains(configs: list[RunConfig], runs_dir: Path, in_order: bool = False) -> list[list[RunConfig]]:
    """The chains with a run not finished yet (built over every config: a finished short run still warm-starts
    a new longer one), longest first (the best packing) or, with ``in_order``, in the order given."""
    unique = list({c.run_id(): c for c in configs}.values())
    pending = [chain for chain in chains(unique) if not all(RunFolder(runs_dir / c.run_id()).done for c in chain)]
    return pending if in_order else sorted(pending, key=estimated_cost, reverse=True)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch threads, then restore the previous number."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
