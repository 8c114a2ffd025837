"""In chromium: every viewer kind drawn from a synthetic item (non-blank pixels), a legend on
every heatmap, zoom by keyboard, the C word picker, a clip that plays (byte ranges: its index
is at the end), and no horizontal scroll on a 390 px wide phone. With MULTIVIZ_SCREENSHOTS
set, each viewer's picture is saved there (docs/screenshots/viewers/ holds the committed ones)."""

import io
import os
import time

import pytest
from PIL import Image, ImageStat

from studies.services import enrol

from .study_helpers import start
from .test_browser import browser, multiviz_item, open_page  # noqa: F401  (the chromium fixture)
from .viewer_bundle import viewer_study

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

KINDS = ("image", "text", "timeseries", "tabular", "audio", "video")
HEATMAPS = ".score, .tok[class*=w]"  # what draws scores (a datapoint as it is draws none)


def _variance(png: bytes) -> float:
    return sum(ImageStat.Stat(Image.open(io.BytesIO(png)).convert("L")).var)


def _save(png: bytes, name: str) -> None:
    folder = os.environ.get("MULTIVIZ_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        Image.open(io.BytesIO(png)).save(os.path.join(folder, name), optimize=True)


def _item_page(browser, live_server, tmp_path, **viewport):  # noqa: F811
    study = viewer_study(tmp_path / "bundle")
    e = start(enrol(study, pseudonym="viewer"))
    refused = []
    page = browser.new_context(viewport=viewport or {"width": 1200, "height": 900}).new_page()
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{live_server.url}/a/{e.token}/")
    return page, refused


def test_every_viewer_draws_its_kind_with_a_legend_on_every_heatmap(browser, live_server, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    page, refused = _item_page(browser, live_server, tmp_path)
    overview = page.locator("#overview")
    for kind in KINDS:
        drawn = overview.locator(f".viewer-{kind}").filter(has=page.locator(HEATMAPS)).first
        expect(drawn).to_be_visible()
        for img in drawn.locator("img").all():
            expect(img).to_have_js_property("complete", True)
        png = drawn.screenshot()
        assert _variance(png) > 50, kind  # not a blank box
        _save(png, f"{kind}.png")
    _save(page.locator("#overview").screenshot(), "overview.png")
    open_page(page, "Features")
    expect(overview).to_be_hidden()  # a page at a time
    _save(page.locator("#features").screenshot(), "features.png")
    # every viewer that draws scores says what the colours mean (Rg's examples share one)
    for viewer in page.locator("#overview .viewer, #features .feature > .viewers > .viewer").all():
        if viewer.locator(HEATMAPS).count():
            expect(viewer.locator(".legend")).to_have_count(1)  # (a C map not picked is hidden, legend and all)
            expect(viewer.locator(".legend")).to_contain_text("orange")
    expect(page.locator("#features .feature .legend").last).to_contain_text("raises the feature")
    open_page(page, "Overview")
    # the image is at least 256 px wide, and zooms by keyboard
    frame = overview.locator(".viewer-image .frame").first
    width = frame.bounding_box()["width"]
    assert width >= 256
    zoom = overview.locator(".viewer-image").first.get_by_role("button", name="Zoom in")
    zoom.focus()
    page.keyboard.press("Enter")
    expect(overview.locator(".viewer-image").first.get_by_role("button", name="Zoom out")).to_be_visible()
    assert frame.bounding_box()["width"] >= 1.9 * width
    assert "/a/" in page.url  # Enter on a control did not submit the answer
    # the map hides, for the object's own colours
    hide = overview.locator(".viewer-image").filter(has=page.locator(".overlay.score")).first \
        .get_by_role("button", name="Hide the map")
    hide.click()
    expect(overview.locator(".zoomable.map-off .overlay.score").first).to_be_hidden()
    # C: one map per word, picked by a button
    picker = page.locator(".word-picker")
    expect(picker).to_be_visible()
    maps = page.locator(".picked")
    expect(maps.nth(0)).to_be_visible()
    expect(maps.nth(1)).to_be_hidden()
    picker.get_by_role("button", name="triangle").click()
    expect(maps.nth(1)).to_be_visible()
    expect(maps.nth(0)).to_be_hidden()
    assert not refused, refused


def test_the_clip_plays_and_seeks(browser, live_server, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    page, refused = _item_page(browser, live_server, tmp_path)
    video = page.locator(".viewer-video video").first
    expect(video).to_be_visible()
    page.evaluate("(() => { const v = document.querySelector('.viewer-video video'); v.muted = true; v.play(); })()")
    deadline = time.monotonic() + 15
    played = 0.0
    while time.monotonic() < deadline and played <= 0.3:
        played = page.evaluate("document.querySelector('.viewer-video video').currentTime")
        time.sleep(0.2)
    assert played > 0.3, "the clip did not play"
    assert page.evaluate("document.querySelector('.viewer-video video').duration") > 1
    assert not refused, refused


def test_the_item_page_fits_a_390_px_phone(browser, live_server, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    page, _ = _item_page(browser, live_server, tmp_path, width=390, height=844)
    expect(page.locator(".viewer-timeseries").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("#overview .viewer-image .frame").first.bounding_box()["width"] >= 256
    _save(page.screenshot(full_page=False), "phone-390.png")


def test_an_engine_bundle_draws_through_the_same_viewers(browser, live_server, built_bundle):  # noqa: F811
    """An old-form bundle (image + question, U/C/Rl/Rg as the engine writes them): U's patches
    drawn as a mask over the picture with a legend, C's map per word behind the word picker,
    Rℓ as its pictures, with legends."""
    from playwright.sync_api import expect

    page = multiviz_item(browser, live_server, built_bundle)
    u = page.locator("#overview .viewer-image").filter(has=page.locator(".overlay.score")).first
    expect(u.locator(".legend")).to_contain_text("orange: pushes toward the model's answer, blue: against")
    assert u.locator(".frame").first.bounding_box()["width"] >= 256
    # C: one map per word behind the word picker, one shown at a time
    expect(page.locator("#overview .word-picker")).to_be_visible()
    expect(page.locator("#overview .picked:visible")).to_have_count(1)
    # every view drawn on a picture (the datapoint's own picture has no method and no legend)
    pictures = page.locator("#overview .viewer-image[data-method], #overview .viewer-asset[data-method], "
                            "#features .feature > .viewers > .viewer-image[data-method], "
                            "#features .feature > .viewers > .viewer-asset[data-method]").all()
    assert len(pictures) >= 3  # U's, C's per word, and each feature's Rℓ
    for picture in pictures:
        expect(picture.locator(".legend")).to_have_count(1)
    expect(page.locator("#features .feature > .legend").first).to_contain_text("raises the feature")  # Rg's examples
    _save(page.locator("#overview").screenshot(), "engine-overview.png")
    open_page(page, "Features")
    _save(page.locator("#features .feature").first.screenshot(), "engine-feature.png")
