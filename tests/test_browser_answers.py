"""A person in a real browser meets answer sets and "What are you drawing?": a circle is "0 or O", a clear 7 is 7,
and with Letters chosen the circle reads as a letter.

Only the clicks a person makes (the mouse on the canvas, Clear, the radio button), in Debian's chromium through
Playwright (tests/browser_support.py). The shipped models only: the tiny test models have no calibrated sets.
Screenshots go to tests/output/.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from app_support import REAL_ASSETS, REAL_MODELS, free_port
from browser_support import CHARACTERS, app_page, draw, need_browser, slot_answers, wait_until

OUTPUT = Path(__file__).parent / "output"
CIRCLE = [[(0.5 + 0.4 * math.sin(2 * math.pi * k / 32), 0.5 - 0.45 * math.cos(2 * math.pi * k / 32))
           for k in range(33)]]  # fmt: skip

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory):
    need_browser()
    if not (REAL_MODELS / "manifest.json").exists():
        pytest.skip("the shipped models (with their calibrated sets) are not here")
    import app

    demo = app.build_demo(REAL_MODELS, REAL_ASSETS, drawings=None)
    _, url, _ = app.launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield url
    finally:
        demo.close()


def answers_once(page, done) -> list[str]:
    """The three slots' answer lines once ``done`` holds for them."""
    def shown() -> list[str] | None:
        answers = slot_answers(page)
        return answers if all(" ms" in a for a in answers) and done(answers) else None

    try:
        return wait_until(shown, "the answers", 60)
    except AssertionError as err:
        raise AssertionError(f"{err}; the slots show {slot_answers(page)}") from None


def first_char(answer: str) -> str:
    """'✓ O 100% · agrees ...' -> 'O' (the mark, then the most probable member)."""
    words = answer.split()
    return words[1].split("/")[0] if len(words) > 1 else ""


def test_a_circle_gets_a_set_a_seven_one_answer_and_letters_read_the_circle_as_a_letter(app_url) -> None:
    OUTPUT.mkdir(exist_ok=True)
    with app_page(app_url) as page:
        draw(page, CHARACTERS["7"])
        seven = answers_once(page, lambda a: all(first_char(x) == "7" for x in a))
        assert not any(" or " in a for a in seven), seven  # a clear 7: one character per slot
        assert all("agrees with the others" in a for a in seven), seven  # the mark says what it means

        page.locator("#clear").click()
        wait_until(lambda: slot_answers(page) == ["", "", ""], "the ready state after Clear", 15)
        draw(page, CIRCLE)
        circle = answers_once(page, lambda a: any(" or " in x for x in a))
        assert any("among these 90% of the time" in a for a in circle), circle
        assert " or " in page.locator("#agreement").inner_text()
        page.screenshot(path=str(OUTPUT / "answers-circle-anything.png"), full_page=True)

        page.get_by_label("Letters").check()  # "What are you drawing?"
        letters = answers_once(page, lambda a: all(first_char(x).isalpha() for x in a))
        assert all(first_char(a).upper() == "O" for a in letters), letters
        assert "Reading letters only" in page.locator("#status").inner_text()
        page.screenshot(path=str(OUTPUT / "answers-circle-letters.png"), full_page=True)
