"""Rerun the reports' tables: ``python -m training reproduce <table|all> --profile quick [--workers N]``.

Each table is a spec in training/experiments/ (plain data); every row becomes one RunConfig per seed,
trained by the one trainer. Identical configs across tables are one run (RunConfig.run_id), finished
runs are skipped and interrupted ones resume, so rerunning the command only does what is missing.
Results go to assets/results/<table>.json and .csv, figures to assets/results/figures/, and
assets/results/README.md sets every table beside the report's numbers (training/report.py).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import multiprocessing
import os
import shutil
import statistics
import sys
import time
import traceback
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from tqdm import tqdm

from training.data import REPO_ROOT, SplitData, default_root, has_official, load_split
from training.experiments import TABLES, load_spec
from training.experiments.profiles import PROFILES
from training.models import model_info

RESULTS_DIR = REPO_ROOT / "assets" / "results"

# Rough training cost per image and epoch relative to the residual CNN (measured on 2 CPU cores);
# only used to start the longest runs first.
RELATIVE_COST = {"resnet50": 4.0, "residual_cnn": 1.0, "cnn_small": 1.2, "plain_cnn": 0.1, "lenet5": 0.05,
                 "mlp_basic": 0.03}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Planning: spec rows -> RunConfigs


@dataclass
class PlannedRow:
    table: str
    row: dict
    configs: list = field(default_factory=list)  # RunConfig per seed; empty for a reference row


def model_defaults(model: str) -> dict:
    return model_info(model).defaults


def canonical_model_args(model: str, args: dict) -> dict:
    """Drop arguments equal to the model's defaults, so one model has one spelling (and one run id)."""
    defaults = model_defaults(model)
    unknown = set(args) - set(defaults)
    if unknown:
        raise ValueError(f"{model} has no arguments {sorted(unknown)}")
    return {k: v for k, v in sorted(args.items()) if defaults[k] != v}


def row_settings(spec, row: dict) -> dict:
    base = dict(getattr(spec, "BASE", {}))
    settings = {**base, **row.get("settings", {})}
    settings["model_args"] = {**base.get("model_args", {}), **row.get("settings", {}).get("model_args", {})}
    return settings


def apply_profile(settings: dict, profile: str) -> dict:
    """A row's settings under a profile's budget (see training/experiments/profiles.py)."""
    from training.trainer import RunConfig

    spec = PROFILES[profile]
    if settings.get("split") == "mnist50":
        budget = dict(spec.get("studyB", {}))
    else:
        budget = {**spec.get("emnist", {}), **spec.get("per_model", {}).get(settings.get("model", ""), {})}
    out = dict(settings, profile=profile)
    for key in ("limit_train", "limit_val"):
        if budget.get(key) is not None:
            out[key] = budget[key] if out.get(key) is None else min(out[key], budget[key])
    if budget.get("max_epochs"):
        out["epochs"] = min(out.get("epochs", RunConfig.epochs), budget["max_epochs"])
    if budget.get("batch_size"):
        out["batch_size"] = budget["batch_size"]
    return out


def resolve_protocol(split: str, protocol: str, root: Path) -> str:
    """Fix ``auto`` before hashing, so a run id always names the data it was trained on."""
    if split == "mnist50" or protocol != "auto":
        return protocol
    return "official" if has_official(root, split) else "pool"


def plan_table(name: str, profile: str, root: Path) -> list[PlannedRow]:
    from training.trainer import RunConfig

    spec = load_spec(name)
    seeds = list(getattr(spec, "SEEDS", [None]))
    n_seeds = PROFILES[profile].get("studyB", {}).get("seeds") if hasattr(spec, "SEEDS") else None
    seeds = seeds[: n_seeds or len(seeds)]
    planned = []
    for row in spec.ROWS:
        if row.get("train", True) is False:
            planned.append(PlannedRow(name, row))
            continue
        settings = apply_profile(row_settings(spec, row), profile)
        settings["model_args"] = canonical_model_args(settings.get("model", RunConfig.model), settings["model_args"])
        settings["protocol"] = resolve_protocol(settings["split"], settings.get("protocol", "auto"), root)
        configs = [RunConfig.from_dict(settings if s is None else {**settings, "seed": s}) for s in seeds]
        planned.append(PlannedRow(name, row, configs))
    return planned


# ---------------------------------------------------------------------------------------------
# Running: unique configs, chains of warm starts, worker processes


@lru_cache(maxsize=8)
def _load(split: str, protocol: str, root: str) -> SplitData:
    return load_split(split, protocol, root=Path(root))


def chains(configs: list) -> list[list]:
    """Configs that differ only in ``epochs`` form a chain, run shortest first.

    The trainer seeds every epoch from (seed, epoch), so a longer run continuing from a shorter
    one's last checkpoint draws exactly what an unbroken run would; Study B's 1/10/20/50/100-epoch
    runs then cost 100 epochs, not 181.
    """
    groups: dict[str, list] = defaultdict(list)
    for config in configs:
        groups[dataclasses.replace(config, epochs=0).run_id()].append(config)
    return [sorted(group, key=lambda c: c.epochs) for group in groups.values()]


def estimated_cost(chain: list) -> float:
    last = chain[-1]
    images = last.limit_train or (400 if last.split == "mnist50" else 100_000)
    return RELATIVE_COST.get(last.model, 1.0) * images * last.epochs


def _warm_start(previous, config, runs_dir: Path) -> None:
    source = runs_dir / previous.run_id() / "checkpoint.pt"
    target = runs_dir / config.run_id()
    if not source.exists() or (target / "metrics.json").exists() or (target / "checkpoint.pt").exists():
        return
    target.mkdir(parents=True, exist_ok=True)
    # best.pt travels with the checkpoint: a run with a validation part that never improves on the
    # shorter run's best epoch must still restore those weights, as an unbroken run would.
    if (source.parent / "best.pt").exists():
        shutil.copy2(source.parent / "best.pt", target / "best.pt")
    shutil.copy2(source, target / "checkpoint.pt")
    with (target / "log.txt").open("a") as log:
        log.write(f"warm start from {previous.run_id()} after its {previous.epochs} epochs (same settings)\n")


def run_chain(config_dicts: list[dict], runs_dir: str, device: str, root: str, progress: bool,
              keep_checkpoints: bool = False) -> list[tuple]:  # fmt: skip
    """Train a chain of configs in order; returns (run_id, error or None) per config.

    A finished run's checkpoint.pt (weights plus optimizer state, 260 MB for Study B's CNN) is only
    needed to resume it or warm-start the next run of its chain, so it is removed once the chain is
    done unless ``keep_checkpoints``; best.pt and metrics.json stay.
    """
    from training.trainer import RunConfig, train

    results, previous, folders = [], None, []
    for values in config_dicts:
        config = RunConfig.from_dict(values)
        folders.append(Path(runs_dir) / config.run_id())
        try:
            if previous is not None:
                _warm_start(previous, config, Path(runs_dir))
            data = _load(config.split, config.protocol, root)
            train(config, runs_dir=Path(runs_dir), device=device, data=data, progress=progress)
            results.append((config.run_id(), None))
        except Exception:  # one failed run must not stop the others; the error is reported
            results.append((config.run_id(), traceback.format_exc()))
        previous = config
    if not keep_checkpoints:
        for folder in folders:
            if (folder / "metrics.json").exists():
                (folder / "checkpoint.pt").unlink(missing_ok=True)
    return results


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_configs(configs: list, runs_dir: Path, workers: int, device: str, root: Path,
                keep_checkpoints: bool = False, threads: int | None = None,
                in_order: bool = False) -> dict[str, str]:  # fmt: skip
    """Train every config not finished yet; returns {run_id: error} for the ones that failed.

    Runs start longest first (the best packing), or in the order given with ``in_order``.
    """
    finished = lambda c: (runs_dir / c.run_id() / "metrics.json").exists()
    # Chains are built over every config (a finished short run still warm-starts a new longer one).
    jobs = [chain for chain in chains(list({c.run_id(): c for c in configs}.values()))
            if not all(finished(c) for c in chain)]  # fmt: skip
    if not jobs:
        return {}
    todo = [c for chain in jobs for c in chain]
    # Decode each split once here, so worker processes find it in the cache.
    for split, protocol in sorted({(c.split, c.protocol) for c in todo}):
        load_split(split, protocol, root=root)
    if not in_order:
        jobs.sort(key=estimated_cost, reverse=True)
    failures: dict[str, str] = {}
    bar = tqdm(total=len(todo), desc=f"{sum(not finished(c) for c in todo)} runs to train", unit="run")

    def record(results: list[tuple]) -> None:
        for run_id, error in results:
            bar.update(1)
            if error:
                failures[run_id] = error
                tqdm.write(f"FAILED {run_id}:\n{error}")

    payload = lambda chain: ([dataclasses.asdict(c) for c in chain], str(runs_dir), device, str(root))
    threads = threads or max(1, available_cpus() // max(workers, 1))
    if workers <= 1:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for chain in jobs:
                record(run_chain(*payload(chain), progress=True, keep_checkpoints=keep_checkpoints))
        finally:
            torch.set_num_threads(before)
    else:
        context = multiprocessing.get_context("spawn")  # fork after torch's thread pools start can hang
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
            futures = [pool.submit(run_chain, *payload(chain), progress=False, keep_checkpoints=keep_checkpoints)
                       for chain in jobs]
            for future in as_completed(futures):
                record(future.result())
    bar.close()
    return failures


# ---------------------------------------------------------------------------------------------
# Collecting: metrics -> result rows -> <table>.json / .csv


def _metrics(runs_dir: Path, config) -> dict | None:
    path = runs_dir / config.run_id() / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else None


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def result_row(planned: PlannedRow, runs_dir: Path) -> dict:
    row = planned.row
    out = {"key": row["key"], "label": row["label"], "report": row.get("report", {})}
    if row.get("note"):
        out["note"] = row["note"]
    if not planned.configs:
        return {**out, "status": "reference"}
    config = planned.configs[0]
    settings = dataclasses.asdict(config)
    settings["model_args"] = {**model_defaults(config.model), **config.model_args}
    settings["model_args"].pop("num_classes", None)
    settings["model_args"].pop("in_channels", None)
    for arg, name in (("activation_name", "activation"), ("blocks", "blocks")):
        if arg in settings["model_args"]:
            settings[name] = settings["model_args"][arg]
    out.update(run_id=config.run_id(), **settings)
    runs = [_metrics(runs_dir, c) for c in planned.configs]
    first = runs[0]
    if first is None:
        return {**out, "status": "missing"}
    out.update(
        status="done",
        protocol=first["protocol"],
        test_accuracy=first["test_accuracy"],
        test_loss=first["test_loss"],
        weighted_f1=first["weighted_f1"],
        train_seconds=first["train_seconds"],
        inference_seconds=first["inference_seconds"],
        val_accuracy=first["best_val_accuracy"],
        val_loss=first["best_val_loss"],
        epochs_run=first["epochs_run"],
        best_epoch=first["best_epoch"],
        n_train=first["n_train"],
        n_val=first["n_val"],
        n_test=first["n_test"],
        device=first["device"],
        environment=first["environment"],
    )
    if "mnist_test_accuracy" in first:
        out.update(mnist_test_accuracy=first["mnist_test_accuracy"], mnist_test_loss=first["mnist_test_loss"])
    if len(planned.configs) > 1:
        done = [m for m in runs if m is not None]
        out["seeds"] = [c.seed for c in planned.configs]
        out["seed_run_ids"] = [c.run_id() for c in planned.configs]
        out["seeds_done"] = len(done)
        for metric in ("test_accuracy", "test_loss", "mnist_test_accuracy", "mnist_test_loss", "train_seconds"):
            mean, std = _mean_std([m.get(metric) for m in done])
            out[f"{metric}_mean"], out[f"{metric}_std"] = mean, std
    return out


def add_cross_split(rows: list[dict], splits: list[str], runs_dir: Path, root: Path, device: str) -> None:
    """Score every finished row's model on each split's test part (Table 8), exact case mapping."""
    from training.crosssplit import cross_evaluate

    for row in rows:
        if row.get("status") != "done":
            continue
        row["cross"] = {}
        for split in splits:
            protocol = resolve_protocol(split, "auto", root) if row["protocol"] == "official" else row["protocol"]
            result = cross_evaluate(runs_dir / row["run_id"], _load(split, protocol, str(root)), device=device)
            row["cross"][split] = {"test_accuracy": result["accuracy"], "weighted_f1": result["weighted_f1"],
                                   "inference_seconds": result["inference_seconds"], "n_test": result["n_test"],
                                   "protocol": result["protocol"], "chars": result["chars"],
                                   "device": result.get("device"),
                                   "confusion_matrix": result["confusion_matrix"]}  # fmt: skip


def collect_table(name: str, planned: list[PlannedRow], profile: str, runs_dir: Path, root: Path,
                  device: str) -> dict:  # fmt: skip
    from training.report import evaluate_claims
    from training.trainer import environment

    spec = load_spec(name)
    rows = [result_row(p, runs_dir) for p in planned]
    if getattr(spec, "CROSS_SPLIT", None):
        add_cross_split(rows, spec.CROSS_SPLIT, runs_dir, root, device)
    done = [r for r in rows if r.get("status") == "done"]
    result = {
        "table": name,
        "title": spec.TITLE,
        "profile": profile,
        "profile_description": PROFILES[profile]["description"],
        "protocol": ", ".join(sorted({r["protocol"] for r in done})) or None,
        "device": ", ".join(sorted({r["device"] for r in done})) or None,
        "units": {"test_accuracy": "fraction 0-1 (also val_accuracy, weighted_f1)",
                  "report": "the report's numbers as printed: accuracy in percent"},
        "notes": getattr(spec, "NOTES", ""),
        "rows": rows,
        "environment": environment(),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
    }  # fmt: skip
    result["claims"] = evaluate_claims(result, getattr(spec, "CLAIMS", []))
    return result


CSV_COLUMNS = [
    "key", "label", "status", "run_id", "model", "split", "protocol", "profile", "optimizer", "lr", "loss",
    "focal_gamma", "focal_alpha", "activation", "blocks", "batch_size", "epochs", "limit_train", "limit_val", "seed",
    "epochs_run", "best_epoch", "n_train", "n_val", "n_test", "val_accuracy_pct", "val_loss", "test_accuracy_pct",
    "report_test_accuracy_pct", "diff_test_accuracy_pts", "test_loss", "report_test_loss", "weighted_f1",
    "train_seconds", "report_train_seconds", "inference_seconds", "test_accuracy_mean_pct", "test_accuracy_std_pct",
    "mnist_test_accuracy_pct", "mnist_test_accuracy_mean_pct", "mnist_test_accuracy_std_pct", "device",
    "git_commit", "torch",
]  # fmt: skip


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 3)


def csv_row(row: dict) -> dict:
    report = row.get("report", {})
    out = {k: row.get(k) for k in CSV_COLUMNS}
    out.update(
        val_accuracy_pct=_pct(row.get("val_accuracy")),
        test_accuracy_pct=_pct(row.get("test_accuracy")),
        report_test_accuracy_pct=report.get("test_accuracy"),
        report_test_loss=report.get("test_loss"),
        report_train_seconds=report.get("train_seconds"),
        test_accuracy_mean_pct=_pct(row.get("test_accuracy_mean")),
        test_accuracy_std_pct=_pct(row.get("test_accuracy_std")),
        mnist_test_accuracy_pct=_pct(row.get("mnist_test_accuracy")),
        mnist_test_accuracy_mean_pct=_pct(row.get("mnist_test_accuracy_mean")),
        mnist_test_accuracy_std_pct=_pct(row.get("mnist_test_accuracy_std")),
        git_commit=row.get("environment", {}).get("git_commit"),
        torch=row.get("environment", {}).get("torch"),
    )
    if row.get("test_accuracy") is not None and report.get("test_accuracy") is not None:
        out["diff_test_accuracy_pts"] = round(100 * row["test_accuracy"] - report["test_accuracy"], 3)
    for split, cell in row.get("cross", {}).items():  # Table 8: one group of columns per test split
        theirs = report.get("cross", {}).get(split, {})
        out.update({f"{split}_test_accuracy_pct": _pct(cell["test_accuracy"]),
                    f"{split}_weighted_f1": cell["weighted_f1"],
                    f"{split}_inference_seconds": cell["inference_seconds"],
                    f"{split}_n_test": cell["n_test"],
                    f"report_{split}_test_accuracy_pct": theirs.get("test_accuracy"),
                    f"report_{split}_weighted_f1": theirs.get("weighted_f1"),
                    f"report_{split}_inference_seconds": theirs.get("inference_seconds")})  # fmt: skip
    return out


def write_table(result: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = result["table"]
    tmp = out_dir / f"{name}.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out_dir / f"{name}.json")
    rows = [csv_row(r) for r in result["rows"]]
    columns = CSV_COLUMNS + [k for k in dict.fromkeys(k for r in rows for k in r) if k not in CSV_COLUMNS]
    with (out_dir / f"{name}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def load_results(out_dir: Path) -> dict[str, dict]:
    """Every table's results found in ``out_dir``, in the reports' order."""
    found = {}
    for name in TABLES:
        path = out_dir / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text())
    return found


def winners(results: dict[str, dict]) -> dict:
    """What the export needs: Table 8's run per split, and the best run of each family per split.

    'Best' is chosen on validation accuracy (then validation loss) over every EMNIST table's finished
    rows, never on test.
    """
    out: dict = {"table8": {}, "best_by_family": {}}
    for row in results.get("table8", {}).get("rows", []):
        if row.get("status") == "done":
            out["table8"][row["split"]] = {"run_id": row["run_id"], "profile": row["profile"]}
    best: dict[tuple[str, str], dict] = {}
    for name, result in results.items():
        for row in result["rows"]:
            if row.get("status") != "done" or row.get("val_accuracy") is None:
                continue
            key = (row["model"], row["split"])
            # Validation losses of different losses are not comparable: they only break ties among cross-entropy runs.
            tie_break = -row["val_loss"] if row.get("loss") == "cross_entropy" and row.get("val_loss") else -math.inf
            rank = (row["val_accuracy"], tie_break)
            if key not in best or rank > best[key]["rank"]:
                best[key] = {"rank": rank, "table": name, "key": row["key"], "run_id": row["run_id"],
                             "profile": row["profile"], "val_accuracy": row["val_accuracy"],
                             "test_accuracy": row["test_accuracy"]}  # fmt: skip
    for (model, split), entry in sorted(best.items()):
        entry.pop("rank")
        out["best_by_family"].setdefault(model, {})[split] = entry
    return out


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="+", help=f"{' | '.join(TABLES)} | all")
    parser.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    parser.add_argument("--workers", type=int, default=1,
                        help="runs at once, each in its own process with CPUs/N threads (on a 2-core CPU, 2 is "
                             "faster: one thread per run suffers far less when other work shares the CPU)")
    parser.add_argument("--threads", type=int, help="torch threads per run (default: CPUs / workers)")
    parser.add_argument("--in-order", action="store_true",
                        help="start runs table by table in the order named (default: longest first); "
                             "e.g. `table8 table2 ... --in-order` trains the shipped models first")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="keep checkpoint.pt of finished runs (default: remove it, best.pt stays)")
    parser.add_argument("--data-root", type=Path, help="EMNIST files (default: $EMNIST_ROOT, ../shared/data/emnist)")
    parser.add_argument("--runs-dir", type=Path, help="run folders (default: $RUNS_DIR or runs/)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder (default: assets/results)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--no-plots", action="store_true", help="write the tables and the page, skip the figures")
    parser.add_argument("--plan", action="store_true", help="list the runs, do nothing")
    parser.add_argument("--collect-only", action="store_true",
                        help="train nothing: write the tables, figures and page from the runs already finished "
                             "(the others show as missing)")
    args = parser.parse_args(argv)

    from training import report, trainer

    names = list(TABLES) if "all" in args.tables else list(dict.fromkeys(args.tables))
    for name in names:
        load_spec(name)  # unknown names fail before anything runs
    root = Path(args.data_root) if args.data_root else default_root()
    runs_dir = Path(args.runs_dir or os.environ.get("RUNS_DIR") or trainer.RUNS_DIR)
    started = time.perf_counter()

    plans = {name: plan_table(name, args.profile, root) for name in names}
    configs = [c for plan in plans.values() for p in plan for c in p.configs]
    if args.plan:
        users: dict[str, list[str]] = defaultdict(list)
        for name, plan in plans.items():
            for p in plan:
                for c in p.configs:
                    users[c.run_id()].append(f"{name}:{p.row['key']}" + (f"@{c.seed}" if len(p.configs) > 1 else ""))
        for config in {c.run_id(): c for c in configs}.values():
            state = "done" if (runs_dir / config.run_id() / "metrics.json").exists() else "todo"
            print(f"{state}  {config.run_id()}  {', '.join(users[config.run_id()])}")
        return 0
    print(f"{len(names)} tables, {len(configs)} rows x seeds, {len({c.run_id() for c in configs})} distinct runs; "
          f"profile {args.profile}, runs in {runs_dir}", file=sys.stderr)  # fmt: skip
    failures = {} if args.collect_only else run_configs(
        configs, runs_dir, args.workers, args.device, root, args.keep_checkpoints, args.threads, args.in_order
    )

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(args.threads or max(1, available_cpus() // max(args.workers, 1)))  # Table 8's scoring
    try:
        for name in names:
            result = collect_table(name, plans[name], args.profile, runs_dir, root, args.device)
            write_table(result, args.out)
            for row in result["rows"]:  # every number's run, with its config and log (no weights)
                for run_id in row.get("seed_run_ids") or [row.get("run_id")]:
                    if run_id and (runs_dir / run_id / "metrics.json").exists():
                        trainer.copy_run_record(runs_dir / run_id, args.out / "runs" / run_id)
            if not args.no_plots:
                report.plot_table(result, runs_dir, args.out / "figures")
    finally:
        torch.set_num_threads(before)
    results = load_results(args.out)
    (args.out / "winners.json").write_text(json.dumps(winners(results), indent=1))
    report.write_readme(results, args.out)
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if failures:
        print(f"{len(failures)} runs failed: {', '.join(sorted(failures))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
