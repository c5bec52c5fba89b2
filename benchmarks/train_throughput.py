"""Images per second of every model, training and evaluation, at batch 500 on the current device.

    python benchmarks/train_throughput.py [--device cpu] [--batch 500] [--steps 3] [--models lenet5 residual_cnn]

Writes the record assets/benchmarks/train_throughput-<device type>.json (``--record`` names another).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from records import write_record  # noqa: E402

from training.models import MODELS, count_parameters, create_model, model_info  # noqa: E402
from training.utils import pick_device  # noqa: E402


def images_per_second(step, batch: int, steps: int, device: torch.device) -> float:
    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=sorted(MODELS))
    parser.add_argument("--record", help="the record's name (default train_throughput-<device type>)")
    args = parser.parse_args()
    device = pick_device(args.device)
    threads = torch.get_num_threads()
    print(f"device {device}, batch {args.batch}, torch {torch.__version__}, threads {threads}")
    print(f"{'model':<14}{'params':>12}{'train img/s':>14}{'eval img/s':>14}")
    rows = []
    for name in args.models:
        params, train_rate, eval_rate = measure(name, device, args.batch, args.steps)
        rows.append([name, params, train_rate, eval_rate])
        print(f"{name:<14}{params:>12,}{train_rate:>14.0f}{eval_rate:>14.0f}", flush=True)
    title = f"Images per second of every model, training and evaluation ({device.type})"
    path = write_record("train_throughput", title,
                        {"columns": ["model", "parameters", "train images/s", "eval images/s"], "rows": rows},
                        {"device": str(device), "batch": args.batch, "steps": args.steps, "threads": threads,
                         "torch": torch.__version__},
                        [f"Random images at batch {args.batch}, {args.steps} timed steps after one warm-up step "
                         f"(ResNet-50 on a CPU: 1), {threads} torch thread(s), Nadam; bf16 autocast on a GPU."],
                        name=args.record or f"train_throughput-{device.type}")
    print(f"wrote {path}")


def measure(name: str, device: torch.device, batch: int, steps: int) -> tuple[int, float, float]:
    info = model_info(name)  # the registry's facts: Study B's models have 10 classes and 3 channels
    classes = info.default_classes
    model = create_model(name, classes).to(device)
    x = torch.rand(batch, info.in_channels, info.input_size, info.input_size, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    opt = torch.optim.NAdam(model.parameters(), 1e-3)
    amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def train_step() -> None:
        model.train()
        with torch.autocast(**amp):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    @torch.no_grad()
    def eval_step() -> None:
        model.eval()
        with torch.autocast(**amp):
            model(x)

    steps = 1 if name == "resnet50" and device.type == "cpu" else steps  # ~20 s a step on 2 cores
    return count_parameters(model), images_per_second(train_step, batch, steps, device), \
        images_per_second(eval_step, batch, steps, device)


if __name__ == "__main__":
    main()
