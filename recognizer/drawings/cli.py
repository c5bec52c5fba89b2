"""The kept-drawings store's command line, torch-free, for the machine the app runs on.

    python -m recognizer.drawings count [--store PATH]
    python -m recognizer.drawings delete ID [ID ...]        # the command line may delete any drawing by id
    python -m recognizer.drawings export OUT                # the dataset (the app's download is the same files)
    python -m recognizer.drawings review [--accept ID ...] [--delete ID ...]
                                   # suspects: labels in no model's top 5; a fine-tune leaves them out until accepted
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .dataset import write_dataset
from .record import ACCEPTED, Drawing
from .store import DEFAULT_PATH, SQLiteStore, StoreUnavailable, open_store


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recognizer.drawings", description="the kept-drawings store")
    parser.add_argument("--store", type=Path, default=None, help=f"default {DEFAULT_PATH}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("count", help="kept drawings per character")
    delete = sub.add_parser("delete", help="delete drawings by id")
    delete.add_argument("ids", nargs="+")
    export = sub.add_parser("export", help="every drawing as a dataset (EMNIST IDX, PNGs, CSV)")
    export.add_argument("out", type=Path)
    review = sub.add_parser("review", help="list the suspect drawings (labels in no model's top 5); accept or delete")
    review.add_argument("--accept", nargs="+", default=[], metavar="ID", help="the label is right: use it")
    review.add_argument("--delete", nargs="+", default=[], metavar="ID", help="the label is wrong: delete it")
    review.add_argument("--all", action="store_true", help="list accepted suspects too")
    args = parser.parse_args(argv)
    writes = args.command == "delete" or (args.command == "review" and bool(args.accept or args.delete))
    try:
        with open_store(args.store, read_only=not writes) as store:
            if args.command == "count":
                print(json.dumps({"total": store.count(), "per_class": store.count_per_class(),
                                  "suspect_unreviewed": len(store.suspects())}))  # fmt: skip
            elif args.command == "review":
                return run_review(store, args.accept, args.delete, args.all)
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


def suspect_line(d: Drawing) -> str:
    """One suspect: id, time, the label, and each model's top 3 (what it read instead)."""
    read = "; ".join(f"{a['model']}: {' '.join(str(t[0]) for t in a['top'][:3])}" for a in d.answers)
    state = " (accepted)" if d.review == ACCEPTED else ""
    return f"{d.id}  {d.created_utc}  kept as {d.character!r}{state}; models read: {read}"


def run_review(store: SQLiteStore, accept: list[str], delete: list[str], everything: bool) -> int:
    """List the suspects, or accept and delete the ids given; 1 when an id was not found."""
    if not accept and not delete:
        suspects = store.suspects(reviewed=everything)
        print(f"{len(suspects)} suspect drawing(s): their label is in no answering model's top 5. A fine-tune and "
              "the live benchmark leave them out until accepted (--accept ID) or deleted (--delete ID).")  # fmt: skip
        print("\n".join(suspect_line(d) for d in suspects))
        return 0
    missing = [i for i in accept if not store.accept(i)] + [i for i in delete if not store.delete(i)]
    accepted, deleted = len(set(accept) - set(missing)), len(set(delete) - set(missing))
    print(f"accepted {accepted}, deleted {deleted}; not found: {missing or 'none'}")
    return 1 if missing else 0
