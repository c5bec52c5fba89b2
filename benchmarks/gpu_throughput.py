"""Training images per second on a GPU with several runs at once, through the trainer's own epoch loop.

    python benchmarks/gpu_throughput.py --workers 1 12 16 --variants eager compile [--seconds 40]

Each worker is a process training Table 8's residual CNN (3 blocks, swish, Nadam, batch 500) on random images
with ``training.trainer.train_one_epoch``, as ``reproduce --workers N`` runs do. A variant is the trainer's
execution option (``eager`` or ``compile``: ``torch.compile`` of the training step). Printed per variant and
worker count: images/s of all workers together after warm-up (compilation excluded), and GPU utilisation
sampled by nvidia-smi while they ran; writes the record assets/benchmarks/gpu_throughput.json (``--record``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from records import write_record  # noqa: E402

from training.config import RunConfig  # noqa: E402
from training.data import SplitData  # noqa: E402
from training.trainer import Batches, create_learner, train_one_epoch  # noqa: E402

CONFIG = RunConfig(model="residual_cnn", optimizer="nadam", lr=2e-4,
                   model_args={"blocks": 3, "activation_name": "swish"})  # fmt: skip
IMAGES = 20_000  # one "epoch" of the benchmark: 40 steps of 500


def synthetic_split(seed: int) -> SplitData:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (IMAGES, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 62, IMAGES).astype(np.int64)
    return SplitData("byclass", "pool", tuple(str(i) for i in range(62)), {"train": (x, y)})


def worker(variant: str, seconds: float, start_at: float, results: multiprocessing.Queue) -> None:
    torch.set_num_threads(1)
    device = torch.device("cuda")
    data = synthetic_split(int(time.time() * 1000) % 2**31)
    learner = create_learner(CONFIG, data, device, compile_model=variant == "compile")
    train_set = Batches(*data.parts["train"], device, 1)
    train_one_epoch(learner, train_set, CONFIG, epoch=1, progress=False)  # warm-up (and compilation)
    while time.time() < start_at:  # every worker starts timing together
        time.sleep(0.01)
    images, started, epoch = 0, time.perf_counter(), 2
    while time.perf_counter() - started < seconds:
        train_one_epoch(learner, train_set, CONFIG, epoch=epoch, progress=False)
        images, epoch = images + IMAGES, epoch + 1
    results.put(images / (time.perf_counter() - started))


def gpu_utilisation(stop_after: float) -> subprocess.Popen:
    return subprocess.Popen(["timeout", str(stop_after), "nvidia-smi", "--query-gpu=utilization.gpu",
                             "--format=csv,noheader,nounits", "-lms", "500"],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip


def measure(variant: str, workers: int, seconds: float, warmup: float) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.time() + warmup
    procs = [context.Process(target=worker, args=(variant, seconds, start_at, results)) for _ in range(workers)]
    for p in procs:
        p.start()
    time.sleep(max(0.0, start_at - time.time()))
    sampler = gpu_utilisation(seconds)
    rates = [results.get() for _ in procs]
    for p in procs:
        p.join()
    samples = [float(v) for v in sampler.communicate()[0].split() if v.strip()]
    return sum(rates), (float(np.mean(samples)) if samples else float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 12, 16])
    parser.add_argument("--variants", nargs="+", default=["eager", "compile"], choices=["eager", "compile"])
    parser.add_argument("--seconds", type=float, default=40.0, help="timed seconds per measurement")
    parser.add_argument("--warmup", type=float, default=90.0, help="seconds allowed for start-up and compilation")
    parser.add_argument("--record", default="gpu_throughput", help="the record's name under assets/benchmarks/")
    args = parser.parse_args()
    device = torch.cuda.get_device_name(0)
    print(f"{device}, torch {torch.__version__}; residual CNN, batch 500, bf16")
    print(f"{'variant':<9}{'workers':>8}{'images/s':>12}{'GPU util %':>12}", flush=True)
    rows = []
    for variant in args.variants:
        for workers in args.workers:
            rate, util = measure(variant, workers, args.seconds, args.warmup)
            rows.append([variant, workers, rate, util])
            print(f"{variant:<9}{workers:>8}{rate:>12,.0f}{util:>12.0f}", flush=True)
    path = write_record("gpu_throughput", f"Training images per second on a GPU, several runs at once ({device})",
                        {"columns": ["variant", "workers", "images/s (all workers)", "GPU utilisation %"],
                         "rows": rows},
                        {"workers": args.workers, "variants": args.variants, "seconds": args.seconds,
                         "warmup": args.warmup, "torch": torch.__version__, "config": CONFIG.to_dict()},
                        ["Table 8's residual CNN (3 blocks, swish, Nadam, batch 500, bf16) on random images through "
                         "training.trainer.train_one_epoch, one process per worker, timed together after warm-up."],
                        name=args.record)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
