"""Rerun the reports' tables: ``python -m training reproduce <table|all> --profile quick [--workers N] [--address A]``.

Each table is a spec in training/experiments/ (plain data); every row becomes one RunConfig per seed
(training/plan.py), trained by the one trainer, one Ray task per chain of runs (training/runner.py, training/sweep.py):
on an embedded local Ray, or on a cluster with --address. Identical configs across tables are one run
(RunConfig.run_id), finished runs are skipped and interrupted ones resume, so rerunning the command only does
what is missing. The finished runs' metrics become result rows (training/collect.py): assets/results/<table>.json
and .csv, figures in assets/results/figures/, and assets/results/README.md sets every table beside the report's
numbers (training/report.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from training import claims, paths, report, ssl
from training.choose import pick_winners
from training.collect import collect_table, copy_records, load_results, write_table
from training.config import RunConfig
from training.data import default_root
from training.experiments import TABLES, load_spec
from training.experiments.profiles import PROFILES
from training.experiments.spec import PlannedRow
from training.plan import plan_table
from training.records import TableResult
from training.runfolder import RunFolder
from training.runner import threads_per_run, torch_threads
from training.sweep import run_configs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tables", nargs="+", help=f"{' | '.join(TABLES)} | all")
    parser.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    parser.add_argument("--workers", type=int, default=1,
                        help="runs at once on the embedded Ray, each a task with CPUs/N threads and, on a GPU, 1/N of "
                             "it (on a 2-core CPU, 2 is faster: one thread per run suffers far less when other work "
                             "shares the CPU); with --address the cluster's CPUs and GPUs decide")
    parser.add_argument("--threads", type=int,
                        help="torch threads per run (default: CPUs / workers; with --address 1), and the CPUs each "
                             "run asks a cluster for")
    parser.add_argument("--address",
                        help="join a running Ray cluster instead of starting one: auto (the one `ray start` runs on "
                             "this machine) or HOST:PORT; every node needs the data root and the runs folder at the "
                             "same paths (README.md)")
    parser.add_argument("--gpus-per-run", type=float,
                        help="GPU fraction each run asks for, e.g. 0.0833 for 12 runs per GPU (default: 1/workers "
                             "when the device is a GPU, else 0)")
    parser.add_argument("--in-order", action="store_true",
                        help="start runs table by table in the order named (default: longest first); "
                             "e.g. `table8 table2 ... --in-order` trains the shipped models first")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="keep checkpoint.pt of finished runs (default: remove it, best.pt stays)")
    parser.add_argument("--data-root", type=Path, help="EMNIST files (default: $EMNIST_ROOT, ../shared/data/emnist)")
    parser.add_argument("--runs-dir", type=Path, help="run folders (default: $RUNS_DIR or runs/)")
    parser.add_argument("--out", type=Path, help="results folder (default: $RESULTS_DIR or assets/results)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--compile", action="store_true",
                        help="run training steps through torch.compile (fused kernels: faster on a GPU; not part of "
                             "a run's settings or id)")
    parser.add_argument("--no-plots", action="store_true", help="write the tables and the page, skip the figures")
    parser.add_argument("--plan", action="store_true", help="list the runs, do nothing")
    parser.add_argument("--collect-only", action="store_true",
                        help="train nothing: write the tables, figures and page from the runs already finished "
                             "(the others show as missing)")
    parser.add_argument("--rejudge", action="store_true",
                        help="train and collect nothing: judge the claims of the tables already in --out again "
                             "(from their rows and the runs' per-image predictions, in the runs folder or the "
                             "records beside the results), rewrite their JSON, CSV and the page")  # fmt: skip


def print_plan(plans: dict[str, list[PlannedRow]], runs_dir: Path) -> None:
    """One line per distinct run: done or todo, its id, and every table row that uses it."""
    users: dict[str, list[str]] = defaultdict(list)
    configs: dict[str, RunConfig] = {}
    for name, plan in plans.items():
        for p in plan:
            for c in p.configs:
                users[c.run_id()].append(f"{name}:{p.row.key}" + (f"@{c.seed}" if len(p.configs) > 1 else ""))
                configs.setdefault(c.run_id(), c)
    for run_id in configs:
        state = "done" if RunFolder(runs_dir / run_id).done else "todo"
        print(f"{state}  {run_id}  {', '.join(users[run_id])}")


def collect(names: list[str], plans: dict[str, list[PlannedRow]], args: Any, runs_dir: Path, root: Path) -> None:
    """Write every named table (JSON, CSV, run records, figures), then winners.json and the page."""
    with torch_threads(threads_per_run(args.workers, args.threads)):  # Table 8's cross-split scoring
        for name in names:
            result: TableResult = collect_table(load_spec(name), plans[name], args.profile, runs_dir, root,
                                                args.device, args.out / "runs")  # fmt: skip
            write_table(result, args.out)
            copy_records(result, runs_dir, args.out)
            ssl.pretraining_page(load_spec(name), args.profile, runs_dir, args.out, root)
            if not args.no_plots:
                report.plot_table(result, runs_dir, args.out / "figures")
    results = load_results(args.out)
    pick_winners(results).write(args.out)
    report.write_readme(results, args.out)


def rejudge(names: list[str], out: Path, runs_dir: Path) -> None:
    """Judge the claims of the tables written in ``out`` again; nothing else in them changes. The records
    beside the results come first: they are the runs the rows' numbers were collected from."""
    evidence = claims.Evidence(out / "runs", runs_dir)
    for name in names:
        path = out / f"{name}.json"
        if not path.exists():
            print(f"{path}: not there, skipped", file=sys.stderr)
            continue
        result = TableResult.read(path)
        result.claims = claims.evaluate_claims(result.rows, load_spec(name).claims, evidence)
        write_table(result, out)
    report.write_readme(load_results(out), out)


def run(args: argparse.Namespace) -> int:
    names = list(TABLES) if "all" in args.tables else list(dict.fromkeys(args.tables))
    for name in names:
        load_spec(name)  # unknown names fail before anything runs
    root = Path(args.data_root) if args.data_root else default_root()
    runs_dir = Path(args.runs_dir) if args.runs_dir else paths.runs_dir()
    args.out = Path(args.out) if args.out else paths.results_dir()
    started = time.perf_counter()
    if args.rejudge:
        rejudge(names, args.out, runs_dir)
        return 0
    plans = {name: plan_table(name, args.profile, root) for name in names}
    if args.plan:
        print_plan(plans, runs_dir)
        return 0
    configs = [c for plan in plans.values() for p in plan for c in p.configs]
    print(f"{len(names)} tables, {len(configs)} rows x seeds, {len({c.run_id() for c in configs})} distinct runs; "
          f"profile {args.profile}, runs in {runs_dir}", file=sys.stderr)  # fmt: skip
    if not args.collect_only:  # self-supervised pretrainings first: their rows start from them
        with torch_threads(threads_per_run(1, args.threads)):
            for name in names:
                ssl.pretrain_table(load_spec(name), args.profile, runs_dir, root, args.device)
    failures = {} if args.collect_only else run_configs(
        configs, runs_dir, args.device, root, workers=args.workers, threads=args.threads, address=args.address,
        gpus_per_run=args.gpus_per_run, in_order=args.in_order, keep_checkpoints=args.keep_checkpoints,
        compile_model=args.compile,
    )
    collect(names, plans, args, runs_dir, root)
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if failures:
        print(f"{len(failures)} runs failed: {', '.join(sorted(failures))}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
