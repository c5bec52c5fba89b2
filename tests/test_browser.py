"""A person's path through the app in a real browser: draw characters one after another, see three predictions,
use the canvas's own tools, open the maps and the results.

Only the clicks a person makes: the mouse on the canvas, Clear, the canvas's own icons, the tabs. Drives
Debian's chromium through Playwright (tests/browser_support.py). Screenshots go to tests/output/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_support import REAL_ASSETS, REAL_MODELS, serve, shipped_or_tiny_models
from browser_support import (
    CHARACTERS,
    answered_by,
    app_page,
    canvas_ink,
    draw,
    events,
    in_viewport,
    need_browser,
    settled,
    slot_answers,
    touch_draw,
    touch_tap,
    wait_until,
)

from recognizer.answers import shape
from recognizer.inference import Recognizer
from recognizer.labels import same_character
from webapp.analysis import analyse, prepare
from webapp.answer_words import said
from webapp.canvas import canvas_value
from webapp.results import results_views

OUTPUT = Path(__file__).parent / "output"
EMPTY_INK = 400  # dark pixels on an empty canvas's screenshot (its icons); a drawn character has thousands
SHIPPED = (REAL_MODELS / "manifest.json").exists()

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory):
    need_browser()
    models, assets = shipped_or_tiny_models(tmp_path_factory.mktemp("browser-models"))
    import app

    demo = app.build_demo(models, assets, drawings=tmp_path_factory.mktemp("kept") / "drawings.sqlite3")
    url = serve(demo)
    try:
        yield url, demo.emnist_lab
    finally:
        demo.close()


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory):
    """The app started with --no-browser-inference: the server answers every drawing."""
    need_browser()
    models, assets = shipped_or_tiny_models(tmp_path_factory.mktemp("browser-models"))
    import app

    demo = app.build_demo(models, assets, drawings=tmp_path_factory.mktemp("kept") / "drawings.sqlite3",
                          page_inference=False)
    url = serve(demo)
    try:
        yield url, demo.emnist_lab
    finally:
        demo.close()


def answering_app(request: pytest.FixtureRequest, answerer: str):
    """The app where ``answerer`` ("page" or "server") answers the drawings."""
    return request.getfixturevalue("app_url" if answerer == "page" else "server_url")


def wait_for_text(page, selector: str, needle: str, limit: float = 60.0) -> str:
    """The element's text once it contains ``needle`` (the page updates asynchronously)."""
    text = ""

    def shows() -> str | None:
        nonlocal text
        text = page.locator(selector).inner_text()
        return text if needle in text else None

    try:
        return wait_until(shows, f"{selector} showing {needle!r}", limit)
    except AssertionError as err:
        raise AssertionError(f"{err}; it shows {text!r}") from None


def tops(answers: list[str]) -> list[str]:
    """Each slot's top answer as shown ('✓ L/l 99.1% · 1.2 ms' -> 'L/l'; '' when none)."""
    return [a.split()[1] if len(a.split()) > 1 else "" for a in answers]


def read_as(page, char: str, limit: float = 30.0) -> list[str]:
    """Wait until every slot's top answer is ``char``, as ``labels.same_character`` decides (a merged class's 'L/l'
    is an L; a byclass 't' is not a 'T'), and every event the page sent is answered."""
    def answered() -> list[str] | None:
        answers = slot_answers(page)
        shown = [top.split("/")[0] for top in tops(answers)]
        return answers if all(top and same_character(top, char) for top in shown) else None

    try:
        wait_until(answered, f"all three slots reading {char!r}", limit)
    except AssertionError as err:
        raise AssertionError(f"{err}; the slots show {slot_answers(page)}") from None
    settled(page)
    answers = slot_answers(page)
    assert answered(), f"the slots read {char!r}, then {answers}"
    return answers


def ready(page) -> bool:
    """The canvas shows no ink, the page the ready state and no answer."""
    return (canvas_ink(page) < EMPTY_INK and slot_answers(page) == ["", "", ""]
            and "Draw a character" in page.locator("#status").inner_text())


def assert_cleared(page) -> None:
    """The ready state after Clear, and still so once every event the page raised before Clear is answered (a
    change raised before Clear may arrive after it: it must not bring the answers back)."""
    wait_until(lambda: ready(page), "an empty canvas and the ready state after Clear", 15)
    settled(page)
    assert ready(page), (canvas_ink(page), slot_answers(page), page.locator("#status").inner_text())


def shows_the_canvas_answers(page, lab) -> list[str]:
    """The slots' answers on the page are the app's own answers to the drawing now on the canvas (its PNG, as the
    canvas sends it, through the app's decoding and models): what the page shows follows the drawing."""
    settled(page)
    url = page.evaluate("document.querySelector('#sketch canvas').toDataURL('image/png')")
    names = lab.slot_defaults()
    if page.locator("#sketch canvas").get_attribute("data-answerer") == "page":  # the page's copies of the models
        x28, _, _ = prepare(canvas_value(url))
        copies = Recognizer(lab.models_dir / "page")
        said_by = [said(shape(lab.recognizer.entry(n), copies.predict(n, x28), "anything", lab.level)) for n in names]
    else:
        said_by = [said(r.prediction) for r in analyse(lab, canvas_value(url), names, saliency=False).slots]
    expected = [text.replace("**", "") for text in said_by]  # '4 35%' or 'o 48% or 0 41%'
    shown = [a.split(" · ")[0].split(" (")[0].lstrip("✓✗ ") for a in slot_answers(page)]
    assert shown == expected, (shown, expected)
    return shown


def test_draw_a_character_and_see_three_predictions(app_url) -> None:
    url, lab = app_url
    OUTPUT.mkdir(exist_ok=True)
    with app_page(url) as page:
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        assert "Draw a character" in page.locator("#status").inner_text()
        assert page.locator("#answer-line").is_hidden()  # the phone's answer line: a desktop has the slots
        assert "exported_models" not in page.locator("body").inner_text()  # no server paths on the page
        draw(page, CHARACTERS["A"])  # straight away: no tool to pick first

        infos = [wait_for_text(page, f"#info-{i}", " ms") for i in range(3)]
        for i, info in enumerate(infos):
            assert "%" in info, info
            label = page.locator(f"#label-{i}").inner_text()
            assert label.count("%") >= 5, label  # the top-5 list with probabilities
        assert "agree" in page.locator("#agreement").inner_text()
        assert page.locator("#model-input img").count() == 1  # the 28x28 input, enlarged
        page.screenshot(path=str(OUTPUT / "app-draw.png"), full_page=True)

        page.get_by_role("tab", name="Embeddings", exact=True).click()
        if lab.embedding_file(lab.slot_defaults()[0]).exists():
            note = wait_for_text(page, "#embedding-note", "lands at", limit=30)
            assert "your drawing" in note
            page.locator("#scatter img").first.wait_for(timeout=30_000)  # the map, drawn by matplotlib
        else:  # shipped models whose maps are not made yet: the tab says so
            wait_for_text(page, "#embedding-note", "No map", limit=30)
        page.screenshot(path=str(OUTPUT / "app-embeddings.png"), full_page=True)

        # Results: one sub-tab per table, its verdicts first and its figures beside it, served from assets/.
        page.get_by_role("tab", name="Results", exact=True).click()
        view = results_views(lab.assets_dir / "results")[0]
        assert view.sections, "the Results tab has no table to show"  # the committed results, or the tiny ones
        section = next(s for s in view.sections if s.figures)
        page.get_by_role("tab", name=section.tab, exact=True).first.click()
        verdicts = page.locator(".results-verdicts").filter(has_text=section.title).first
        verdicts.wait_for(timeout=15_000)
        page.locator(".results-figures img").first.wait_for(timeout=15_000)
        page.wait_for_function("() => [...document.querySelectorAll('.results-figures img')]"
                               ".filter(img => img.offsetParent !== null)"
                               ".every(img => img.complete && img.naturalWidth > 0)", timeout=15_000)
        page.screenshot(path=str(OUTPUT / "app-results.png"), full_page=True)
        assert not errors, errors


@pytest.mark.skipif(not SHIPPED, reason="reading the characters needs the shipped models (exported_models/)")
@pytest.mark.parametrize("answerer", ["page", "server"])
def test_character_after_character_with_only_clear_between(request, answerer: str) -> None:
    """Draw, read, Clear, draw again: six characters with the mouse and nothing else clicked, answered in the page
    (the app's default) and by the server (--no-browser-inference)."""
    url, _ = answering_app(request, answerer)
    with app_page(url) as page:
        answered_by(page, answerer)
        for char in "7LTXZH":
            draw(page, CHARACTERS[char])
            read_as(page, char)
            assert canvas_ink(page) > 10 * EMPTY_INK  # the character is on the canvas, as drawn
            page.locator("#clear").click()
            assert_cleared(page)
        page.screenshot(path=str(OUTPUT / f"app-after-six-characters-{answerer}.png"), full_page=True)


@pytest.mark.skipif(not SHIPPED, reason="reading the characters needs the shipped models (exported_models/)")
def test_a_page_without_its_model_files_falls_back_to_the_server_and_says_so(tmp_path: Path) -> None:
    """The shipped models without their page copies (exported_models/page/): the page says the server answers, and
    why, and a drawing is read as before."""
    need_browser()
    models = tmp_path / "models"
    models.mkdir()
    for item in REAL_MODELS.iterdir():
        if item.name != "page":
            (models / item.name).symlink_to(item)
    import app

    demo = app.build_demo(models, REAL_ASSETS, drawings=None)
    url = serve(demo)
    try:
        with app_page(url) as page:
            line = answered_by(page, "server")
            assert "page" in line.split("by the server:")[1], line  # why: the page's model files
            draw(page, CHARACTERS["7"])
            read_as(page, "7")
            assert page.locator("#sketch canvas").get_attribute("data-answerer") == "server"
    finally:
        demo.close()


@pytest.mark.skipif(not SHIPPED, reason="reading the characters needs the shipped models (exported_models/)")
def test_the_canvas_own_tools_still_work(app_url) -> None:
    """Undo, the eraser (which stays picked) and the trash icon, and drawing again after each; after each the
    answers follow what is on the canvas, not only the ink."""
    url, lab = app_url
    with app_page(url) as page:
        sketch = page.locator("#sketch")
        draw(page, CHARACTERS["7"])
        read_as(page, "7")
        sketch.locator('button[aria-label="Undo"]').click()  # one stroke: undo empties the canvas, and the answers go
        assert_cleared(page)

        draw(page, CHARACTERS["L"])
        before = read_as(page, "L")
        drawn = canvas_ink(page)
        eraser = sketch.locator('button[aria-label="Erase"]')
        eraser.click()
        sent = events(page)["sent"]
        draw(page, [[(0.25, -0.1), (0.25, 1.1)]], steps=12)  # rub out the L's upright: what is left is no L
        wait_until(lambda: canvas_ink(page) < drawn / 2, "the eraser taking ink off", 15)
        # The stroke reaches Gradio's queue when its change event is dispatched, which may be frames after the
        # mouse-up on a busy machine: wait for it to be sent before waiting for every sent event to be answered.
        wait_until(lambda: events(page)["sent"] > sent, "the eraser stroke sent to the server", 15)
        after = shows_the_canvas_answers(page, lab)
        assert after != [" ".join(a.split()[1:3]) for a in before], after
        assert eraser.get_attribute("aria-pressed") == "true"  # the person's pick stays, once the page has settled

        sketch.locator('button[aria-label="Clear canvas"]').click()  # the canvas's own trash icon
        assert_cleared(page)
        draw(page, CHARACTERS["T"])  # no tool picked by hand: the brush is back
        read_as(page, "T")


@pytest.mark.skipif(not SHIPPED, reason="reading the characters needs the shipped models (exported_models/)")
@pytest.mark.parametrize("device, width, height, answerer", [
    ("phone", 390, 844, "page"), ("phone", 390, 844, "server"), ("tablet", 820, 1180, "page")])
def test_a_finger_draws_and_sees_the_answer_on_the_first_screen(request, device: str, width: int,
                                                               height: int, answerer: str) -> None:
    """On a phone or tablet, touch only: the canvas and the one-line answer share the first screen."""
    url, _ = answering_app(request, answerer)
    with app_page(url, viewport={"width": width, "height": height}, has_touch=True,
                  is_mobile=True, device_scale_factor=2) as page:
        answered_by(page, answerer)
        canvas = page.locator("#sketch canvas").first.bounding_box()
        assert canvas["width"] >= (0.9 * width if device == "phone" else 290)  # the screen's width on a phone
        touch_draw(page, CHARACTERS["7"])
        line = wait_until(lambda: (t := page.locator("#answer-line").inner_text()).count("7 ") == 3 and t,
                          "the answer line reading 7 three times", 30)
        assert "agree" in line and "%" in line
        assert in_viewport(page, "#sketch canvas") and in_viewport(page, "#answer-line"), (
            page.locator("#answer-line").bounding_box(), page.evaluate("window.scrollY"))
        assert "exported_models" not in page.locator("body").inner_text()
        page.screenshot(path=str(OUTPUT / f"app-{device}-{answerer}.png"))
        wait_until(lambda: page.locator(".saliency img").count() == 3, "the heat maps", 30)
        sent = settled(page)["sent"]
        # Chrome takes a tap that closely follows the drawing's touches for part of a gesture and makes no click of
        # it: tap again until the page sends Clear's event (what a person does), at most three times.
        for _ in range(3):
            touch_tap(page, "#clear")
            try:
                wait_until(lambda: events(page)["sent"] > sent, "Clear's event", 2)
                break
            except AssertionError:
                continue
        wait_until(lambda: "Draw a character" in page.locator("#answer-line").inner_text(), "the ready line", 15)
        assert canvas_ink(page) < EMPTY_INK


def kept_count(page) -> int:
    """The Kept drawings tab's count, as the page shows it ('3 drawings kept')."""
    text = wait_for_text(page, "#kept-summary", "kept")
    return int(text.split("drawing")[0].split()[-1])


def test_correct_keep_see_it_and_undo(app_url) -> None:
    """Draw with the mouse, say what it is, keep it, see the count rise and the drawing listed, undo it."""
    url, lab = app_url
    with app_page(url) as page:
        page.get_by_role("tab", name="Kept drawings", exact=True).click()
        before = kept_count(page)
        page.get_by_role("tab", name="Draw and compare", exact=True).click()
        draw(page, CHARACTERS["A"])
        for i in range(3):
            wait_for_text(page, f"#info-{i}", " ms")
        assert page.locator("#keep-on input").is_checked() is False  # off until the person ticks it
        assert "Nothing about you" in page.locator("#correction").inner_text()
        page.locator("#meant input").click()
        page.get_by_role("option", name="A", exact=True).click()
        page.locator("#keep-on input").check()
        status = wait_for_text(page, "#keep-status", "Kept drawing")
        drawing_id = status.split("Kept drawing")[1].split()[0]
        assert lab.store.get(drawing_id).character == "A"
        page.locator("#correction").scroll_into_view_if_needed()
        page.screenshot(path=str(OUTPUT / "kept-correction.png"), full_page=True)

        page.get_by_role("tab", name="Kept drawings", exact=True).click()
        wait_until(lambda: kept_count(page) == before + 1, "the count rising by one", 30)
        wait_for_text(page, "#kept-recent", "kept as A")
        wait_for_text(page, "#kept-scores", "%")  # every model scored on the kept drawings
        page.locator("#kept-zip").click()  # the dataset, made now
        wait_for_text(page, "#kept-download", ".zip")
        page.screenshot(path=str(OUTPUT / "kept-view.png"), full_page=True)

        page.get_by_role("tab", name="Draw and compare", exact=True).click()
        page.locator("#undo-keep").click()
        wait_for_text(page, "#keep-status", f"Deleted drawing {drawing_id}")
        assert lab.store.get(drawing_id) is None and page.locator("#undo-keep").is_hidden()
        page.get_by_role("tab", name="Kept drawings", exact=True).click()
        wait_until(lambda: kept_count(page) == before, "the count back where it was", 30)
