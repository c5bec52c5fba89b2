"""The "Kept drawings" tab: what visitors kept, every served model scored on it, the newest, and a download.

A live benchmark of real drawings: ``recognizer.drawings.score_drawings`` scores every served letter model on all
kept drawings (top-1 and top-3, case folded as the drawing benchmark scores), beside each model's test accuracy in
this app and its drawing-benchmark figure (``webapp.model_cards``' card figures), and each model's answer sets per
mode (``sets_table``: how often the set held the truth, its mean size). Refreshed when the tab
is opened and after a keep or an undo. Nothing here deletes: a visitor can only undo their own keep
(``webapp.correction_row``).
"""

from __future__ import annotations

import base64
import html
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from recognizer.answers import MODE_TITLES, set_figures
from recognizer.drawings import Drawing, StoreUnavailable, merged_label, score_drawings, trusted, write_dataset_zip
from recognizer.manifest import ModelEntry

from .events import QUIET
from .model_cards import app_accuracy, drawn, percent
from .served import ServedModels

RECENT = 12  # thumbnails shown
THUMB = 120  # their side, in pixels
log = logging.getLogger("webapp")


def kept_summary(lab: ServedModels) -> str:
    """How many drawings are kept, per character, and whether keeping is on."""
    lines = [f"⚠ Keeping drawings is off: {lab.keep_off}."] if lab.keep_off else []
    if lab.store is not None:
        per_class = lab.store.count_per_class()
        total = sum(per_class.values())
        lines.append(f"**{total} drawing{'' if total == 1 else 's'} kept** (this app keeps at most "
                     f"{lab.limits.store.words()}, and {lab.limits.keeps_per_minute or 'any number of'} keeps a minute "
                     "from one visitor)")  # fmt: skip
        if per_class:
            lines.append("per character: " + " · ".join(f"**{c}** {n}" for c, n in per_class.items()))
    return "  \n".join(lines)


def scores_table(lab: ServedModels, drawings: list[Drawing]) -> str:
    """Every served letter model on the kept drawings, beside its test accuracy in this app and the benchmark's."""
    if lab.recognizer is None or not lab.models:
        return "*No models to score.*"
    rows = ["| model | slot | kept drawings top-1 | top-3 | drawings | test accuracy in this app "
            "| drawing benchmark top-1 |", "|---|---|---|---|---|---|---|"]
    drawings, left_out = trusted(drawings)
    for score in score_drawings(lab.recognizer, drawings):
        entry = lab.entry(score["name"])
        rows.append(f"| {score['name']} | {score['slot'] or ''} | **{percent(score['top1'])}** | "
                    f"{percent(score['top3'])} | {score['n']} | {percent(app_accuracy(entry)[0] if entry else None)} "
                    f"| {percent(bench_top1(lab, entry))} |")
    suspects = (f" {left_out} suspect drawing{'' if left_out == 1 else 's'} (a label in no model's top 5) left out "
                "until reviewed (python -m recognizer.drawings review).") if left_out else ""  # fmt: skip
    return "\n".join(rows) + ("\n\nCase folded as in the drawing benchmark: a model's 'o' is right for 'O', 'o' and "
                              "'O/o'. Models that read only digits are not scored." + suspects)


def bench_top1(lab: ServedModels, entry: ModelEntry | None) -> float | None:
    """The drawing-benchmark top-1 the model's card shows (``model_cards.drawn``: a dict, or a record)."""
    figures = drawn(lab, entry) if entry else None
    return figures.get("top1") if isinstance(figures, dict) else getattr(figures, "top1", None)


def thumbnail(d: Drawing) -> str:
    """The canvas as drawn (its PNG, inline), on white: its background is transparent."""
    data = base64.b64encode(d.canvas_png).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" width="{THUMB}" height="{THUMB}" alt="kept as '
            f'{html.escape(d.character)}" style="background:#fff;border:1px solid #ccc;border-radius:6px">')


def caption(d: Drawing) -> str:
    """'kept as O/o · residual_cnn-byclass: 0 · ...': the label and what each slot said."""
    said = " · ".join(f"{a['model']}: {a['top'][0][0]}" for a in d.answers if a.get("top"))
    return f"kept as {d.character} · {said}" if said else f"kept as {d.character}"


def recent_html(lab: ServedModels, n: int = RECENT) -> str:
    """The ``n`` drawings kept last, newest first: each thumbnail with its label and what each slot said."""
    drawings = lab.store.recent(n) if lab.store else []
    if not drawings:
        return "<p><em>No drawings kept yet.</em></p>"
    figures = "".join(
        f'<figure class="kept-item" style="margin:0;width:{THUMB + 40}px">{thumbnail(d)}'
        f'<figcaption style="font-size:0.8em;line-height:1.3">{"<br>".join(map(html.escape, caption(d).split(" · ")))}'
        '</figcaption></figure>'
        for d in drawings)
    return f'<div style="display:flex;flex-wrap:wrap;gap:12px">{figures}</div>'


def dataset_zip(lab: ServedModels) -> str | None:
    """Every kept drawing as one zip (EMNIST IDX, PNGs, CSV) in Gradio's upload folder; None when none."""
    if lab.store is None or lab.store.count() == 0:
        return None
    folder = Path(gr.utils.get_upload_folder()) / "kept-drawings"
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=folder)) / f"kept-drawings-{time.strftime('%Y%m%d-%H%M%S')}.zip"
    write_dataset_zip(lab.store.all(), path)
    return str(path)


@dataclass(eq=False)
class KeptView:
    """The tab's components; ``refresh`` recomputes every value from the store."""

    lab: ServedModels
    summary: gr.Markdown
    scores: gr.Markdown
    recent: gr.HTML
    make_zip: gr.Button
    download: gr.File

    def outputs(self) -> list[gr.components.Component]:
        return [self.summary, self.scores, self.recent]

    def refresh(self) -> dict:
        try:
            drawings = list(self.lab.store.all()) if self.lab.store else []
            scores = scores_table(self.lab, drawings) + "\n\n#### Answer sets on the kept drawings\n\n" + sets_table(
                self.lab, drawings)
            return {self.summary: kept_summary(self.lab), self.scores: scores,
                    self.recent: recent_html(self.lab)}  # fmt: skip
        except StoreUnavailable as err:
            log.warning("kept drawings unreadable: %s", err.reason)
            return {self.summary: f"⚠ The kept drawings cannot be read: {self.lab.shown_reason(err)}.",
                    self.scores: "", self.recent: ""}  # fmt: skip

    def on_download(self) -> dict:
        """The dataset zip, made now, as the file to download (hidden while there is none)."""
        try:
            path = dataset_zip(self.lab)
        except StoreUnavailable as err:
            gr.Warning(f"The kept drawings cannot be read: {self.lab.shown_reason(err)}.")
            path = None
        if path is None and self.lab.store is not None:
            gr.Info("No drawings are kept yet.")
        return gr.update(value=path, visible=path is not None)


def build_kept_tab(lab: ServedModels) -> KeptView:
    """Lay out the tab; it refreshes when selected (``follow`` adds the Draw tab's keep events)."""
    with gr.Tab("Kept drawings", elem_id="kept-tab") as tab:
        summary = gr.Markdown(elem_id="kept-summary")
        gr.Markdown("### Every model on the kept drawings (a live benchmark of real drawings)")
        scores = gr.Markdown(elem_id="kept-scores")
        gr.Markdown(f"### The {RECENT} kept last, newest first")
        recent = gr.HTML(elem_id="kept-recent")
        with gr.Row():
            make_zip = gr.Button("Download every kept drawing as a dataset (zip)", elem_id="kept-zip", size="sm")
            download = gr.File(label="Dataset: 28×28 EMNIST-form images and labels, the PNGs, a CSV",
                               elem_id="kept-download", interactive=False, visible=False)  # fmt: skip
    view = KeptView(lab, summary, scores, recent, make_zip, download)
    tab.select(view.refresh, None, view.outputs(), **QUIET)
    make_zip.click(view.on_download, None, download, **QUIET)
    return view


def follow(view: KeptView, events: list) -> None:
    """Refresh the view after each of ``events`` (a keep, an undo)."""
    for event in events:
        event.then(view.refresh, None, view.outputs(), **QUIET)


def sets_table(lab: ServedModels, drawings: Sequence[Drawing]) -> str:
    """Each served model with sets, per mode, on the kept drawings: top-1, coverage and mean set size at the app's
    level (the same figures as ``python -m training answers`` gives for the kept test part)."""
    if lab.recognizer is None or not drawings:
        return "*No kept drawings to measure the answer sets on yet.*"
    x = np.stack([d.x28 for d in drawings])
    truth = np.array([merged_label(d.character) for d in drawings], np.int64)
    rows = [f"| model | mode | drawings | top-1 | set holds the truth (stated {lab.level:.0%}) | mean set size |",
            "|---|---|---|---|---|---|"]
    for entry in lab.models:
        if entry.answers is None:
            continue
        figures = set_figures(entry, lab.recognizer.predict_batch(entry.name, x)[0], truth, lab.level)
        for mode, f in figures.items():
            size = "n/a" if f["set_size"] is None else f"{f['set_size']:.2f}"
            rows.append(f"| {entry.name} | {MODE_TITLES[mode]} | {f['n']} | {_pct(f['top1'])} | {_pct(f['coverage'])} "
                        f"| {size} |")
    return "\n".join(rows)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
