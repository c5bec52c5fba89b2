"""The EMNIST lab's web app (Gradio): one module per tab around one ``ServedModels`` (webapp/served.py), and the
API endpoints. ARCHITECTURE.md maps every file; the floors, from the bottom:

- ``limits`` (the store's size, the per-client rates), ``analysis_records`` (the records of one reading),
  ``answer_words``, ``canvas`` (+ canvas.js), ``results`` (the Results tab, from the tables' JSON), ``events``;
- ``served`` (the models, opened once);
- ``analysis`` (one input through the slots' models, no Gradio), ``draw_display``, ``draw_memory``, ``keep_store``,
  ``model_cards``;
- the tabs (``draw``, ``kept_drawings_tab``, ``embeddings_tab``, ``models_tab``), the Draw tab's ``correction_row``
  and ``api``; then ``demo`` (``build_demo``, ``launch``), which puts them on one page. ``app.py`` imports
  ``webapp.demo``; this file only sets what must be set before gradio is imported.

Like ``recognizer``, it never imports torch or ``training``. ``app.py`` beside it is the entry point.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no telemetry, no version check
