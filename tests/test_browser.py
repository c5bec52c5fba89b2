"""A person's path through the app in a real browser: draw a character, see three predictions, open the map.

Drives Debian's chromium (``apt-get install -y chromium``; scripts/ensure_chromium.sh) through
Playwright, headless; never ``playwright install``. Screenshots go to tests/output/.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from app_support import REAL_ASSETS, REAL_MODELS, build_models, free_port, make_assets

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
OUTPUT = Path(__file__).parent / "output"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting'"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (bash scripts/ensure_chromium.sh, as root)")
    pytest.importorskip("playwright.sync_api")
    if (REAL_MODELS / "manifest.json").exists():
        models, assets = REAL_MODELS, REAL_ASSETS
    else:  # no shipped models yet: tiny real ones trained on the fixture
        work = tmp_path_factory.mktemp("browser-models")
        models = build_models(work / "exported_models", work)
        assets = make_assets(models, work / "assets")
    import app

    demo = app.build_demo(models, assets)
    _, url, _ = app.launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield url, demo.emnist_lab
    finally:
        demo.close()


def wait_for_text(page, selector: str, needle: str, limit: float = 60.0) -> str:
    """The element's text once it contains ``needle`` (the page updates asynchronously)."""
    started, text = time.monotonic(), ""
    while time.monotonic() - started < limit:
        text = page.locator(selector).inner_text()
        if needle in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{selector} never showed {needle!r} within {limit:.0f} s; it shows {text!r}")


def test_draw_a_character_and_see_three_predictions(app_url) -> None:
    from playwright.sync_api import sync_playwright

    url, lab = app_url
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(url)
            page.wait_for_selector("#sketch canvas", timeout=60_000)
            # The app selects the Brush tool itself, so a person can draw at once (Gradio starts with none active).
            page.wait_for_function(
                "() => document.querySelector('#sketch button[aria-label=\"Brush\"]')?.classList.contains('highlight')",
                timeout=20_000,
            )
            assert "Draw a character" in page.locator("#status").inner_text()

            # The visible drawing surface is a square centred in the canvas element; draw an "A" inside it.
            box = page.locator("#sketch canvas").first.bounding_box()
            side = 0.6 * min(box["width"], box["height"])
            left, top = box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2
            for (x0, y0), (x1, y1) in [((0.5, 0.0), (0.12, 1.0)), ((0.5, 0.0), (0.88, 1.0)),
                                       ((0.28, 0.62), (0.72, 0.62))]:
                page.mouse.move(left + x0 * side, top + y0 * side)
                page.mouse.down()
                page.mouse.move(left + x1 * side, top + y1 * side, steps=2)  # each step redraws the canvas
                page.mouse.up()

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
            view = lab.results()
            if view.sections:
                section = view.sections[0]
                page.get_by_role("tab", name=section.tab, exact=True).first.click()
                verdicts = page.locator(".results-verdicts").filter(has_text=section.title).first
                verdicts.wait_for(timeout=15_000)
                if section.figures:
                    page.locator(".results-figures img").first.wait_for(timeout=15_000)
                    page.wait_for_function("() => [...document.querySelectorAll('.results-figures img')]"
                                           ".filter(img => img.offsetParent !== null)"
                                           ".every(img => img.complete && img.naturalWidth > 0)", timeout=15_000)
            page.screenshot(path=str(OUTPUT / "app-results.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
