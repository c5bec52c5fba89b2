"""Export the winning runs to ONNX, with the manifest the app reads and checks that the files hold.

    python -m training export                       # the winners of assets/results/*.json
    python -m training export --profile quick
    python -m training export --run RUN_ID --name residual_cnn-byclass --slot byclass   # given runs only
    python -m training export --lab                 # the drawing recipe's models: <model>_lab-<split>

One path for every kind of candidate: choosing what to export (training/choose.py: the results tables' winners,
or with ``--lab`` the drawing recipe's run per split, then every ``--run``), converting and checking each model
(training/convert.py; a recipe model also gets the drawing benchmark, the latency check and the default-slot rule
of training/slots.py), then writing the manifest here: the new entries, the earlier ones kept beside them, and the
models left out with why (earlier notes kept unless the model is exported now or skipped again).

Each file takes an image [N, 1, 28, 28] float32 in [0, 1] (upright, dynamic N) and gives ``logits`` [N, C]
and ``features`` [N, D] (the penultimate vector for the maps).

How a model is converted and checked (parity, size, float16 for ResNet-50, the exporter): training/convert.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn
from tqdm import tqdm

from recognizer.inference import Recognizer
from recognizer.manifest import (
    SLOTS,
    DrawBenchFigures,
    EntryMetrics,
    ExportInfo,
    InputSpec,
    KeptFigures,
    Manifest,
    ManifestError,
    ModelEntry,
    ParityCheck,
    RecipeCard,
    SkippedModel,
    TrainingRecord,
    manifest_path,
)
from training.choose import RECIPE_RESULTS, Candidate, recipe_candidates, recipe_model_name, select_candidates
from training.convert import (
    MAX_MB,
    PROBE_IMAGES,
    ExportError,
    SkipRun,
    build_onnx,
    check_parity,
    checked_bytes,
    evaluate_exported,
    float16_needed,
    opset,
    parity_sample,
    stage_model,
    staged_recognizer,
    weights_to_fp16,
    write_model,
    write_torch_weights,
)
from training.data import DataError, SplitCache, SplitData, load_split
from training.drawbench import BenchConfig, build_set
from training.fromonnx import manifest_entry, model_for
from training.kept import kept_name
from training.models import count_parameters, model_info
from training.paths import models_dir, repo_relative, results_dir, runs_dir
from training.records import Metrics
from training.runfolder import RunFolder, load_trained
from training.slots import (
    MAX_MS,
    REPRODUCTION_FAMILY,
    DrawingChecks,
    OverBudget,
    SlotFigures,
    bench_figures,
    decide_slot,
    describe_checks,
    settle_slots,
)

OUTPUTS = {"logits": "logits", "features": "features"}


@dataclass
class ExportOptions:
    """How every model of one export command is made and checked."""

    exporter: str = "dynamo"
    max_mb: float = MAX_MB
    eval_limit: int | None = None  # score at most this many test images through the runtime
    progress: bool = True
    checks: DrawingChecks | None = None  # for recipe candidates: drawing benchmark, latency, default-slot rule


def read_run(run_dir: Path) -> Metrics:
    """A finished run's metrics; SkipRun says what is missing when the folder holds no exportable run."""
    run = RunFolder(run_dir)
    if not run.done or not run.best_path.exists():
        what = ("does not exist" if not run_dir.exists()
                else f"has no {Metrics.FILE} (unfinished)" if not run.done
                else f"has no {run.best_path.name} (finished elsewhere; its weights were not copied here)")
        raise SkipRun(f"run folder {repo_relative(run_dir)} {what}")
    try:
        return run.metrics()
    except (ValueError, TypeError) as err:  # RecordError, or a config RunConfig does not know
        reason = str(err).removeprefix(f"{run.metrics_path}: ")  # the path is named below, relative to the repo
        raise SkipRun(f"{repo_relative(run.metrics_path)} is not a finished run's record ({reason}): "
                      "not written by training.trainer.train") from err


def default_name(family: str, split: str) -> str:
    return f"{family}-{split}"


def make_entry(candidate: Candidate, metrics: Metrics, parity: dict, export: ExportInfo) -> ModelEntry:
    """The manifest entry of a checked model, before its runtime score, run record and sha256 are known."""
    config = metrics.config
    return ModelEntry(
        name=candidate.name,
        file=f"{candidate.name}.onnx",
        sha256="",
        family=config.model,
        split=metrics.split,
        protocol=metrics.protocol,
        profile=config.profile,
        labels=[str(c) for c in metrics.chars],
        input=InputSpec(name="image", shape=[1, 28, 28], range=[0, 1], orientation="upright", preprocessing="emnist"),
        outputs=dict(OUTPUTS),
        metrics=EntryMetrics(test_accuracy=metrics.test_accuracy, test_loss=metrics.test_loss,
                             weighted_f1=metrics.weighted_f1, n_test=metrics.n_test,
                             train_seconds=metrics.train_seconds, epochs_run=metrics.epochs_run,
                             best_val_accuracy=metrics.best_val_accuracy),
        training=TrainingRecord(config.to_dict(), run_id=metrics.run_id, device=metrics.device,
                                environment=metrics.environment),
        slot=candidate.slot,
        parity=ParityCheck.from_dict(parity),
        export=export,
    )


def score_through_runtime(entry: ModelEntry, staged: bytes, out_dir: Path, data: SplitData, metrics: Metrics,
                          options: ExportOptions) -> None:
    """The whole test part scored through the app's runtime on the staged file (same graph as the final one)."""
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".staging-") as tmp:
        stage_model(entry, staged, Path(tmp))
        runtime = evaluate_exported(tmp, entry.name, data, limit=options.eval_limit, progress=options.progress)
    entry.metrics.runtime_test_accuracy = runtime["accuracy"]
    entry.metrics.runtime_n_test = runtime["n"]
    if options.eval_limit is None and abs(runtime["accuracy"] - metrics.test_accuracy) > 0.002:
        # Expected only when torch scored in bf16 on a GPU; fp32 CPU scoring agrees to the image.
        print(f"note: {entry.name} scores {runtime['accuracy']:.4f} through the runtime vs "
              f"{metrics.test_accuracy:.4f} in training ({metrics.device})", file=sys.stderr)


@dataclass
class Converted:
    """A model converted and checked, before its entry is written: the graph, the bytes every check ran on, the
    parity record, the probe images the final file must agree on, and how the file was made."""

    proto: onnx.ModelProto
    staged: bytes
    parity: dict
    probe: np.ndarray
    export: ExportInfo


def convert_checked(model: nn.Module, name: str, family: str, data: SplitData, source: str,
                    exporter: str = "dynamo", max_mb: float = MAX_MB) -> Converted:
    """The one way a trained torch model (a run's, or a kept fine-tune's) becomes a checked ONNX graph: float16
    weights only where float32 would not fit, the exporter (dynamo, else legacy), the size limit, then parity
    against torch on the split's test sample (training/convert.py does each step)."""
    in_channels = model_info(family).in_channels
    params = count_parameters(model)
    fp16 = float16_needed(name, family, params, max_mb)

    started = time.perf_counter()
    proto, used = build_onnx(model, in_channels, exporter, name)
    if fp16:
        weights_to_fp16(proto)
    export = ExportInfo(exporter=used, opset=opset(proto), torch=torch.__version__, onnx=onnx.__version__,
                        parameters=params, weights="float16" if fp16 else "float32",
                        seconds=round(time.perf_counter() - started, 2), source=source)
    staged = checked_bytes(proto, name, max_mb)

    images, labels = parity_sample(data)
    parity = check_parity(model, staged, images, labels, in_channels, fp16)
    return Converted(proto, staged, parity, images[:PROBE_IMAGES], export)


def export_run(candidate: Candidate, out_dir: Path, splits: SplitCache, runs: Path,
               options: ExportOptions) -> ModelEntry:
    """Export, check and write one run; returns its manifest entry."""
    run_dir = runs / candidate.run_id
    metrics = read_run(run_dir)
    model, _ = load_trained(run_dir)
    family = metrics.config.model
    name = candidate.name = candidate.name or (recipe_model_name if candidate.checked else default_name)(
        family, metrics.split)
    data = splits.get(metrics.split, metrics.protocol)
    done = convert_checked(model, name, family, data, candidate.source, options.exporter, options.max_mb)
    entry = make_entry(candidate, metrics, done.parity, done.export)
    score_through_runtime(entry, done.staged, out_dir, data, metrics, options)
    if candidate.checked and options.checks is not None:
        options.checks.apply(entry, done.staged, metrics)
    write_torch_weights(model, entry, out_dir)
    write_model(done.proto, entry, done.staged, done.probe, out_dir)
    # The run's own record travels with the model: where every shipped number came from.
    RunFolder(run_dir).copy_record(out_dir / entry.run_record)
    return entry


# ---------------------------------------------------------------------------------------------
# A kept fine-tune (training/finetune_kept.py's run folder) through the same steps: convert, check parity, score the
# staged file through the runtime, the slot rule, then write_torch_weights and write_model as for any run.


FINETUNE_RECORD = ("config.json", "log.txt", "history.json", "history.csv", "result.json")


def runtime_figures(recognizer: Recognizer, name: str, data: SplitData, bench, limit: int | None) -> SlotFigures:
    """Pool validation accuracy and drawing-benchmark top-1 through the runtime: what the slot rule compares."""
    x, y = data.parts["val"]
    if limit is not None and limit < len(y):
        keep = np.sort(np.random.default_rng(42).choice(len(y), limit, replace=False))
        x, y = x[keep], y[keep]
    probs = recognizer.predict_batch(name, x.astype(np.float32) / 255.0)[0]
    val = float((probs.argmax(1) == y).mean()) if len(y) else None
    return SlotFigures(name, val, bench_figures(bench, recognizer, name).top1, int(len(y)))


def reproduction_figures(folder: Path, split: str, data: SplitData, bench, limit: int | None) -> SlotFigures | None:
    recognizer = Recognizer(folder, intra_op_num_threads=1)
    name = f"{REPRODUCTION_FAMILY}-{split}"
    if name not in recognizer.sessions:
        return None
    return runtime_figures(recognizer, name, data, bench, limit)


def new_entry(base: ModelEntry, result: dict, parity: dict, export: ExportInfo) -> ModelEntry:
    """The fine-tuned model's manifest entry: the base's labels and IO, its own figures and recipe."""
    after = result["after"]
    return dataclasses.replace(
        base, name=kept_name(base.name), file=f"{kept_name(base.name)}.onnx", sha256="", slot=None, slot_rule=None,
        metrics=EntryMetrics(test_accuracy=after["pool_test"]["accuracy"], n_test=after["pool_test"]["n"],
                             best_val_accuracy=after["pool_val"]["accuracy"],
                             kept=KeptFigures(before=result["before"], after=after)),
        training=dataclasses.replace(base.training, finetune=result["config"], run_id=result["run_id"]),
        parity=ParityCheck.from_dict(parity), export=export,
        recipe=RecipeCard(finetuned_from=result["base"], kept_drawings=result["kept"],
                          kept_digest=result["kept_digest"], pool_images_per_epoch=result["config"]["pool_per_epoch"],
                          chosen_epoch=result["chosen_epoch"],
                          chosen_on="kept validation drawings (folded top-1, then loss)", batchnorm="frozen (folded)",
                          data=result["data"]),
    )  # fmt: skip


def export_finetuned(run_dir: Path, out: Path | None = None, models: Path | None = None, data_root: Path | None = None,
                     bench_per_class: int = 10, progress: bool = True) -> ModelEntry:  # fmt: skip
    """Convert and check (``convert_checked``, as every run), score and write the fine-tuned model into ``out``'s
    manifest beside the models there."""
    result = json.loads((Path(run_dir) / "result.json").read_text())
    base = manifest_entry(result["base"]["name"], models)
    model = model_for(base)
    model.load_state_dict(RunFolder(Path(run_dir)).load_best("cpu"))
    model.eval()
    out = Path(out or models_dir())
    data = load_split(base.split, base.protocol or "auto", root=data_root)
    done = convert_checked(model, kept_name(base.name), base.training.model or base.family, data,
                           f"python -m training drawings finetune, run {result['run_id']}")
    entry = new_entry(base, result, done.parity, done.export)
    bench = build_set(BenchConfig(per_class=bench_per_class), data_root, progress=progress)
    limit = result["config"]["eval_limit"]
    with tempfile.TemporaryDirectory(prefix="kept-export-") as tmp:
        new_scores = runtime_figures(staged_recognizer(entry, done.staged, Path(tmp)), entry.name, data, bench,
                                     limit)
    entry.metrics.runtime_val_accuracy = new_scores.validation
    entry.metrics.drawbench = DrawBenchFigures(top1=new_scores.drawn_top1, n_sources=int(len(bench.sources)),
                                               config=bench.config.key())  # fmt: skip
    entry.slot_rule = decide_slot(base.split, new_scores, reproduction_figures(Path(models or models_dir()),
                                                                                base.split, data, bench, limit))
    entry.slot = base.split if entry.slot_rule.takes_slot else None
    write_torch_weights(model, entry, out)  # the fine-tuned tensors, so the next fine-tune starts from them
    write_model(done.proto, entry, done.staged, done.probe, out)
    write_exported(entry, Path(run_dir), out)
    return entry


def write_exported(entry: ModelEntry, run_dir: Path, out: Path) -> None:
    """After ``write_model`` wrote the file: the fine-tune's record beside it, and the manifest with the slots
    settled (the other models of ``out`` kept)."""
    record = out / entry.run_record
    record.mkdir(parents=True, exist_ok=True)
    for name in FINETUNE_RECORD:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, record / name)
    try:
        manifest = Manifest.read(out)
    except ManifestError:
        manifest = Manifest()
    entries = [e for e in manifest.models if e.name != entry.name] + [entry]
    settle_slots(entries)
    Manifest(entries, manifest.skipped).write(out)


# ---------------------------------------------------------------------------------------------
# Every candidate, then the manifest


@dataclass
class Outcome:
    """What one export command did: the models written, the runs left out (with why) and the failures."""

    exported: list[ModelEntry] = field(default_factory=list)
    skipped: list[SkippedModel] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def report_exported(entry: ModelEntry, out_dir: Path) -> None:
    p, m, e = entry.parity, entry.metrics, entry.export
    size = (out_dir / entry.file).stat().st_size
    tqdm.write(f"exported {entry.name} ({size / 1e6:.1f} MB, {e.weights}, {e.exporter} {e.seconds:.1f} s): "
               f"parity max |dlogit| {p.max_abs_logit_diff:.2g} on {p.n} images, accuracy torch "
               f"{p.torch_accuracy:.4f} = onnx {p.onnx_accuracy:.4f}; test accuracy "
               f"{m.test_accuracy:.4f}, via runtime {m.runtime_test_accuracy:.4f} ({m.runtime_n_test} images)")
    if entry.slot_rule:
        tqdm.write(describe_checks(entry))


def export_all(candidates: list[Candidate], out_dir: Path, runs: Path, options: ExportOptions) -> Outcome:
    """Each candidate exported in turn; a skipped or failed one is reported and does not stop the others."""
    outcome, splits = Outcome(), SplitCache()
    for candidate in tqdm(candidates, desc="export", disable=not options.progress or len(candidates) < 2):
        label = candidate.name or candidate.run_id
        try:
            entry = export_run(candidate, out_dir, splits, runs, options)
        except (SkipRun, OverBudget) as err:
            print(f"skipped {label}: {err}", file=sys.stderr)
            outcome.skipped.append(SkippedModel(candidate.name, candidate.run_id, str(err)))
            continue
        except (ExportError, DataError) as err:
            print(f"FAILED {label}: {err}", file=sys.stderr)
            outcome.failed.append(label)
            continue
        except Exception:  # noqa: BLE001 - an unforeseen error fails this model loudly, not the others
            traceback.print_exc()
            print(f"FAILED {label}: unexpected error (traceback above)", file=sys.stderr)
            outcome.failed.append(label)
            continue
        outcome.exported.append(entry)
        report_exported(entry, out_dir)
    return outcome


def earlier_entries(out_dir: Path) -> list[ModelEntry]:
    """The entries of the manifest already in ``out_dir``, or [] when there is none (or it is unreadable)."""
    path = manifest_path(out_dir)
    if not path.exists():
        return []
    try:
        return Manifest.read(path).models
    except ManifestError as err:
        print(f"warning: the existing {path} is unreadable ({err}); writing a fresh one", file=sys.stderr)
        return []


def staying_entries(out_dir: Path, exported: list[ModelEntry], clean: bool) -> list[ModelEntry]:
    """The earlier entries that stay beside the new ones (none with --clean, whose files are removed)."""
    names = {e.name for e in exported}
    new_slots = {e.slot for e in exported} - {None}
    staying = []
    for old in earlier_entries(out_dir):
        if old.name in names:
            continue
        if clean:
            stale = out_dir / old.file
            if old.file and stale.is_file() and stale.suffix == ".onnx":
                stale.unlink()
            continue
        if old.slot in new_slots:  # a slot belongs to one model: the new export takes it
            old = dataclasses.replace(old, slot=None)
        staying.append(old)
    return staying


def staying_skipped(out_dir: Path, outcome: Outcome, clean: bool) -> list[SkippedModel]:
    """The earlier manifest's notes on models left out, kept (none with --clean) unless this export wrote the model
    or left it out again (its new note replaces the old one)."""
    if clean or not manifest_path(out_dir).exists():
        return []
    try:
        earlier = Manifest.read(out_dir).skipped
    except ManifestError:
        return []
    now = {e.name for e in outcome.exported} | {s.name for s in outcome.skipped} | {s.run_id for s in outcome.skipped}
    return [s for s in earlier if s.name not in now and (not s.run_id or s.run_id not in now)]


# ---------------------------------------------------------------------------------------------
# Command line


class _RunOption(argparse.Action):
    """``--run ID [--name N] [--slot S]`` groups: --name and --slot apply to the --run before them."""

    def __call__(self, parser, namespace, value, option_string=None):
        runs = getattr(namespace, "runs", None) or []
        if self.dest == "run_id":
            runs.append(Candidate(value))
        elif not runs:
            parser.error(f"{option_string} must follow a --run")
        else:
            setattr(runs[-1], self.dest, value)
        namespace.runs = runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="use the results of this profile (quick, paper, ...)")
    parser.add_argument("--results", type=Path, help="results folder (default: $RESULTS_DIR or assets/results); "
                                                     "read when no --run is given, or when given explicitly")
    parser.add_argument("--out", type=Path, help="where .onnx files and manifest.json go "
                                                 "(default: $MODELS_DIR or exported_models/)")
    parser.add_argument("--runs-dir", type=Path, help="run folders (default: $RUNS_DIR or runs/)")
    parser.add_argument("--run", dest="run_id", action=_RunOption, metavar="RUN_ID",
                        help="export this run (the tables are then read only with --results)")
    parser.add_argument("--name", action=_RunOption, help="model name for the --run before it")
    parser.add_argument("--slot", action=_RunOption, choices=SLOTS, help="comparison slot for the --run before it")
    parser.add_argument("--exporter", default="dynamo", choices=["dynamo", "legacy"])
    parser.add_argument("--max-mb", type=float, default=MAX_MB, help="size limit per model file (default 10)")
    parser.add_argument("--eval-limit", type=int, help="score at most this many test images through the runtime")
    parser.add_argument("--clean", action="store_true", help="drop manifest entries (and files) not exported now")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--table", dest="tables", action="append",
                        help="only the runs this results table picks (repeatable), e.g. studyB_ssl")
    lab = parser.add_argument_group("the drawing recipe's models (training/slots.py)")
    lab.add_argument("--lab", action="store_true",
                     help=f"export the best lab run per split (on validation) from --results (default: "
                          f"$RESULTS_DIR/{RECIPE_RESULTS}) as <model>_lab-<split>, with the drawing benchmark, the "
                          f"{MAX_MB:g} MB / {MAX_MS:g} ms checks and the default-slot rule; --run runs are "
                          "lab models too")
    lab.add_argument("--against", type=Path,
                     help="the manifest folder holding the reproduction's residual_cnn-<split> models the default-slot "
                          "rule compares with (default: $MODELS_DIR or exported_models/)")
    lab.add_argument("--drawbench-per-class", type=int, default=BenchConfig().per_class,
                     help="drawing-benchmark source images per merged class (default: the committed benchmark's)")
    lab.add_argument("--max-ms", type=float, default=MAX_MS,
                     help="median milliseconds per drawing on one CPU thread (default 5)")
    parser.add_argument("--list", action="store_true",
                        help="print the chosen runs (run id, name, why) and stop: e.g. which run folders to copy back")
    parser.set_defaults(runs=[])


def candidates_from_args(args: argparse.Namespace) -> list[Candidate]:
    """The winners of the results tables (the recipe's run per split with --lab), unless only --run is given; then
    every --run (a recipe model too with --lab)."""
    candidates: list[Candidate] = []
    if not args.runs or args.results is not None:
        if args.lab:
            candidates, messages = recipe_candidates(args.results or results_dir() / RECIPE_RESULTS, args.profile)
        else:
            candidates, messages = select_candidates(args.results or results_dir(), args.profile, args.tables)
        for message in messages:
            print(message, file=sys.stderr)
    for candidate in args.runs:
        candidate.checked = args.lab
    return candidates + args.runs


def export_options(args: argparse.Namespace) -> ExportOptions:
    """How this command exports; with --lab, the benchmark set and the reproduction's models to compare with."""
    if not args.lab:
        return ExportOptions(args.exporter, args.max_mb, args.eval_limit, progress=not args.quiet)
    checks = DrawingChecks.build(args.against or models_dir(), args.drawbench_per_class, args.max_ms, not args.quiet)
    return ExportOptions(args.exporter, min(args.max_mb, MAX_MB), args.eval_limit, not args.quiet, checks)


def run(args: argparse.Namespace) -> int:
    candidates = candidates_from_args(args)
    if not candidates:
        print("nothing to export: no results table names a run and no --run was given", file=sys.stderr)
        return 1
    if args.list:
        print("\n".join(f"{c.run_id}\t{c.name or ''}\t{c.source}" for c in candidates))
        return 0
    out_dir: Path = args.out or models_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    options = export_options(args)
    outcome = export_all(candidates, out_dir, args.runs_dir or runs_dir(), options)
    if not outcome.exported:
        failed = f" ({len(outcome.failed)} failed)" if outcome.failed else ""
        print(f"nothing was exported{failed}", file=sys.stderr)
        return 1
    staying = staying_entries(out_dir, outcome.exported, args.clean)
    settle_slots(outcome.exported + staying)  # the recipe models' default-slot decisions, either way
    skipped = outcome.skipped + staying_skipped(out_dir, outcome, args.clean)
    path = Manifest(outcome.exported + staying, skipped).write(out_dir)
    print(f"wrote {len(outcome.exported)} model(s) to {out_dir}" + (f", kept {len(staying)} earlier" if staying else "")
          + f"; manifest {path}")
    if outcome.failed:
        print(f"FAILED: {', '.join(outcome.failed)} (not written; see above)", file=sys.stderr)
        return 3
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))

