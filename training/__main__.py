"""One command line for the torch side: data | train | reproduce | export | embed.

    python -m training data --protocol pool
    python -m training train --model residual_cnn --split byclass --optimizer nadam --lr 2e-4 --activation swish
    python -m training reproduce table3 --profile quick
    python -m training export
    python -m training embed
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from training.data import DataError


def _add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root", type=Path, help="EMNIST files (default: $EMNIST_ROOT, else ../shared/data/emnist, else data/)"
    )
    parser.add_argument("--download", action="store_true", help="fetch the official files from NIST (torchvision)")


def cmd_data(args: argparse.Namespace) -> None:
    from training.data import default_root, describe, load_split, write_pool_pack

    if args.pack:
        root = args.data_root or default_root()
        path = write_pool_pack(root, args.pack)
        # Study B reads MNIST's own files: they travel beside the pack, at the same relative paths
        # (with SHA256SUMS, which verifies the slices).
        for source in sorted([*root.rglob("emnist-mnist-*"), *root.glob("SHA256SUMS")]):
            target = args.pack / source.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) and the MNIST files: use it as --data-root")
        return
    splits = args.splits or ["byclass", "bymerge", "balanced", "mnist50"]
    for split in splits:
        data = load_split(split, args.protocol, root=args.data_root, download=args.download)
        print(describe(data), end="\n\n")


def cmd_train(args: argparse.Namespace) -> None:
    from training.data import load_split
    from training.trainer import RunConfig, train

    values = json.loads(args.config.read_text()) if args.config else {}
    model_args = dict(values.pop("model_args", {}))
    if args.blocks is not None:
        model_args["blocks"] = args.blocks
    if args.activation is not None:
        model_args["activation_name"] = args.activation
    for key in ("model", "split", "protocol", "optimizer", "lr", "loss", "focal_gamma", "focal_alpha", "batch_size",
                "epochs", "limit_train", "limit_val", "seed", "early_stop_patience"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    config = RunConfig.from_dict({**values, "model_args": model_args})
    data = load_split(config.split, config.protocol, root=args.data_root, download=args.download)
    metrics = train(config, runs_dir=args.runs_dir, device=args.device, data=data)
    keys = ("run_id", "split", "protocol", "test_loss", "test_accuracy", "weighted_f1", "train_seconds", "epochs_run")
    print(json.dumps({k: metrics[k] for k in keys}, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="print every split's counts per part and per class")
    p.add_argument("--protocol", default="auto", choices=["auto", "official", "pool"])
    p.add_argument("--splits", nargs="*", help="byclass bymerge balanced mnist50 (default: all)")
    p.add_argument("--pack", type=Path, metavar="DIR",
                   help="write the pool into DIR/pool-pack.npz (plus the MNIST files), a data root for a "
                        "machine without the EMNIST files")
    _add_data_args(p)
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("train", help="train one model")
    p.add_argument("--config", type=Path, help="a JSON file of RunConfig settings; flags override it")
    p.add_argument("--model", help="lenet5 | resnet50 | plain_cnn | residual_cnn | mlp_basic | cnn_small")
    p.add_argument("--split", help="byclass | bymerge | balanced | mnist50")
    p.add_argument("--protocol", choices=["auto", "official", "pool"])
    p.add_argument("--optimizer", help="sgd sgd_nesterov adagrad rmsprop adam adamax nadam radam")
    p.add_argument("--lr", type=float)
    p.add_argument("--activation", help="residual_cnn activation (relu, swish, gelu, ...)")
    p.add_argument("--blocks", type=int, help="residual_cnn blocks")
    p.add_argument("--loss", help="cross_entropy | focal | weighted_cross_entropy")
    p.add_argument("--focal-gamma", dest="focal_gamma", type=float)
    p.add_argument("--focal-alpha", dest="focal_alpha", type=float)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--early-stop-patience", dest="early_stop_patience", type=int)
    p.add_argument("--limit-train", dest="limit_train", type=int)
    p.add_argument("--limit-val", dest="limit_val", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1")
    p.add_argument("--runs-dir", type=Path, default=None)
    _add_data_args(p)
    p.set_defaults(func=cmd_train)

    for name, module, help_text in (
        ("reproduce", "training.reproduce", "rerun the reports' tables"),
        ("export", "training.export", "export the winners to ONNX"),
        ("embed", "training.embed", "compute embedding maps of the exported models"),
    ):
        p = sub.add_parser(name, help=help_text, add_help=False)
        p.set_defaults(func=None, module=module)

    args, rest = parser.parse_known_args(argv)
    try:
        if args.func is None:
            import importlib

            return importlib.import_module(args.module).main(rest) or 0
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        args.func(args)
    except DataError as err:
        print(f"data error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: rerun the same command to resume from the last finished epoch", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
