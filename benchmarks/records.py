"""The benchmarks' records and the page made from them: every figure a benchmark measures is written, with how,
where and when, to a JSON record under assets/benchmarks/, and assets/benchmarks/README.md is generated from them.

    python benchmarks/records.py          # write assets/benchmarks/README.md from the records there

A record: ``benchmark`` (the script), ``title``, ``command`` (as run), ``date`` (UTC), ``commit`` (and whether the
working tree differed from it), ``machine`` (CPUs, CPU model, memory, GPU, load average when the record was written),
``config`` (the run's settings), ``figures`` (a table: ``columns`` and ``rows``, what the page shows), ``notes``
(what the page says under the table) and ``data`` (the raw measurements, for recomputing the figures).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Where records go; a test that runs a benchmark points this variable at a folder of its own.
RECORDS = Path(os.environ.get("EMNIST_BENCHMARK_RECORDS") or REPO / "assets" / "benchmarks")
PAGE = REPO / "assets" / "benchmarks" / "README.md"
FIELDS = ("benchmark", "title", "command", "date", "commit", "dirty", "machine", "config", "figures", "notes")
# The page's order: what a person waits for first, then serving, then the models' own costs, then training.
ORDER = ("browser_latency", "app_latency", "app_load", "page_load", "page_saliency", "model_budget",
         "train_throughput", "gpu_throughput")


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30)
    return done.stdout.strip() if done.returncode == 0 else ""


def machine() -> dict[str, Any]:
    """What ran the benchmark: CPUs, CPU model, memory, GPU (nvidia-smi's name, if any) and the load average."""
    model = ""
    if Path("/proc/cpuinfo").is_file():
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")  # fmt: skip
    memory = None
    if Path("/proc/meminfo").is_file():
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        memory = round(kb / 1024**2, 1)
    gpu = None
    if shutil.which("nvidia-smi"):
        done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=30)  # fmt: skip
        gpu = done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gb": memory, "gpu": gpu,
            "platform": platform.platform(), "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip


def write_record(benchmark: str, title: str, figures: dict[str, list], config: dict[str, Any],
                 notes: list[str] | None = None, data: Any = None, name: str | None = None,
                 folder: Path | None = None) -> Path:  # fmt: skip
    """Write ``<folder>/<name or benchmark>.json`` (folder: ``RECORDS``) and return its path; ``figures`` is
    {"columns": [...], "rows": [[...], ...]}."""
    folder = Path(folder or RECORDS)
    if set(figures) != {"columns", "rows"} or any(len(r) != len(figures["columns"]) for r in figures["rows"]):
        raise ValueError(f"figures must be a table (columns and rows of as many cells): {figures}")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!assets/benchmarks"))
    record = {
        "benchmark": benchmark, "title": title,
        "command": " ".join(["python", shlex.quote(os.path.relpath(sys.argv[0], REPO))]
                            + [shlex.quote(a) for a in sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": git("rev-parse", "--short", "HEAD"), "dirty": dirty, "machine": machine(), "config": config,
        "figures": figures, "notes": list(notes or []), "data": data,
    }  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or benchmark}.json"
    path.write_text(json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8")
    return path


def read_records(folder: Path | None = None) -> list[dict[str, Any]]:
    """Every record in ``folder`` (``RECORDS``), in the page's order (``ORDER``, then by name)."""
    folder = Path(folder or RECORDS)
    records = [json.loads(p.read_text()) | {"file": p.name} for p in sorted(folder.glob("*.json"))]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(records, key=lambda r: (rank.get(r["benchmark"], len(ORDER)), r["file"]))


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "—" if value is None else str(value)


def render(records: list[dict[str, Any]]) -> str:
    """The page: per record its title, how, where and when it was measured, its figures and its notes."""
    lines = ["# Benchmarks", "",
             "Generated by `python benchmarks/records.py` from the JSON records beside this page; do not edit by "
             "hand. Each record is written by the benchmark named in its command (benchmarks/), with the figures, "
             "the settings, the machine, the commit and the date; `data` in each holds the raw measurements.", ""]
    for r in records:
        m = r["machine"]
        where = (f"{m['cpus']} CPUs ({m['cpu_model'] or 'model unknown'}), {m['memory_gb']} GB"
                 + (f", GPU {m['gpu']}" if m.get("gpu") else "")
                 + f"; load average {' / '.join(str(x) for x in m['load_average'])} when written")  # fmt: skip
        commit = f"`{r['commit']}`" + (" with uncommitted changes" if r["dirty"] else "")
        lines += [f"## {r['title']}", "",
                  f"[`{r['file']}`]({r['file']}) · `{r['command']}` · commit {commit} · {r['date']} · {where}", ""]
        columns, rows = r["figures"]["columns"], r["figures"]["rows"]
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
        if r["notes"]:
            lines += [""] + [f"- {note}" for note in r["notes"]]
        lines.append("")
    return "\n".join(lines)


ANSWERERS = {"page": "the page (the default)", "server": "the server (`--no-browser-inference`)"}


def figure(record: dict[str, Any], stage: str) -> list[Any]:
    """A row of a record's figures by its first cell."""
    return next(row for row in record["figures"]["rows"] if row[0] == stage)


def answers_table(folder: Path | None = None) -> str:
    """The README's benchmark table, from the browser_latency records of both answerers (idle and busy) and the
    page_bytes record: what a person waits for, how often the answers follow the pen, the server's CPU per character
    and what a first visit downloads. tests/test_readme.py requires the README to hold exactly this."""
    found = {r["file"]: r for r in read_records(folder)}
    lines = ["| who answers | mouse-up → three answers shown, p50 / p95 | beside two CPU-bound processes | the reading "
             "of the finished drawing, p50 / p95 | answers a second while drawing | server CPU per character, "
             "its handlers / the whole server with 50 pages drawing |",
             "|---|---|---|---|---|---|"]
    for who, label in ANSWERERS.items():
        idle, busy = found[f"browser_latency-{who}-idle.json"], found[f"browser_latency-{who}-busy.json"]
        waits = [f"{figure(r, 'all 3')[2]:.0f} / {figure(r, 'all 3')[3]:.0f} ms" for r in (idle, busy)]
        stage = "page's reading done" if who == "page" else "handler end"
        done = f"{figure(idle, stage)[2]:.0f} / {figure(idle, stage)[3]:.0f} ms"
        rate = figure(idle, "answers shown a second while one stroke is drawn")[2]
        cpu = figure(idle, "server CPU")[2]
        whole = figure(found[f"page_load-{who}.json"], "server CPU per character, ms")[1]
        lines.append(f"| {label} | {waits[0]} | {waits[1]} | {done} | {rate:.0f} | {cpu:.0f} / {whole:.0f} ms |")
    total = figure(found["page_bytes.json"], "total")
    lines += ["", f"A first visit downloads {total[2] / 1e6:.1f} MB for the page's answers (gzip as served; "
              f"{total[1] / 1e6:.1f} MB raw), a later one only revalidates them. Where the page answers, a stroke "
              "still reaches the server, as one step instead of two: the heat maps, the preview and keeping need it."]
    return "\n".join(lines)


def main() -> int:
    PAGE.write_text(render(read_records(PAGE.parent)), encoding="utf-8")
    print(f"wrote {PAGE.relative_to(REPO)} from {len(read_records(PAGE.parent))} records")
    try:
        print("\nThe README's table:\n\n" + answers_table(PAGE.parent))
    except (KeyError, StopIteration) as err:
        print(f"\nThe README's table needs the browser_latency and page_bytes records: {err} is missing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
