"""The drawing page in a real headless Chromium (Debian's ``chromium``, driven by Playwright): draw, and watch
the translation come back."""

from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixforge.data.palette import get_palette

REPO = Path(__file__).resolve().parents[2]
PALETTE = {tuple(c) for c in get_palette("facades").colours.tolist()}
WINDOW = (0, 128, 255)


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def shown(page) -> np.ndarray:
    """The translated image as the page shows it, read back through a canvas (PNG, lossless)."""
    url = page.locator("#result").evaluate("""img => {
        const canvas = document.createElement("canvas");
        canvas.width = img.naturalWidth;
        canvas.height = img.naturalHeight;
        canvas.getContext("2d").drawImage(img, 0, 0);
        return canvas.toDataURL("image/png");
    }""")
    return pixels(base64.b64decode(url.split(",", 1)[1]))


@pytest.mark.slow
def test_drawing_on_the_page_translates_each_stroke(server, tmp_path, capsys, chromium_options):
    from playwright.sync_api import expect, sync_playwright

    output = Path(os.environ.get("PIXFORGE_TEST_OUTPUT", REPO / "test-output")) / "serve-page"
    output.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    is_translation = lambda r: "/v1/translate/labels" in r.url  # noqa: E731

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), **chromium_options, has_touch=True,
            viewport={"width": 1100, "height": 1100})  # the whole canvas in view: taps outside it are lost
        page = browser.pages[0] if browser.pages else browser.new_page()
        page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))

        # Opening the page translates a random facade example at once.
        with page.expect_response(is_translation) as first:
            page.goto(f"{server.url}/?model=labels")
        first = first.value
        assert first.status == 200
        example = pixels(first.request.post_data_buffer)
        assert example.shape == (64, 64, 3)
        assert {tuple(p) for p in example.reshape(-1, 3).tolist()} <= PALETTE, "examples use the palette only"
        expect(page.locator("#result")).to_have_attribute("src", re.compile("^blob:"), timeout=10_000)
        shown_first = page.locator("#result").get_attribute("src")
        first_result = shown(page)

        # Two brush strokes in the "window" colour: one translation a moment after the strokes.
        page.get_by_role("radio", name="window").click()
        page.locator("[data-size='6']").click()
        box = page.locator("#board").bounding_box()
        for y in (0.3, 0.6):
            with page.expect_response(is_translation) as drawn:
                page.mouse.move(box["x"] + 0.1 * box["width"], box["y"] + y * box["height"])
                page.mouse.down()
                page.mouse.move(box["x"] + 0.9 * box["width"], box["y"] + (y + 0.1) * box["height"], steps=12)
                page.mouse.up()
        drawn = drawn.value
        sent = pixels(drawn.request.post_data_buffer)
        assert {tuple(p) for p in sent.reshape(-1, 3).tolist()} <= PALETTE, "no antialiased in-between colours"
        changed = np.any(sent != example, axis=2)
        assert changed.sum() > 100 and np.all(sent[changed] == WINDOW)
        assert drawn.status == 200
        expect(page.locator("#result")).not_to_have_attribute("src", shown_first, timeout=10_000)
        result = shown(page)
        assert result.shape == (64, 64, 3)
        assert not np.array_equal(result, first_result), "the translation follows the drawing"

        # A rectangle, then a tap with the fill tool on a touch screen.
        page.get_by_role("button", name="Rectangle").click()
        with page.expect_response(is_translation) as rect:
            page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.75 * box["height"])
            page.mouse.down()
            page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.95 * box["height"], steps=5)
            page.mouse.up()
        after_rect = pixels(rect.value.request.post_data_buffer)
        assert np.all(after_rect[50:58, 14:30] == WINDOW)
        page.get_by_role("radio", name="shop").click()
        page.get_by_role("button", name="Fill").click()
        with page.expect_response(is_translation) as filled:
            page.touchscreen.tap(box["x"] + 0.3 * box["width"], box["y"] + 0.85 * box["height"])
        after_fill = pixels(filled.value.request.post_data_buffer)
        assert np.all(after_fill[50:58, 14:30] == get_palette("facades").colours[11])

        # Undo twice (button, then keyboard) brings back the strokes-only drawing exactly; redo the rectangle.
        def sends(expected: np.ndarray):
            return lambda r: is_translation(r) and np.array_equal(pixels(r.request.post_data_buffer), expected)

        with page.expect_response(sends(sent)):
            page.get_by_role("button", name="Undo").click()
            page.keyboard.press("Control+z")
        with page.expect_response(sends(after_rect)):
            page.get_by_role("button", name="Redo").click()

        screenshot = output / "drawing-page.png"
        page.screenshot(path=str(screenshot), full_page=True)
        with capsys.disabled():
            print(f"\n  drawing page screenshot: {screenshot}")
        browser.close()

    assert problems == []


@pytest.mark.slow
def test_a_class_conditional_model_gets_a_class_picker_and_a_seed(server, tmp_path, chromium_options):
    from playwright.sync_api import expect, sync_playwright

    problems: list[str] = []
    is_generation = lambda r: "/v1/generate/digits" in r.url  # noqa: E731
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(str(tmp_path / "profile"), **chromium_options)
        page = browser.pages[0] if browser.pages else browser.new_page()
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        with page.expect_response(is_generation) as first:
            page.goto(f"{server.url}/?model=digits")
        assert first.value.status == 200
        assert first.value.request.post_data_json == {"label": "zero", "seed": 0, "count": 1}
        expect(page.locator("#board")).to_be_hidden()
        expect(page.locator("#class")).to_be_visible()
        expect(page.locator("#result")).to_have_attribute("src", re.compile("^blob:"), timeout=10_000)
        with page.expect_response(is_generation) as picked:
            page.locator("#class").select_option("two")
        assert picked.value.request.post_data_json["label"] == "two"
        with page.expect_response(is_generation) as reseeded:
            page.get_by_role("button", name="New seed").click()
        assert reseeded.value.request.post_data_json == {"label": "two", "seed": 1, "count": 1}
        shown_image = shown(page)
        assert shown_image.shape == (280, 280, 3)
        with page.expect_response(lambda r: "/v1/translate/labels" in r.url):
            page.locator("#model").select_option("labels")  # back to a translator: the canvas returns
        expect(page.locator("#board")).to_be_visible()
        browser.close()
    assert problems == []
