"""An item's pages as the paper showed them: Overview, Features, Prediction, one at a time
behind tabs, with the answer form always in view beside them; a feature named in the
prediction opens the features page at it; keyboard and a 390 px phone work."""

import os

import pytest

from .test_browser import browser, multiviz_item, open_page  # noqa: F401  (the chromium fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]
PAGES = {"Overview": "#overview", "Features": "#features", "Prediction": "#prediction"}


def _in_view(page, selector: str) -> bool:
    """Whether the element is wholly inside the window as scrolled now."""
    box = page.locator(selector).bounding_box()
    height = page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def test_the_items_pages_show_one_at_a_time_with_the_answer_always_in_view(browser, live_server,  # noqa: F811
                                                                            built_bundle):
    from playwright.sync_api import expect

    page = multiviz_item(browser, live_server, built_bundle, width=1280, height=800)
    expect(page.locator("nav.tabs a")).to_have_text(list(PAGES))
    expect(page.locator("#overview")).to_be_visible()  # the Overview first
    for title, selector in PAGES.items():
        open_page(page, title)
        for other in PAGES.values():
            expect(page.locator(other)).to_be_visible() if other == selector else expect(page.locator(other)).to_be_hidden()
        page.mouse.wheel(0, 20000)  # to the end of the page: the answer is still there
        assert _in_view(page, "#answer button[type=submit]"), title
        if os.environ.get("MULTIVIZ_SCREENSHOTS"):
            page.screenshot(path=os.path.join(os.environ["MULTIVIZ_SCREENSHOTS"], f"page-{title.lower()}.png"))
    # a feature named in the prediction opens the features page at it
    open_page(page, "Prediction")
    pill = page.locator("#prediction a.pill").first
    target = pill.get_attribute("href")
    pill.click()
    expect(page.locator("#features")).to_be_visible()
    expect(page.locator("#prediction")).to_be_hidden()
    heading = page.locator(target).locator("h3").first.bounding_box()
    tabs = page.locator("nav.tabs").bounding_box()
    assert tabs["y"] + tabs["height"] <= heading["y"] < 800  # at it, below the sticky tabs
    # by keyboard: a tab is a link, followed with Enter; Enter there does not submit the answer
    tab = page.locator("nav.tabs").get_by_role("link", name="Overview", exact=True)
    tab.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#overview")).to_be_visible()
    assert "/a/" in page.url and page.locator("#answer").count() == 1
    # a phone: no sideways scroll, the answer under the page shown
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.locator("#answer")).to_be_visible()
    page.context.close()
