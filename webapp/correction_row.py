"""The Draw tab's correction row: "What did you mean?", "Keep this drawing" (off by default) and Undo.

Ticking "Keep this drawing" keeps the drawing the visitor's session holds (``CanvasMemory.png`` and ``.analysis``,
set by the Draw tab when it read the drawing; where the page answered it, the server answers its model input now:
a kept record never holds numbers from a page) as the character they picked, through ``webapp.keep_store``; the page
confirms with the id and offers to undo that one drawing. Undo deletes only the id in the visitor's own session
state, so no visitor can delete another's drawing from the page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from .analysis import analyse_x28
from .events import QUIET
from .keep_store import STORED, KeepRefused, character_choices, keep_drawing, undo_keep
from .limits import client_keys
from .served import ServedModels

log = logging.getLogger("webapp")


def off_line(lab: ServedModels) -> str:
    """What the row says before anything is kept: nothing when keeping is on, else why it is off."""
    return f"⚠ Keeping drawings is off: {lab.keep_off}." if lab.keep_off else ""


@dataclass(eq=False)
class KeepRow:
    """The row's components and handlers; ``memory`` is the Draw tab's ``CanvasMemory`` state."""

    lab: ServedModels
    memory: gr.State
    meant: gr.Dropdown
    keep_on: gr.Checkbox
    status: gr.Markdown
    undo: gr.Button
    events: list[Any] = field(default_factory=list)  # the keep and undo events: the Kept drawings view follows them

    def on_keep(self, on: bool, character: str | None, memory: Any, request: gr.Request | None = None) -> dict:
        """The visitor ticked (keep the drawing as ``character``) or unticked (take it back) the box; a keep counts
        against the visitor's rate (their address and session)."""
        if not on:
            return self.on_undo(memory)
        analysis = memory.analysis
        if analysis is None and memory.x28 is not None:  # the page answered it: the record holds the server's answers
            analysis = analyse_x28(self.lab, memory.x28, list(memory.names), saliency=False, mode=memory.mode)
        try:
            drawing_id = keep_drawing(self.lab, memory.png, analysis, character, memory.strokes,
                                      memory.source, client_keys(request))  # fmt: skip
        except KeepRefused as err:
            return {self.keep_on: False, self.status: f"⚠ {err.message}", self.undo: gr.update(),
                    self.memory: memory}  # fmt: skip
        memory.kept_id = drawing_id
        log.info("kept drawing %s as %r", drawing_id, character)
        return {self.keep_on: True, self.status: f"✓ Kept drawing {drawing_id} as **{character}**.",
                self.undo: gr.update(visible=True), self.memory: memory}  # fmt: skip

    def on_undo(self, memory: Any) -> dict:
        """Delete the drawing this visitor kept last (the id in their session), and only that one."""
        drawing_id, memory.kept_id = memory.kept_id, None
        if drawing_id and undo_keep(self.lab, drawing_id):
            log.info("undid drawing %s", drawing_id)
            text = f"↶ Deleted drawing {drawing_id}: nothing of it is kept."
        else:
            text = off_line(self.lab) or "Nothing to undo."
        return {self.keep_on: False, self.status: text, self.undo: gr.update(visible=False), self.memory: memory}

    def on_meant(self, character: str | None, on: bool, memory: Any, request: gr.Request | None = None) -> dict:
        """Another character picked while this drawing is kept: keep it as that one instead (nothing else changes
        while the box is unticked)."""
        if not on or not memory.kept_id:
            return dict.fromkeys([self.keep_on, self.status, self.undo, self.memory], gr.skip())
        undo_keep(self.lab, memory.kept_id)
        memory.kept_id = None
        return self.on_keep(True, character, memory, request)

    def wire(self) -> None:
        outputs = [self.keep_on, self.status, self.undo, self.memory]
        self.events = [
            self.keep_on.input(self.on_keep, [self.keep_on, self.meant, self.memory], outputs, **QUIET),
            self.undo.click(self.on_undo, self.memory, outputs, **QUIET),
            self.meant.input(self.on_meant, [self.meant, self.keep_on, self.memory], outputs, **QUIET),
        ]


def build_keep_row(lab: ServedModels, memory: gr.State) -> KeepRow:
    """Lay out the row (under the slots' answers) and wire it."""
    with gr.Column(elem_id="correction"):
        with gr.Group(elem_id="keep-row"), gr.Row(equal_height=True):
            meant = gr.Dropdown(choices=character_choices(), value=None, label="What did you mean?",
                                elem_id="meant", interactive=True, filterable=True)  # fmt: skip
            keep_on = gr.Checkbox(value=False, label="Keep this drawing", info=STORED, elem_id="keep-on",
                                  interactive=lab.keep_off is None)  # fmt: skip
        status = gr.Markdown(off_line(lab), elem_id="keep-status")
        undo = gr.Button("Undo: delete the drawing I kept", visible=False, variant="secondary", size="sm",
                         elem_id="undo-keep")  # fmt: skip
    row = KeepRow(lab=lab, memory=memory, meant=meant, keep_on=keep_on, status=status, undo=undo)
    row.wire()
    return row
