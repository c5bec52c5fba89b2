"""What the app serves, in words: the page's status line, each model's card, and the "Models and API" tab.

Plain markdown from the lab's state; the draw tab shows ``model_card`` under each slot's dropdown.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from recognizer.manifest import ModelEntry

from .served import ServedModels

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


def status_markdown(lab: ServedModels) -> str:
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


AUGMENT_WORDS = {"rotate": "rotation ±{:g}°", "shear": "shear ±{:g}°", "scale": "scale ±{:.0%}",
                 "translate": "shift ±{:.0%}", "elastic": "elastic {:g} px", "stroke": "stroke width p {:g}",
                 "contrast": "contrast ±{:.0%}", "blur": "blur σ ≤ {:g}"}  # fmt: skip


def augmentation_words(knobs: dict[str, Any]) -> str:
    """The augmentation knobs that are on, in words ('none' when all are off)."""
    on = [AUGMENT_WORDS.get(k, k + " {}").format(v) for k, v in knobs.items() if v]
    return ", ".join(on) or "none"


def recipe_lines(e: ModelEntry) -> list[str]:
    """What a lab model was trained on and how (its manifest ``recipe``); nothing for the reproduction's models."""
    r = e.recipe
    if not r:
        return []
    schedule = (f"cosine schedule, warm-up {r.get('warmup_epochs', 0)} epoch(s)" if r.get("schedule") == "cosine"
                else "plateau schedule")  # fmt: skip
    smoothing, ema = r.get("label_smoothing"), r.get("ema_decay")
    steps = [schedule] + ([f"label smoothing {smoothing:g}"] if smoothing else []) + ([f"EMA {ema:g}"] if ema else [])
    pool = " (every pool image: those without a byclass label with partial labels)" if r.get("pool_images") == "all" \
        else ""
    return [f"trained on **{r.get('n_train', 0):,} images**{pool}, {r.get('images_seen', 0):,} images seen "
            f"({r.get('epochs_run', '?')} epochs, profile {r.get('profile', '?')})",
            f"augmentation: {augmentation_words(r.get('augmentation', {}))} · {', '.join(steps)} · "
            f"{r.get('optimizer', '?')} lr {r.get('lr', '?'):g}, batch {r.get('batch_size', '?')}"]


def drawn(lab: ServedModels, e: ModelEntry) -> dict[str, Any]:
    """The model's drawing-benchmark figures: the export's own for a lab model, else the committed benchmark's
    (``assets/drawbench/results.json``) for this very file; {} when neither has one."""
    return e.metrics.get("drawbench") or lab.drawbench_figures().get(e.sha256) or {}


def drawing_line(lab: ServedModels, e: ModelEntry) -> str | None:
    """The drawing benchmark's top-1 and top-3, beside the validation figure the default-slot rule compares."""
    d = drawn(lab, e)
    if not d:
        return None
    validation = e.metrics.get("best_val_accuracy")
    return (f"drawings (drawing benchmark) top-1 **{percent(d.get('top1'))}**, top-3 {percent(d.get('top3'))} "
            f"on {d.get('drawings', 0):,} drawings" + (f" · validation {percent(validation)}" if validation else ""))


def slot_line(e: ModelEntry) -> str | None:
    """The default-slot rule's decision for a lab model, with the figures it compared."""
    rule = e.slot_rule
    if not rule:
        return None
    where = f"default in the {rule['slot']} slot" if rule.get("takes_slot") else "selectable, not the default"
    return f"{where}: {rule.get('reason', '')}"


def model_card(lab: ServedModels, name: str | None) -> str:
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
    card = (
        f"**{e.name}** · {e.family or 'model'}  \n"
        f"{e.split or '?'} ({classes}) · protocol {e.protocol or '?'} · profile {e.profile or '?'}  \n"
        f"{accuracy_line(e)}  \n"
        f"weighted F1 {percent(m.get('weighted_f1'))} (training device) · "
        f"{epochs} epoch{'' if epochs == 1 else 's'} · trained in {duration(seconds)}"
        + (f" on {t['device']}" if t.get("device") else "")
    )
    extra = [*recipe_lines(e), drawing_line(lab, e), slot_line(e)]
    return "  \n".join([card, *(line for line in extra if line)])


def trained_on(e: ModelEntry) -> str:
    """Images trained on, where the manifest says (lab models)."""
    n = e.recipe.get("n_train")
    return f"{n:,} images" if isinstance(n, int) else "–"


def models_table(lab: ServedModels) -> str:
    """Every served model with its test figures, then the unavailable and the not exported ones, with why."""
    if lab.problem:
        return status_markdown(lab)
    rows = ["| model | family | split | protocol | profile | slot | test accuracy in this app (ONNX Runtime) "
            "| on the training device | weighted F1 | epochs | training | trained on | drawings top-1 |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in lab.models:
        m = e.metrics
        rows.append(f"| {e.name} | {e.family} | {e.split} | {e.protocol} | {e.profile} | {e.slot or ''} | "
                    f"**{percent(app_accuracy(e)[0])}** | {percent(m.get('test_accuracy'))} ({training_device(e)}) | "
                    f"{percent(m.get('weighted_f1'))} | "
                    f"{m.get('epochs_run', e.training.get('epochs', '–'))} | {duration(m.get('train_seconds'))} | "
                    f"{trained_on(e)} | {percent(drawn(lab, e).get('top1'))} |")
    text = "\n".join(rows)
    if lab.unavailable:
        text += "\n\n**Unavailable**\n\n" + "\n".join(f"- **{n}**: {r}" for n, r in lab.unavailable.items())
    if lab.skipped:
        text += "\n\n**Not exported**\n\n" + "\n".join(f"- **{s.name or s.run_id}**: {s.reason}" for s in lab.skipped)
    return text


def build_models_tab(lab: ServedModels) -> None:
    with gr.Tab("Models and API"):
        gr.Markdown(models_table(lab))
        gr.Markdown(API_HELP)
