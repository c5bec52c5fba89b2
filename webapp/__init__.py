"""The EMNIST lab's web app (Gradio): one module per tab around one ``ServedModels`` (webapp/served.py), and the
API endpoints. ARCHITECTURE.md maps every file; the floors, from the bottom:

- ``served`` (the models, opened once), ``answers`` (the records of one reading), ``canvas`` (+ canvas.js),
  ``results`` (the Results tab, from the tables' JSON), ``events``;
- ``analysis`` (one input through the slots' models, no Gradio), ``draw_display``, ``draw_memory``, ``keep_store``,
  ``model_cards``;
- the tabs (``draw``, ``kept_drawings_tab``, ``embeddings_tab``, ``models_tab``), the Draw tab's ``correction_row``
  and ``api``; then ``demo`` (``build_demo``, ``launch``), which puts them on one page.

Like ``recognizer``, it never imports torch or ``training``. ``app.py`` beside it is the entry point.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no telemetry, no version check

from .demo import build_demo, launch  # noqa: E402

__all__ = ["build_demo", "launch"]
