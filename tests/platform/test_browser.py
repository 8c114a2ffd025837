"""In Debian's chromium (Playwright): three annotators in three conditions complete a
model-simulation study, with keyboard shortcuts, and the researcher exports the results."""

import csv
import io
import json
import os
import re

import pytest
from django.contrib.auth.models import User

from annotations.models import Response
from studies.models import Enrolment
from studies.services import create_study, import_bundle

CHROMIUM = "/usr/bin/chromium"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs it with apt-get")
        pytest.skip(f"{CHROMIUM} is not installed")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop shares the test's thread
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


def annotate(page, live_server, invite, key):
    """One annotator's whole flow; answers with the keyboard (``key`` picks the choice)."""
    from playwright.sync_api import expect

    page.goto(f"{live_server.url}/join/{invite}/")
    page.get_by_role("button", name="I agree to take part").click()
    page.get_by_role("button", name="Start").click()
    for _ in range(2):  # the practice item, then the counted one
        expect(page.locator("#answer")).to_be_visible()
        expect(page.get_by_alt_text("the image of this example")).to_be_visible()
        page.wait_for_function("document.querySelector('#overview img').complete")
        assert page.evaluate("document.querySelector('#overview img').naturalWidth") > 0  # the asset loaded
        page.keyboard.press(key)
        helpful = page.locator("input[name=helpful_page][value=features]")
        if helpful.count():
            helpful.check()
        with page.expect_navigation():
            page.keyboard.press("Enter")
        if "/practice/" in page.url:
            expect(page.get_by_text("The model predicted")).to_be_visible()
            with page.expect_navigation():
                page.get_by_role("link", name="Continue").click()
    page.get_by_role("button", name="Finish").click()
    expect(page.locator("#completion-code")).to_be_visible()
    return page.locator("#completion-code").inner_text()


def test_three_annotators_complete_a_simulation_study_and_the_researcher_exports_it(browser, live_server,
                                                                                      built_bundle, tmp_path):
    researcher = User.objects.create_user("ada", password="a-long-passphrase", is_staff=True)
    bundle = import_bundle(built_bundle)
    study = create_study(researcher, bundle, title="Browser study", practice=1, group_size=1, open_now=True,
                         presets=["U", "U+C", "MultiViz (U+C+Rℓ+Rg+P)"])
    study.completion_code = "THANKS-1"
    study.save()

    for n, key in enumerate(("1", "2", "3")):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        assert annotate(page, live_server, study.invite_token, key) == "THANKS-1"
        if n == 2 and os.environ.get("MULTIVIZ_SCREENSHOTS"):
            page.screenshot(path=os.path.join(os.environ["MULTIVIZ_SCREENSHOTS"], "done.png"))
        context.close()

    groups = sorted(e.condition.name for e in Enrolment.objects.filter(study=study))
    assert groups == sorted(["U", "U+C", "MultiViz (U+C+Rℓ+Rg+P)"])  # one per condition
    assert Response.objects.filter(enrolment__study=study, is_practice=False).count() == 3
    assert all(e.step == "done" for e in Enrolment.objects.filter(study=study))

    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/studies/{study.pk}/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "a-long-passphrase")
    page.get_by_role("button", name=re.compile("log in", re.I)).click()
    assert study.invite_token in page.content()
    assert page.locator("#summary tr").count() == 4  # a header and three conditions
    files = {}
    for link in ("#export-csv", "#export-json", "#export-latex"):
        with page.expect_download() as download:
            page.click(link)
        files[link] = open(download.value.path(), encoding="utf-8").read()
    rows = list(csv.DictReader(io.StringIO(files["#export-csv"])))
    assert len(rows) == 6 and sum(r["practice"] == "False" for r in rows) == 3
    assert len(json.loads(files["#export-json"])["metrics"]) == 3
    assert r"\begin{tabular}" in files["#export-latex"]
    context.close()
