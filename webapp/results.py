"""The Results tab: the reproduced tables and figures that ``python -m training reproduce`` wrote under assets/.

``results_views`` reads each results folder (assets/results and every profile's subfolder with a README.md)
into a ``ResultsView``; ``build_results_tab`` lays them out, one tab per profile, the paper profile first.
The README's relative links are pointed at Gradio's file route so its figures show inline.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

log = logging.getLogger(__name__)

FILE_ROUTE = "/gradio_api/file="  # Gradio serves files under launch(allowed_paths=...) here
PAPER = "paper profile"


@dataclass
class ResultsView:
    """What one results tab shows, read from a results folder at start."""

    label: str = "results"
    readme: str | None = None
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (path, caption)
    message: str | None = None


def results_views(top: Path) -> list[ResultsView]:
    """One view per results folder: ``top`` and each folder in it with a README.md (such as paper/),
    the paper profile first."""
    subfolders = sorted(p for p in top.glob("*/") if (p / "README.md").is_file()) if top.is_dir() else []
    views = [read_results(folder) for folder in [top, *subfolders]]
    return sorted(views, key=lambda v: (v.label != PAPER, v.label))


def read_results(folder: Path) -> ResultsView:
    """The reproduced tables (README.md, the tables' CSVs) and plots (figures/*.png) of a results folder.

    Run records (runs/*/history.csv) and other profiles' subfolders are not this view's tables.
    """
    view = ResultsView(label=_results_label(folder))
    if not folder.is_dir():
        view.message = (f"No results in `{folder}` yet: run `python -m training reproduce` to train the tables' "
                        "models and write them there.")
        return view
    readme = folder / "README.md"
    if readme.is_file():
        try:
            view.readme = link_files(readme.read_text(encoding="utf-8"), folder)
        except (OSError, UnicodeDecodeError) as err:
            view.message = f"⚠ Cannot read {readme}: {err}"
    view.tables = [table for path in sorted(folder.glob("*.csv")) if (table := _read_table(path, folder))]
    images = sorted([*folder.glob("*.png"), *folder.glob("figures/*.png")], key=lambda p: (_plot_rank(p), str(p)))
    view.images = [(str(p), str(p.relative_to(folder).with_suffix(""))) for p in images]
    if view.readme is None and not view.tables and not view.images and view.message is None:
        view.message = f"`{folder}` holds no README.md, tables or plots yet."
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


# ---------------------------------------------------------------------------------------------
# The tab


def build_results_tab(views: list[ResultsView]) -> None:
    """One sub-tab per results view: its message, README, tables (folded) and every figure."""
    with gr.Tab("Results"), gr.Tabs():
        for view in views:
            with gr.Tab(view.label):
                if view.message:
                    gr.Markdown(view.message if view.message.startswith("⚠") else f"⚠ {view.message}")
                if view.readme:
                    gr.Markdown(view.readme, elem_classes="results-readme")
                for title, headers, rows in view.tables:
                    width = len(headers)
                    rows = [(row + [""] * width)[:width] for row in rows]  # ragged CSV rows, padded or cut
                    with gr.Accordion(f"Table: {title}", open=False):
                        gr.Dataframe(value=rows, headers=headers, interactive=False, wrap=True, max_height=420)
                if view.images:
                    gr.Markdown("### All figures")
                    gr.Gallery(value=view.images, columns=2, height="auto", object_fit="contain", label="Plots",
                               allow_preview=True)
