"""What the app serves, in words: the page's status line, each model's card and the models' table.

Plain markdown from the lab's state: the Draw tab shows ``model_card`` under each slot's dropdown, the Kept drawings
tab the figures beside its scores, the "Models and API" tab (webapp/models_tab.py) the table.
"""

from __future__ import annotations

from typing import Any

from recognizer.manifest import DrawBenchFigures, ModelEntry

from .served import ServedModels


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
    providers = lab.providers
    lines = [f"**{len(lab.models)} model(s)** loaded from `{lab.models_dir}`"
             + (f" ({', '.join(providers)})" if providers else "") + "."]
    lines += [f"⚠ Model **{name}** is unavailable: {reason}" for name, reason in lab.unavailable.items()]
    return "  \n".join(lines)


def training_device(entry: ModelEntry) -> str:
    """What trained the model, in words: the GPU's name where the run recorded one, else 'cuda' / 'cpu'."""
    t = entry.training
    gpu = (t.environment or {}).get("cuda_device")
    device = t.device
    return str(gpu) if gpu and device == "cuda" else str(device or "the training device")


def app_accuracy(entry: ModelEntry) -> tuple[float | None, int | None]:
    """The test accuracy the app itself gets: the whole test part scored through ONNX Runtime at export
    (``metrics.runtime_test_accuracy`` over ``runtime_n_test`` images); (None, None) for an older export."""
    accuracy, n = entry.metrics.runtime_test_accuracy, entry.metrics.runtime_n_test
    return (accuracy if isinstance(accuracy, (int, float)) else None), (n if isinstance(n, int) else None)


def accuracy_line(entry: ModelEntry) -> str:
    """The headline: the app's own accuracy (ONNX Runtime), the training device's figure beside it, labelled."""
    accuracy, n = app_accuracy(entry)
    trained = f"{percent(entry.metrics.test_accuracy)} on the training device ({training_device(entry)})"
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
    if r is None:
        return []
    if r.finetuned_from is not None:  # a fine-tune on kept drawings (training/finetune_kept.py)
        kept = given(r.kept_drawings, {})
        return [f"fine-tuned from **{given(r.finetuned_from.get('name'), '?')}** on "
                f"{given(kept.get('train'), '?')} kept drawings (+{given(r.pool_images_per_epoch, '?')} pool images "
                f"per epoch), epoch {given(r.chosen_epoch, '?')} chosen on {given(r.chosen_on, 'kept validation')}"]
    schedule = (f"cosine schedule, warm-up {given(r.warmup_epochs, 0)} epoch(s)" if r.schedule == "cosine"
                else "plateau schedule")  # fmt: skip
    smoothing, ema = r.label_smoothing, r.ema_decay
    steps = [schedule] + ([f"label smoothing {smoothing:g}"] if smoothing else []) + ([f"EMA {ema:g}"] if ema else [])
    pool = " (every pool image: those without a byclass label with partial labels)" if r.pool_images == "all" \
        else ""
    return [f"trained on **{given(r.n_train, 0):,} images**{pool}, {given(r.images_seen, 0):,} images seen "
            f"({given(r.epochs_run, '?')} epochs, profile {given(r.profile, '?')})",
            f"augmentation: {augmentation_words(given(r.augmentation, {}))} · {', '.join(steps)} · "
            f"{given(r.optimizer, '?')} lr {'?' if r.lr is None else f'{r.lr:g}'}, batch {given(r.batch_size, '?')}"]


def given(value: Any, default: Any) -> Any:
    """A record's field, or ``default`` where the manifest does not hold it."""
    return default if value is None else value


def drawn(lab: ServedModels, e: ModelEntry) -> DrawBenchFigures | None:
    """The model's drawing-benchmark figures: the export's own for a lab model, else the committed benchmark's
    (``assets/drawbench/results.json``) for this very file; None when neither has one."""
    committed = lab.drawbench_figures().get(e.sha256)
    return e.metrics.drawbench or (DrawBenchFigures.from_dict(committed) if committed else None)


def drawing_line(lab: ServedModels, e: ModelEntry) -> str | None:
    """The drawing benchmark's top-1 and top-3, beside the validation figure the default-slot rule compares."""
    d = drawn(lab, e)
    if d is None:
        return None
    validation = e.metrics.best_val_accuracy
    return (f"drawings (drawing benchmark) top-1 **{percent(d.top1)}**, top-3 {percent(d.top3)} "
            f"on {given(d.drawings, 0):,} drawings" + (f" · validation {percent(validation)}" if validation else ""))


def slot_line(e: ModelEntry) -> str | None:
    """The default-slot rule's decision for a lab model, with the figures it compared."""
    rule = e.slot_rule
    if rule is None:
        return None
    where = f"default in the {rule.slot} slot" if rule.takes_slot else "selectable, not the default"
    return f"{where}: {given(rule.reason, '')}"


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
    epochs = given(m.epochs_run, given(t.epochs, "–"))
    seconds = m.train_seconds
    classes = f"{len(e.labels)} classes" + (", case merged for 15 letters" if e.merged else "")
    card = (
        f"**{e.name}** · {e.family or 'model'}  \n"
        f"{e.split or '?'} ({classes}) · protocol {e.protocol or '?'} · profile {e.profile or '?'}  \n"
        f"{accuracy_line(e)}  \n"
        f"weighted F1 {percent(m.weighted_f1)} (training device) · "
        f"{epochs} epoch{'' if epochs == 1 else 's'} · trained in {duration(seconds)}"
        + (f" on {t.device}" if t.device else "")
    )
    extra = [*recipe_lines(e), drawing_line(lab, e), slot_line(e)]
    return "  \n".join([card, *(line for line in extra if line)])


def trained_on(e: ModelEntry) -> str:
    """Images trained on, where the manifest says (lab models)."""
    n = e.recipe.n_train if e.recipe else None
    return f"{n:,} images" if isinstance(n, int) else "–"


def models_table(lab: ServedModels) -> str:
    """Every served model with its test figures, then the unavailable and the not exported ones, with why."""
    if lab.problem:
        return status_markdown(lab)
    rows = ["| model | family | split | protocol | profile | slot | test accuracy in this app (ONNX Runtime) "
            "| on the training device | weighted F1 | epochs | training | trained on | drawings top-1 |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in lab.models:
        m, d = e.metrics, drawn(lab, e)
        rows.append(f"| {e.name} | {e.family} | {e.split} | {e.protocol} | {e.profile} | {e.slot or ''} | "
                    f"**{percent(app_accuracy(e)[0])}** | {percent(m.test_accuracy)} ({training_device(e)}) | "
                    f"{percent(m.weighted_f1)} | "
                    f"{given(m.epochs_run, given(e.training.epochs, '–'))} | {duration(m.train_seconds)} | "
                    f"{trained_on(e)} | {percent(d.top1 if d else None)} |")
    text = "\n".join(rows)
    if lab.unavailable:
        text += "\n\n**Unavailable**\n\n" + "\n".join(f"- **{n}**: {r}" for n, r in lab.unavailable.items())
    if lab.skipped:
        text += "\n\n**Not exported**\n\n" + "\n".join(f"- **{s.name or s.run_id}**: {s.reason}" for s in lab.skipped)
    return text


