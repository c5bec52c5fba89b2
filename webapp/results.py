"""The Results tab: the reproduced tables and figures that ``python -m training reproduce`` wrote under assets/.

``results_views`` reads each results folder (assets/results and every subfolder holding a table's JSON, such as
paper/) into a ``ResultsView``; ``build_results_tab`` lays them out, one tab per folder (the paper profile first)
and inside it an overview and one sub-tab per table: its verdicts first, then its rows beside its figures.

Everything comes from the files ``reproduce`` writes for programs, never from its README (which is for people):
- each table's title, notes, rows and verdicts: the table's JSON (``<table>.json``, ``TableResult`` with its
  ``claims``), read as plain JSON (the app never imports ``training``) and worded by ``recognizer.verdicts``;
  a table with a CSV and no JSON is shown from its CSV;
- each table's figures: ``figures/<table>-*.png``, as training/report.py names them.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from recognizer.verdicts import basis_text, interval_text, verdict_of

log = logging.getLogger(__name__)

FILE_ROUTE = "/gradio_api/file="  # Gradio serves files under launch(allowed_paths=...) here
PAPER = "paper profile"
# Plain symbols rather than emoji: they render in any font (a headless browser has no emoji font).
ICONS = {"holds": "✓", "tie": "≈", "reversed": "✗", "does not hold": "✗", "not judged": "–"}


@dataclass
class TableSection:
    """One table of a results folder as its sub-tab shows it."""

    name: str  # the table's file stem: table2, class_weight, studyB
    title: str
    verdicts: list[str] = field(default_factory=list)  # markdown, one item per claim of the report
    body: str = ""  # markdown: the rows beside the report's, notes and links
    figures: list[tuple[str, str]] = field(default_factory=list)  # (path, caption)
    problem: str | None = None

    @property
    def tab(self) -> str:
        """A short tab label: 'Table 2', 'Class weights', 'Study B' (the title up to ':' or '(')."""
        short = re.split(r":| \(", self.title, maxsplit=1)[0].strip()
        return short if 0 < len(short) <= 24 else self.name


@dataclass
class ResultsView:
    """What one results tab shows, read from a results folder at start."""

    label: str = "results"
    overview: str | None = None  # how the runs were made (the profile) and every verdict, one line per claim
    sections: list[TableSection] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)  # the CSVs
    images: list[tuple[str, str]] = field(default_factory=list)  # every figure: (path, caption)
    message: str | None = None

    @property
    def loose_images(self) -> list[tuple[str, str]]:
        """Figures no table claims (shown with the overview)."""
        claimed = {path for s in self.sections for path, _ in s.figures}
        return [(p, c) for p, c in self.images if p not in claimed and "-confusion-" not in Path(p).name]


def results_views(top: Path) -> list[ResultsView]:
    """One view per results folder: ``top`` and each folder in it holding a table's JSON (such as paper/),
    the paper profile first."""
    subfolders = sorted(p for p in top.glob("*/") if _holds_tables(p)) if top.is_dir() else []
    views = [read_results(folder) for folder in [top, *subfolders]]
    tell_apart(views)
    return sorted(views, key=lambda v: (not v.label.startswith(PAPER), v.label))


def tell_apart(views: list[ResultsView]) -> None:
    """Views that would share a tab label (two folders of one profile: the reproduction's quick tables and the
    drawing recipe's quick ablation) each say what they hold: their one table's short title, or how many tables."""
    labels = [v.label for v in views]
    for view in views:
        if labels.count(view.label) > 1 and view.sections:
            only = view.sections[0]
            ablation = " ablation" if "ablation" in only.title.lower() and "ablation" not in only.tab.lower() else ""
            what = only.tab + ablation if len(view.sections) == 1 else f"{len(view.sections)} tables"
            view.label = f"{view.label} · {what}"


def _holds_tables(folder: Path) -> bool:
    return any(isinstance(_table_json(path), dict) for path in folder.glob("*.json"))


def read_results(folder: Path) -> ResultsView:
    """The reproduced tables (their JSONs and CSVs) and plots (figures/*.png) of a results folder.

    Run records (runs/*/history.csv) and other profiles' subfolders are not this view's tables.
    """
    view = ResultsView(label=_results_label(folder))
    if not folder.is_dir():
        view.message = (f"No results in `{folder}` yet: run `python -m training reproduce` to train the tables' "
                        "models and write them there.")
        return view
    view.tables = [table for path in sorted(folder.glob("*.csv")) if (table := _read_table(path, folder))]
    images = sorted([*folder.glob("*.png"), *folder.glob("figures/*.png")], key=lambda p: (_plot_rank(p), str(p)))
    view.images = [(str(p), str(p.relative_to(folder).with_suffix(""))) for p in images]
    view.sections = table_sections(folder, view.tables)
    view.overview = overview(folder, view.sections)
    if not view.sections and not view.images and view.message is None:
        view.message = f"`{folder}` holds no tables or plots yet."
    return view


def _read_table(path: Path, folder: Path) -> tuple[str, list[str], list[list[str]]] | None:
    """(title, headers, rows) of one CSV table; None (logged) when it cannot be read or is empty."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        log.warning("skipping %s: %s", path, err)
        return None
    if not rows:
        return None
    return str(path.relative_to(folder).with_suffix("")), rows[0], rows[1:]


def _results_label(folder: Path) -> str:
    """'<profile> profile' from the folder's tables (every table of a folder shares one), else the folder name."""
    for path in sorted(folder.glob("*.json")):
        try:
            profile = json.loads(path.read_text(encoding="utf-8")).get("profile")
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            continue
        if isinstance(profile, str):
            return f"{profile} profile"
    return folder.name


def _plot_rank(path: Path) -> int:
    """Cross-split matrix first, then confusion matrices, then the rest."""
    name = path.name.lower()
    return 0 if "heatmap" in name or "cross" in name else 1 if "confusion" in name else 2


# ---------------------------------------------------------------------------------------------
# One section per table


def _table_json(path: Path) -> dict[str, Any] | str | None:
    """A results table's JSON as a dict; a readable reason when it cannot be read; None when not a table."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return f"⚠ Cannot read {path.name}: {err}"
    return data if isinstance(data, dict) and "table" in data and "rows" in data else None


def table_order(name: str) -> tuple[int, int, str]:
    """The reports' order: Table 2 to Table 8 by number, then the other tables by name (as the results page)."""
    number = re.fullmatch(r"table(\d+)", name)
    return (0, int(number.group(1)), "") if number else (1, 0, name.lower())


def table_sections(folder: Path, tables: list[tuple[str, list[str], list[list[str]]]]) -> list[TableSection]:
    """One section per table (a JSON, else a CSV), in the reports' order."""
    found = {path.stem: data for path in sorted(folder.glob("*.json")) if (data := _table_json(path)) is not None}
    csvs = {name: (headers, rows) for name, headers, rows in tables}
    names = sorted(dict.fromkeys([*found, *csvs]), key=table_order)
    return [_section(folder, name, found.get(name), csvs.get(name)) for name in names]


def _section(folder: Path, name: str, data: dict[str, Any] | str | None,
             csv_table: tuple[list[str], list[list[str]]] | None) -> TableSection:
    section = TableSection(name=name, title=_json_title(data) or name)
    if isinstance(data, str):
        section.problem = data
    claims = [c for c in data.get("claims", []) if isinstance(c, dict)] if isinstance(data, dict) else []
    section.verdicts = [verdict_markdown(c) for c in claims]
    section.figures = table_figures(folder, name)
    section.body = _body(folder, name, data, csv_table)
    return section


def _json_title(data: dict[str, Any] | str | None) -> str:
    return str(data.get("title") or "") if isinstance(data, dict) else ""


def table_figures(folder: Path, name: str) -> list[tuple[str, str]]:
    """The table's figures as training/report.py names them (figures/<table>-*.png), the single confusion
    matrices (<table>-confusion-<trained>-<tested>.png, linked from the body) left out."""
    paths = sorted((folder / "figures").glob(f"{name}-*.png"), key=lambda p: (_plot_rank(p), p.name))
    return [(str(p), p.stem.removeprefix(f"{name}-")) for p in paths if "-confusion-" not in p.name]


def _body(folder: Path, name: str, data: dict[str, Any] | str | None,
          csv_table: tuple[list[str], list[list[str]]] | None) -> str:
    """The table's rows beside the report's (from its JSON, else its CSV), its notes, and a link to its CSV."""
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        parts = [rows_markdown([r for r in data["rows"] if isinstance(r, dict)])]
        if notes := str(data.get("notes") or "").strip():
            parts.append(notes)
    elif csv_table:
        parts = [markdown_table(*csv_table)]
    else:
        return "*This table has no rows yet.*"
    if (folder / f"{name}.csv").is_file():
        parts.append(f"Every figure of every row: [{name}.csv]({FILE_ROUTE}{(folder / f'{name}.csv').resolve()})")
    return "\n\n".join(parts)


def pct(value: Any) -> str:
    """A fraction in 0-1 as a percentage ('' where there is none)."""
    return f"{100 * value:.2f}" if isinstance(value, (int, float)) else ""


def rows_markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as the page reads them: accuracies in %, the report's figure beside ours, a mean ± std over seeds
    and the MNIST test set where the table has them."""
    seeds = any(r.get("test_accuracy_mean") is not None for r in rows)
    mnist = any(r.get("mnist_test_accuracy") is not None for r in rows)
    headers = ["row", "test accuracy %", "report %", "validation %", "epochs"]
    headers[2:2] = ["mean ± std over seeds"] if seeds else []
    headers[-1:-1] = ["MNIST test %"] if mnist else []
    lines = []
    for r in rows:
        report = r.get("report") if isinstance(r.get("report"), dict) else {}
        ours = pct(r.get("test_accuracy")) if r.get("status", "done") == "done" else str(r.get("status", ""))
        cells = [str(r.get("label") or r.get("key") or ""), ours]
        if seeds:
            mean, std = r.get("test_accuracy_mean"), r.get("test_accuracy_std")
            cells.append(f"{pct(mean)} ± {pct(std)}" if mean is not None and std is not None else pct(mean))
        cells.append(str(report.get("test_accuracy", "")))
        cells.append(pct(r.get("val_accuracy")))
        if mnist:
            cells.append(pct(r.get("mnist_test_accuracy")))
        cells.append(str(r.get("epochs_run") if r.get("epochs_run") is not None else ""))
        lines.append(cells)
    return markdown_table(headers, lines)


def overview(folder: Path, sections: list[TableSection]) -> str | None:
    """How the runs were made (the profile's description, from the tables' JSON) and every table's verdicts, one
    line per claim; None when there is no table."""
    if not sections:
        return None
    first = next((d for s in sections if isinstance(d := _table_json(folder / f"{s.name}.json"), dict)), {})
    head = [f"**{first['profile']}** profile: {first.get('profile_description', '')}".rstrip(": ")
            ] if first.get("profile") else []  # fmt: skip
    lines = ["| table | conclusion |", "|---|---|"]
    for section in sections:
        for verdict in section.verdicts or ["*no verdict recorded*"]:
            lines.append(f"| {section.tab} | {verdict.removeprefix('- ').split('  ')[0]} |")
    return "\n\n".join([*head, "\n".join(lines)])


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A CSV table as markdown (ragged rows padded or cut to the header's width)."""
    width = len(headers)

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in (cells + [""] * width)[:width]) + " |"

    return "\n".join([line(headers), "|" + "---|" * width, *(line(r) for r in rows)])


def verdict_markdown(claim: dict[str, Any]) -> str:
    """One claim as a list item: the verdict first (with its interval where the JSON has one), then the report's
    conclusion, then how it was judged; worded by ``recognizer.verdicts``, as the results page words it."""
    verdict = verdict_of(claim)
    interval = interval_text(claim)
    detail = str(claim.get("detail") or "").rstrip(".")
    return (f"- {ICONS.get(verdict, '•')} **{verdict}**" + (f" ({interval})" if interval else "")
            + f" — the report: {claim.get('text', '?')}.  \n  *{basis_text(claim)}" + (f": {detail}" if detail else "")
            + ".*")


# ---------------------------------------------------------------------------------------------
# The tab


def build_results_tab(views: list[ResultsView]) -> None:
    """One sub-tab per results view and, inside it, an overview and one sub-tab per table."""
    with gr.Tab("Results"), gr.Tabs():
        for view in views:
            with gr.Tab(view.label), gr.Tabs():
                _overview_tab(view)
                for section in view.sections:
                    _section_tab(section)


def _overview_tab(view: ResultsView) -> None:
    """How the runs were made and every verdict at a glance, or why there is nothing."""
    with gr.Tab("Overview"):
        if view.message:
            gr.Markdown(view.message if view.message.startswith("⚠") else f"⚠ {view.message}")
        if view.overview:
            gr.Markdown(view.overview, elem_classes="results-overview")
        elif view.sections:
            gr.Markdown("Each table has its own tab: its verdicts first, then the rows beside the report's, "
                        "then its figures.")
        if view.loose_images:
            gr.Gallery(value=view.loose_images, columns=2, height="auto", object_fit="contain", label="Figures",
                       allow_preview=True, elem_classes="results-figures")


def _section_tab(section: TableSection) -> None:
    """A table's verdicts, then its rows (left) beside its figures (right; below them on a narrow screen)."""
    with gr.Tab(section.tab):
        verdicts = "\n".join(section.verdicts) or "*No verdict recorded for this table.*"
        problem = f"{section.problem}\n\n" if section.problem else ""
        gr.Markdown(f"### {section.title}\n\n{problem}{verdicts}", elem_classes="results-verdicts")
        with gr.Row(equal_height=False):
            # The tables have up to 11 columns: three quarters of the width keeps most numbers on one line.
            with gr.Column(scale=3, min_width=560):
                gr.Markdown(section.body, elem_classes="results-readme")
            if section.figures:
                with gr.Column(scale=1, min_width=280):
                    for path, caption in section.figures:  # one image each: full width, fullscreen on a click
                        gr.Image(value=path, type="filepath", label=f"{section.name} {caption}", interactive=False,
                                 buttons=["fullscreen", "download"], elem_classes="results-figures",
                                 alt_text=f"{section.title}: {caption}")
