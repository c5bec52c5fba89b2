"""One command line for the torch side: data | train | reproduce | export | embed | drawbench | answers | drawings.

    python -m training data --protocol pool
    python -m training train --model residual_cnn --split byclass --optimizer nadam --lr 2e-4 --activation swish
    python -m training reproduce table3 --profile quick
    python -m training export
    python -m training embed
    python -m training drawbench

Every command is built the same way: ``add_arguments(parser)`` declares its flags and ``run(args)`` does the work
and returns the exit code. ``data``, ``train`` and ``drawings`` (which spans three modules) are defined here; the
others live in their own modules.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

# The embed step's t-SNE wants OpenMP threads that sleep while they wait (see training/embed.py). OpenMP reads this
# once, when torch or scikit-learn load it, so it is set before the imports below, and for that step only.
if __name__ == "__main__" and sys.argv[1:2] == ["embed"]:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from recognizer.drawings import StoreUnavailable, open_store  # noqa: E402
from recognizer.files import write_json  # noqa: E402
from training import answers, drawbench, embed, export, finetune_kept, kept, reproduce  # noqa: E402
from training.config import RunConfig  # noqa: E402
from training.data import (  # noqa: E402
    DataError,
    default_root,
    describe,
    load_pool,  # noqa: E402
    load_split,
    write_pool_pack,
)
from training.models import MODELS  # noqa: E402
from training.paths import models_dir  # noqa: E402
from training.trainer import train  # noqa: E402

SPLITS = ("byclass", "bymerge", "balanced", "mnist50")
PROTOCOLS = ("auto", "official", "pool")
# One line of help per RunConfig field (a field missing here still gets its flag, with its default as help).
FIELD_HELP = {
    "model": " | ".join(MODELS),
    "split": " | ".join(SPLITS),
    "protocol": "auto (official when its files are there, else pool) | official | pool",
    "model_args": 'builder arguments as a JSON object, e.g. \'{"blocks": 4}\' (merged over --config\'s)',
    "optimizer": "sgd sgd_nesterov adagrad rmsprop adam adamax nadam radam",
    "lr": "initial learning rate",
    "loss": "cross_entropy | focal | weighted_cross_entropy",
    "focal_gamma": "focal loss gamma",
    "focal_alpha": "focal loss alpha",
    "batch_size": "images per step",
    "epochs": "most epochs to train",
    "early_stop_patience": "epochs without validation improvement before stopping (0: never stop early)",
    "min_delta": "smallest validation loss decrease that counts as an improvement",
    "plateau_patience": "epochs without improvement before the learning rate is cut",
    "plateau_factor": "factor the learning rate is multiplied by on a plateau",
    "min_lr": "the learning rate is never cut below this",
    "seed": "seed of the weights, the shuffling and the subsets",
    "limit_train": "train on a seeded, class-stratified subset of this many images",
    "limit_val": "validate on a seeded, class-stratified subset of this many images",
    "profile": "a label recorded with the run (quick, paper, ...)",
}
SUMMARY = ("run_id", "split", "protocol", "test_loss", "test_accuracy", "weighted_f1", "train_seconds", "epochs_run")


class Command(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None


# ---------------------------------------------------------------------------------------------
# data


def add_data_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root", type=Path, help="EMNIST files (default: $EMNIST_ROOT, else ../shared/data/emnist, else data/)"
    )
    parser.add_argument("--download", action="store_true", help="fetch the official files from NIST (torchvision)")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", default="auto", choices=PROTOCOLS)
    parser.add_argument("--splits", nargs="*", help="byclass bymerge balanced mnist50 (default: all)")
    parser.add_argument("--pack", type=Path, metavar="DIR",
                        help="write the pool into DIR/pool-pack.npz (plus the MNIST files), a data root for a "
                             "machine without the EMNIST files")
    add_data_source(parser)


def write_pack(root: Path, target: Path) -> None:
    path = write_pool_pack(root, target)
    # Study B reads MNIST's own files: they travel beside the pack, at the same relative paths
    # (with SHA256SUMS, which verifies the slices).
    for source in sorted([*root.rglob("emnist-mnist-*"), *root.glob("SHA256SUMS")]):
        copy = target / source.relative_to(root)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, copy)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) and the MNIST files: use it as --data-root")


def run_data(args: argparse.Namespace) -> int:
    if args.pack:
        write_pack(args.data_root or default_root(), args.pack)
        return 0
    for split in args.splits or SPLITS:
        data = load_split(split, args.protocol, root=args.data_root, download=args.download)
        print(describe(data), end="\n\n")
    return 0


# ---------------------------------------------------------------------------------------------
# train: one flag per RunConfig field, so a field added to the config is reachable at once


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("not a JSON object")
    return value


def flag_type(hint: object) -> type:
    """The scalar type of a field's annotation (``int | None`` -> int)."""
    if isinstance(hint, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if hint not in (int, float, str):
        raise TypeError(f"RunConfig field of type {hint} has no command-line form: add one in training/__main__.py")
    return hint


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """``--<field>`` for every RunConfig field; unset flags stay None, so --config's values and the defaults hold."""
    hints = typing.get_type_hints(RunConfig)
    for field in dataclasses.fields(RunConfig):
        help_text = FIELD_HELP.get(field.name, "")
        if field.name == "model_args":
            parser.add_argument(flag(field.name), dest=field.name, type=json_object, metavar="JSON", help=help_text)
            continue
        choices = PROTOCOLS if field.name == "protocol" else None
        parser.add_argument(flag(field.name), dest=field.name, type=flag_type(hints[field.name]), choices=choices,
                            help=help_text or f"default {field.default}")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="a JSON file of RunConfig settings; flags override it")
    add_config_flags(parser)
    parser.add_argument("--activation", help="residual_cnn activation (relu, swish, gelu, ...): model_args shorthand")
    parser.add_argument("--blocks", type=int, help="residual_cnn blocks: model_args shorthand")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1")
    parser.add_argument("--runs-dir", type=Path, default=None, help="run folders (default: $RUNS_DIR or runs/)")
    add_data_source(parser)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """--config's settings, overridden by every flag given; unknown settings raise ValueError."""
    values = json.loads(args.config.read_text()) if args.config else {}
    model_args = {**values.pop("model_args", {}), **(args.model_args or {})}
    if args.blocks is not None:
        model_args["blocks"] = args.blocks
    if args.activation is not None:
        model_args["activation_name"] = args.activation
    for field in dataclasses.fields(RunConfig):
        if field.name != "model_args" and getattr(args, field.name) is not None:
            values[field.name] = getattr(args, field.name)
    return RunConfig.from_dict({**values, "model_args": model_args})


def run_train(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except (ValueError, TypeError) as err:  # unknown or malformed settings in --config
        print(f"train: {err}", file=sys.stderr)
        return 2
    data = load_split(config.split, config.protocol, root=args.data_root, download=args.download)
    metrics = train(config, runs_dir=args.runs_dir, device=args.device, data=data)
    print(json.dumps({key: getattr(metrics, key) for key in SUMMARY}, indent=1))
    return 0


# ---------------------------------------------------------------------------------------------
# drawings: the kept drawings (training/kept.py), a fine-tune on them (training/finetune_kept.py) and its export
# (training/export.py). Wired here, the one file above all three.


def add_drawings_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="drawings_command", required=True)
    export_cmd = sub.add_parser("export", help="the kept drawings as a dataset (EMNIST IDX, PNGs, CSV), split by id")
    export_cmd.add_argument("--out", type=Path, required=True)
    score = sub.add_parser("score", help="every exported model's top-1 and top-3 on the kept drawings")
    score.add_argument("--models", type=Path, default=None, help="export folder (default: $MODELS_DIR)")
    score.add_argument("--json", type=Path, default=None, help="also write the figures here")
    render_cmd = sub.add_parser("render", help="keep canvas renderings of pool training images (a trial store)")
    render_cmd.add_argument("--count", type=int, default=500)
    render_cmd.add_argument("--seed", type=int, default=2212)
    render_cmd.add_argument("--models", type=Path, default=None, help="record these models' answers")
    render_cmd.add_argument("--data-root", type=Path, default=None)
    finetune_kept.add_arguments(sub.add_parser("finetune", help="fine-tune a slot's model on the kept drawings"))
    for p in (export_cmd, score, render_cmd, sub.choices["finetune"]):
        p.add_argument("--store", type=Path, default=None, help="the SQLite store (default: data/drawings.sqlite3)")
    for p in (score, sub.choices["finetune"]):
        p.add_argument("--all-drawings", action="store_true",
                       help="use suspect drawings too (labels in no model's top 5, not accepted in review)")


def run_drawings(args: argparse.Namespace) -> int:
    try:
        if args.drawings_command == "export":
            print(json.dumps(kept.export_kept(args.store, args.out)))
        elif args.drawings_command == "score":
            drawings = kept.read_kept(args.store, include_all=args.all_drawings)
            results = kept.score_models(drawings, args.models)
            print(f"{kept.left_out_line(drawings)}; test part {len(drawings.part('test'))}")
            print("\n".join(kept.score_table(results, ("all", "test"))))
            if args.json:
                write_json(args.json, {"n": len(drawings), "left_out": drawings.left_out, "models": results})
        elif args.drawings_command == "render":
            pool = load_pool(Path(args.data_root or default_root()))
            sources = kept.pick_training_sources(pool, args.count, args.seed)
            with open_store(args.store) as store:
                ids = kept.render_into(store, pool, sources, args.seed, args.models or models_dir())
                print(f"kept {len(ids)} renderings of {len(sources)} pool training images; store holds {store.count()}")
        else:
            drawings = kept.read_kept(args.store, include_all=args.all_drawings)
            print(kept.left_out_line(drawings))
            return run_finetune(args, drawings)
    except (StoreUnavailable, ValueError) as err:  # ValueError: a model or store the fine-tune cannot use
        print(f"drawings: {err}", file=sys.stderr)
        return 2
    return 0


def run_finetune(args: argparse.Namespace, drawings: kept.KeptSet) -> int:
    config = finetune_kept.FinetuneConfig(args.model, args.epochs, args.lr, args.batch_size, args.kept_repeats,
                                          args.pool_per_epoch, args.seed, args.eval_limit)  # fmt: skip
    run_dir = finetune_kept.finetune(drawings, config, args.models, args.data_root, args.runs_dir,
                                     progress=not args.quiet)  # fmt: skip
    result = json.loads((run_dir / "result.json").read_text())
    print(json.dumps({k: result[k] for k in ("run_id", "kept", "chosen_epoch", "before", "after")}, indent=1))
    if not args.no_export:
        entry = export.export_finetuned(run_dir, args.out or args.models, args.models, args.data_root,
                                        args.bench_per_class, progress=not args.quiet)  # fmt: skip
        print(f"exported {entry.name}: {'DEFAULT' if entry.slot else 'selectable'}; {entry.slot_rule.reason}")
    return 0


# ---------------------------------------------------------------------------------------------
# The command line


COMMANDS = {
    "data": Command("print every split's counts per part and per class", add_data_arguments, run_data),
    "train": Command("train one model", add_train_arguments, run_train),
    "reproduce": Command("rerun the reports' tables", reproduce.add_arguments, reproduce.run, reproduce.__doc__),
    "export": Command("export the winners to ONNX", export.add_arguments, export.run, export.__doc__),
    "embed": Command("compute embedding maps of the exported models", embed.add_arguments, embed.run, embed.__doc__),
    "drawbench": Command("score the exported models on drawings made from held-out test images",
                         drawbench.add_arguments, drawbench.run, drawbench.__doc__),
    "answers": Command("calibrate the answer sets, measure the modes and the prior", answers.add_arguments,
                       answers.run, answers.__doc__),
    "drawings": Command("kept drawings: export | score | finetune | render", add_drawings_arguments, run_drawings,
                        kept.__doc__),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.description or command.help,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_arguments(p)
        p.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except DataError as err:
        print(f"data error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: rerun the same command to resume from the last finished epoch", file=sys.stderr)
        return 130


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

