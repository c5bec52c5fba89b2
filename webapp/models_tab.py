"""The "Models and API" tab: the served models' table (webapp/model_cards.py) and how to call the API."""

from __future__ import annotations

import gradio as gr

from .model_cards import models_table
from .served import ServedModels

API_HELP = """
### API

Three named endpoints; call them with [`gradio_client`](https://www.gradio.app/guides/getting-started-with-the-python-client):

```python
from gradio_client import Client, handle_file
client = Client("http://127.0.0.1:7860/")
answer = client.predict(handle_file("letter.png"), api_name="/predict")          # three default slots
answer = client.predict(handle_file("letter.png"), 3, False, "lenet5-byclass", api_name="/predict")
models = client.predict(api_name="/models")
kept = client.predict(handle_file("letter.png"), "A", api_name="/keep")          # keep it, labelled A
```

`/predict(image, top_k=5, include_input=True, models="")` returns `{"ok", "error", "agree", "models": [{"slot",
"model", "top": [{"char", "display", "probability"}], "latency_ms"}], "input": 28x28 list or null}`; a bad image gives
`ok: false` and `error` saying why. `models` is an optional comma-separated list of model names to ask instead of
the three slots. `/models` returns the loaded models with their metrics, the slots, and the unavailable or skipped
models with the reason. `/keep(image, character)` keeps the drawing with the character you meant (one of the 62, or
e.g. `"O/o"` to leave the case open) and returns `{"ok", "id", "error"}`, when this server keeps drawings.
Without Gradio: `curl --data-binary @letter.png "http://127.0.0.1:7860/api/predict"` (and `/api/keep?char=A`).
"""


def build_models_tab(lab: ServedModels) -> None:
    with gr.Tab("Models and API"):
        gr.Markdown(models_table(lab))
        gr.Markdown(API_HELP)
