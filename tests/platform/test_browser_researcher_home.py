"""In chromium: a researcher logs in on the platform's own page, goes from the studies to the
bundles to the API's documentation by the navigation bar, and logs out."""

import os
import re

import pytest

from .study_helpers import make_study
from .test_browser import browser  # noqa: F401  (the chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def screenshot(page, name):
    if os.environ.get("MULTIVIZ_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["MULTIVIZ_SCREENSHOTS"], name), full_page=False)


def test_a_researcher_logs_in_navigates_studies_bundles_api_docs_and_logs_out(browser, live_server):  # noqa: F811
    from playwright.sync_api import expect

    study = make_study()
    owner = study.owner  # not staff: the admin's login page refused such accounts
    owner.set_password("a-long-passphrase")
    owner.save()
    study.title = "Navigation study"
    study.save()
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    refused = []  # the Content-Security-Policy's refusals, as chromium reports them
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)

    page.goto(f"{live_server.url}/studies/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/studies/$"))
    expect(page.get_by_role("heading", name="Researcher login")).to_be_visible()
    page.get_by_label("User name").fill(owner.username)
    page.get_by_label("Password").fill("a-long-passphrase")
    screenshot(page, "researcher-login.png")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server.url}/studies/")
    expect(page.get_by_role("link", name="Navigation study")).to_be_visible()
    screenshot(page, "researcher-studies.png")

    nav = page.get_by_role("navigation", name="researcher")
    nav.get_by_role("link", name="Bundles & debugging reports").click()
    expect(page).to_have_url(f"{live_server.url}/bundles/")
    nav.get_by_role("link", name="API").click()
    expect(page).to_have_url(f"{live_server.url}/api/docs/")
    expect(page.locator("#items_partial_update")).to_contain_text("PATCH /api/items/{id}/")
    screenshot(page, "researcher-api-docs.png")
    page.get_by_role("link", name="MultiViz Studies", exact=True).click()  # the brand: back to the studies
    expect(page).to_have_url(f"{live_server.url}/studies/")

    nav.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{live_server.url}/login/")
    page.goto(f"{live_server.url}/studies/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/studies/$"))
    assert refused == []
