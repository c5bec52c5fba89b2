"""The Results tab: the reproduced tables and figures that ``python -m training reproduce`` wrote under assets/.

``results_views`` reads each results folder (assets/results and every profile's subfolder with a README.md)
into a ``ResultsView``; ``build_results_tab`` lays them out, one tab per profile (the paper profile first) and
inside it one sub-tab per table: its verdicts first, then the table beside its figures.

Where things come from, so that each part has one source:
- the list of tables, their titles and verdicts: the tables' JSONs (``<table>.json``, ``TableResult`` with its
  ``claims``), read as plain JSON (the app never imports ``training``) and worded by ``recognizer.verdicts``, as the
  README words them;
- each table's body (the rows beside the report's, notes, links): the generated README.md, cut at the anchor
  ``<a id="<table>"></a>`` that training/report.py writes before each table (else at its ``## <title>``
  heading), falling back to the table's CSV;
- each table's figures: ``figures/<table>-*.png``, as training/report.py names them.
The README's relative links are pointed at Gradio's file route so its files can be opened.
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
ANCHOR = re.compile(r'^<a id="([^"]+)"></a>[ \t]*$', re.MULTILINE)  # before each table in the generated README
HEADING = re.compile(r"^## (.+?)[ \t]*$", re.MULTILINE)
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
    readme: str | None = None  # the whole README, links pointed at the file route
    overview: str | None = None  # the README's head: how the runs were made and every verdict
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
    """One view per results folder: ``top`` and each folder in it with a README.md (such as paper/),
    the paper profile first."""
    subfolders = sorted(p for p in top.glob("*/") if (p / "README.md").is_file()) if top.is_dir() else []
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


def read_results(folder: Path) -> ResultsView:
    """The reproduced tables (README.md, the tables' JSONs and CSVs) and plots (figures/*.png) of a results folder.

    Run records (runs/*/history.csv) and other profiles' subfolders are not this view's tables.
    """
    view = ResultsView(label=_results_label(folder))
    if not folder.is_dir():
        view.message = (f"No results in `{folder}` yet: run `python -m training reproduce` to train the tables' "
                        "models and write them there.")
        return view
    text = _read_readme(folder, view)
    if text is not None:
        view.readme = link_files(text, folder)
    view.tables = [table for path in sorted(folder.glob("*.csv")) if (table := _read_table(path, folder))]
    images = sorted([*folder.glob("*.png"), *folder.glob("figures/*.png")], key=lambda p: (_plot_rank(p), str(p)))
    view.images = [(str(p), str(p.relative_to(folder).with_suffix(""))) for p in images]
    head, parts = split_readme(text or "")
    view.overview = link_files(unlink_anchors(head), folder).strip() or None
    view.sections = table_sections(folder, parts, view.tables)
    if view.readme is None and not view.tables and not view.images and view.message is None:
        view.message = f"`{folder}` holds no README.md, tables or plots yet."
    return view


def _read_readme(folder: Path, view: ResultsView) -> str | None:
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    try:
        return readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        view.message = f"⚠ Cannot read {readme}: {err}"
        return None


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


def link_files(markdown: str, folder: Path) -> str:
    """Point the README's relative links and images (figures/x.png, table8.csv) at Gradio's file route.

    A markdown block has no folder of its own, so relative paths would resolve against the app's root;
    ``webapp.demo.launch`` allows the assets folder, so these absolute file URLs are served.
    """

    def replace(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"^(?:[a-z]+:|/|#)", target):
            return match.group(0)
        path = (folder / target).resolve()
        if not path.is_file() or not path.is_relative_to(folder.resolve()):
            return match.group(0)
        return f"{match.group(1)}({FILE_ROUTE}{path})"

    return re.sub(r"(!?\[[^\]]*\])\(([^)\s]+)\)", replace, markdown)


def unlink_anchors(markdown: str) -> str:
    """'[table2](#table2)' becomes '**table2**': the page's anchors are sub-tabs here, not places to jump to."""
    return re.sub(r"(?<!!)\[([^\]]+)\]\(#[^)\s]*\)", r"**\1**", markdown)


# ---------------------------------------------------------------------------------------------
# One section per table


def split_readme(text: str) -> tuple[str, dict[str, str]]:
    """The README's head and its per-table parts, keyed by the anchor's id (lower case).

    A README without anchors is cut at its '## ' headings instead, keyed by the heading's text.
    """
    marks = [(m.start(), m.end(), m.group(1).lower()) for m in ANCHOR.finditer(text)]
    if not marks:
        marks = [(m.start(), m.start(), m.group(1)) for m in HEADING.finditer(text)]
    if not marks:
        return text, {}
    parts = {key: text[end:(marks[i + 1][0] if i + 1 < len(marks) else len(text))]
             for i, (_, end, key) in enumerate(marks)}  # fmt: skip
    return text[:marks[0][0]], parts


def _table_json(path: Path) -> dict[str, Any] | str | None:
    """A results table's JSON as a dict; a readable reason when it cannot be read; None when not a table."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return f"⚠ Cannot read {path.name}: {err}"
    return data if isinstance(data, dict) and "table" in data and "rows" in data else None


def table_sections(folder: Path, parts: dict[str, str],
                   tables: list[tuple[str, list[str], list[list[str]]]]) -> list[TableSection]:
    """One section per table (a JSON or a CSV), in the README's order, then the tables the README lacks."""
    found = {path.stem: data for path in sorted(folder.glob("*.json")) if (data := _table_json(path)) is not None}
    csvs = {name: (headers, rows) for name, headers, rows in tables}
    names = list(dict.fromkeys([*found, *csvs]))
    titles = {name: _json_title(found.get(name)) or name for name in names}
    key_of = {**{titles[n]: n for n in names}, **{n.lower(): n for n in names}}  # an anchor's id, or a heading
    ordered = list(dict.fromkeys([*(key_of[key] for key in parts if key in key_of), *names]))
    return [_section(folder, name, found.get(name), parts.get(name.lower(), parts.get(titles[name])), csvs.get(name))
            for name in ordered]


def _section(folder: Path, name: str, data: dict[str, Any] | str | None, part: str | None,
             csv_table: tuple[list[str], list[list[str]]] | None) -> TableSection:
    section = TableSection(name=name, title=_json_title(data) or name)
    if isinstance(data, str):
        section.problem = data
    claims = [c for c in data.get("claims", []) if isinstance(c, dict)] if isinstance(data, dict) else []
    section.verdicts = [verdict_markdown(c) for c in claims]
    section.figures = table_figures(folder, name)
    section.body = _body(folder, part, claims, section, csv_table)
    return section


def _json_title(data: dict[str, Any] | str | None) -> str:
    return str(data.get("title") or "") if isinstance(data, dict) else ""


def table_figures(folder: Path, name: str) -> list[tuple[str, str]]:
    """The table's figures as training/report.py names them (figures/<table>-*.png), the single confusion
    matrices (<table>-confusion-<trained>-<tested>.png, linked from the body) left out."""
    paths = sorted((folder / "figures").glob(f"{name}-*.png"), key=lambda p: (_plot_rank(p), p.name))
    return [(str(p), p.stem.removeprefix(f"{name}-")) for p in paths if "-confusion-" not in p.name]


def _body(folder: Path, part: str | None, claims: list, section: TableSection,
          csv_table: tuple[list[str], list[list[str]]] | None) -> str:
    """The table's README part without its heading, verdicts and inline figures (shown around it); else its CSV."""
    if part is None:
        return markdown_table(*csv_table) if csv_table else "*This table is not in the README and has no CSV.*"
    texts = [c["text"] for c in claims if isinstance(c, dict) and isinstance(c.get("text"), str)]
    shown = {Path(p).name for p, _ in section.figures}
    kept = []
    for line in part.splitlines():
        if HEADING.fullmatch(line) or (line.startswith("- ") and any(t in line for t in texts)):
            continue  # the title and each verdict are shown above the table
        image = re.fullmatch(r"!\[[^\]]*\]\(figures/([^)\s]+)\)\s*", line)
        if image and image.group(1) in shown:
            continue  # shown in the gallery beside the table
        kept.append(line)
    return link_files(re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip(), folder)


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
    """How the runs were made and every verdict at a glance (the README's head), or why there is nothing."""
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
