"""What the app serves, in words: the page's status line, each model's card, and the "Models and API" tab.

Plain markdown from the lab's state; the draw tab shows ``model_card`` under each slot's dropdown.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from recognizer.manifest import ModelEntry

from .lab import Lab

API_HELP = """
### API

Two named endpoints; call them with [`gradio_client`](https://www.gradio.app/guides/getting-started-with-the-python-client):

```python
from gradio_client import Client, handle_file
client = Client("http://127.0.0.1:7860/")
answer = client.predict(handle_file("letter.png"), api_name="/predict")          # three default slots
answer = client.predict(handle_file("letter.png"), 3, False, "lenet5-byclass", api_name="/predict")
models = client.predict(api_name="/models")
```

`/predict(image, top_k=5, include_input=True, models="")` returns `{"ok", "error", "agree", "models": [{"slot",
"model", "top": [{"char", "display", "probability"}], "latency_ms"}], "input": 28x28 list or null}`; a bad image gives
`ok: false` and `error` saying why. `models` is an optional comma-separated list of model names to ask instead of
the three slots. `/models` returns the loaded models with their metrics, the slots, and the unavailable or skipped
models with the reason.
"""


def percent(value: Any) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) else "–"


def duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def status_markdown(lab: Lab) -> str:
    """One block for the top of the page: what is loaded, what is not and why."""
    if lab.problem:
        return f"⚠ **No models are shipped yet**: {lab.problem}. Restart the app once they are exported."
    providers = sorted({p for ps in lab.recognizer.providers.values() for p in ps}) if lab.recognizer else []
    lines = [f"**{len(lab.models)} model(s)** loaded from `{lab.models_dir}`"
             + (f" ({', '.join(providers)})" if providers else "") + "."]
    lines += [f"⚠ Model **{name}** is unavailable: {reason}" for name, reason in lab.unavailable.items()]
    return "  \n".join(lines)


def training_device(entry: ModelEntry) -> str:
    """What trained the model, in words: the GPU's name where the run recorded one, else 'cuda' / 'cpu'."""
    t = entry.training
    gpu = (t.get("environment") or {}).get("cuda_device")
    device = t.get("device")
    return str(gpu) if gpu and device == "cuda" else str(device or "the training device")


def app_accuracy(entry: ModelEntry) -> tuple[float | None, int | None]:
    """The test accuracy the app itself gets: the whole test part scored through ONNX Runtime at export
    (``metrics.runtime_test_accuracy`` over ``runtime_n_test`` images); (None, None) for an older export."""
    m = entry.metrics
    accuracy, n = m.get("runtime_test_accuracy"), m.get("runtime_n_test")
    return (accuracy if isinstance(accuracy, (int, float)) else None), (n if isinstance(n, int) else None)


def accuracy_line(entry: ModelEntry) -> str:
    """The headline: the app's own accuracy (ONNX Runtime), the training device's figure beside it, labelled."""
    accuracy, n = app_accuracy(entry)
    trained = f"{percent(entry.metrics.get('test_accuracy'))} on the training device ({training_device(entry)})"
    if accuracy is None:  # exported before the runtime score was recorded: say whose figure this is
        return f"test accuracy **{trained}** (not scored through this app's runtime)"
    images = f" on {n:,} test images" if n else ""
    return f"test accuracy in this app **{percent(accuracy)}** (ONNX Runtime{images}) · {trained}"


def model_card(lab: Lab, name: str | None) -> str:
    """A short markdown card: what the model is and how well it reads its test set in this app."""
    if not name:
        return "*No model in this slot.*"
    if name in lab.unavailable:
        return f"⚠ **{name}** is unavailable: {lab.unavailable[name]}"
    e = lab.entry(name)
    if e is None:
        return f"⚠ Unknown model **{name}**."
    m, t = e.metrics, e.training
    epochs = m.get("epochs_run", t.get("epochs", "–"))
    seconds = m.get("train_seconds", t.get("train_seconds"))
    classes = f"{len(e.labels)} classes" + (", case merged for 15 letters" if e.merged else "")
    return (
        f"**{e.name}** · {e.family or 'model'}  \n"
        f"{e.split or '?'} ({classes}) · protocol {e.protocol or '?'} · profile {e.profile or '?'}  \n"
        f"{accuracy_line(e)}  \n"
        f"weighted F1 {percent(m.get('weighted_f1'))} (training device) · "
        f"{epochs} epoch{'' if epochs == 1 else 's'} · trained in {duration(seconds)}"
        + (f" on {t['device']}" if t.get("device") else "")
    )


def models_table(lab: Lab) -> str:
    """Every served model with its test figures, then the unavailable and the not exported ones, with why."""
    if lab.problem:
        return status_markdown(lab)
    rows = ["| model | family | split | protocol | profile | slot | test accuracy in this app (ONNX Runtime) "
            "| on the training device | weighted F1 | epochs | training |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in lab.models:
        m = e.metrics
        rows.append(f"| {e.name} | {e.family} | {e.split} | {e.protocol} | {e.profile} | {e.slot or ''} | "
                    f"**{percent(app_accuracy(e)[0])}** | {percent(m.get('test_accuracy'))} ({training_device(e)}) | "
                    f"{percent(m.get('weighted_f1'))} | "
                    f"{m.get('epochs_run', e.training.get('epochs', '–'))} | {duration(m.get('train_seconds'))} |")
    text = "\n".join(rows)
    if lab.unavailable:
        text += "\n\n**Unavailable**\n\n" + "\n".join(f"- **{n}**: {r}" for n, r in lab.unavailable.items())
    if lab.skipped:
        text += "\n\n**Not exported**\n\n" + "\n".join(f"- **{s.name or s.run_id}**: {s.reason}" for s in lab.skipped)
    return text


def build_models_tab(lab: Lab) -> None:
    with gr.Tab("Models and API"):
        gr.Markdown(models_table(lab))
        gr.Markdown(API_HELP)
