"""The kept-drawings store's command line, torch-free, for the machine the app runs on.

    python -m recognizer.drawings count [--store PATH]
    python -m recognizer.drawings delete ID [ID ...]        # the command line may delete any drawing by id
    python -m recognizer.drawings export OUT                # the dataset (the app's download is the same files)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .dataset import write_dataset
from .store import DEFAULT_PATH, StoreUnavailable, open_store


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recognizer.drawings", description="the kept-drawings store")
    parser.add_argument("--store", type=Path, default=None, help=f"default {DEFAULT_PATH}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("count", help="kept drawings per character")
    delete = sub.add_parser("delete", help="delete drawings by id")
    delete.add_argument("ids", nargs="+")
    export = sub.add_parser("export", help="every drawing as a dataset (EMNIST IDX, PNGs, CSV)")
    export.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        with open_store(args.store, read_only=args.command != "delete") as store:
            if args.command == "count":
                print(json.dumps({"total": store.count(), "per_class": store.count_per_class()}))
            elif args.command == "delete":
                missing = [i for i in args.ids if not store.delete(i)]
                print(f"deleted {len(args.ids) - len(missing)}; not found: {missing or 'none'}")
                return 1 if missing else 0
            else:
                print(json.dumps(write_dataset(store.all(), args.out)))
    except StoreUnavailable as err:
        print(err, file=sys.stderr)
        return 2
    return 0
