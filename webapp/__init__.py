"""The EMNIST lab's web app (Gradio): one module per tab around one ``ServedModels`` (webapp/served.py), and the
two API endpoints.

- ``served``: the state (models opened once, embeddings and results read from assets/).
- ``analysis``: one input through the slots' models (no Gradio), used by the draw tab and /predict.
- ``draw``, ``embeddings_tab``, ``results``, ``models_tab``: each tab's values, layout and events.
- ``api``: /predict and /models (``gr.api``). ``demo``: ``build_demo`` and ``launch``.

Like ``recognizer``, it never imports torch or ``training``. ``app.py`` beside it is the entry point.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no telemetry, no version check

from .demo import build_demo, launch  # noqa: E402

__all__ = ["build_demo", "launch"]
