"""In Debian's chromium (Playwright): three annotators in three conditions complete a
model-simulation study, with keyboard shortcuts, and the researcher exports the results."""

import csv
import io
import json
import os
import re

import pytest
from django.contrib.auth.models import User
from django.db import connections

from annotations.models import Response
from studies.models import Enrolment
from studies.services import create_study, import_bundle

CHROMIUM = "/usr/bin/chromium"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(monkeypatch):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs it with apt-get")
        pytest.skip(f"{CHROMIUM} is not installed")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop shares the test's thread
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()
        # the test ran in Playwright's context, where Django keeps connections of its own: close
        # them with it, or a later test in that context gets one that outlived the database
        # (a PostgreSQL restart in test_faults)
        connections.close_all()


def multiviz_item(browser, live_server, bundle_folder, width: int = 1200, height: int = 900):
    """A chromium page on the first item of a new MultiViz (U+C+Rℓ+Rg+P) study over the
    bundle at ``bundle_folder``, for one enrolled annotator past consent."""
    from django.contrib.auth.models import User

    from studies.services import create_study, enrol, import_bundle

    from .study_helpers import start

    researcher = User.objects.create_user("ada")
    study = create_study(researcher, import_bundle(bundle_folder, owner=researcher), title="Engine bundle", practice=0,
                         group_size=1, open_now=True, presets=["MultiViz (U+C+Rℓ+Rg+P)"])
    e = start(enrol(study, pseudonym="p"))
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.goto(f"{live_server.url}/a/{e.token}/")
    return page


def open_page(page, title: str):
    """Open one of an item's pages by its tab (a page at a time, static/js/pages.js)."""
    from playwright.sync_api import expect

    tab = page.locator("nav.tabs").get_by_role("link", name=title, exact=True)
    tab.click()
    expect(tab).to_have_attribute("aria-current", "page")


def annotate(page, live_server, invite, key):
    """One annotator's whole flow; answers with the keyboard (``key`` picks the choice)."""
    from playwright.sync_api import expect

    page.goto(f"{live_server.url}/join/{invite}/")
    page.get_by_role("button", name="I agree to take part").click()
    page.get_by_role("button", name="Start").click()
    for _ in range(2):  # the practice item, then the counted one
        expect(page.locator("#answer")).to_be_visible()
        expect(page.get_by_alt_text("the image of this example")).to_be_visible()
        # (no wait_for_function: it evaluates a string, which the Content-Security-Policy refuses)
        expect(page.locator("#overview img").first).to_have_js_property("complete", True)
        assert page.evaluate("document.querySelector('#overview img').naturalWidth") > 0  # the asset loaded
        # the key-th choice, counted round: items offer only the prediction's answer type (2 for yes/no)
        page.keyboard.press(str((int(key) - 1) % page.locator("input[name=choice]").count() + 1))
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
    bundle = import_bundle(built_bundle, owner=researcher)
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

    from playwright.sync_api import expect

    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/studies/{study.pk}/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "a-long-passphrase")
    page.get_by_role("button", name=re.compile("log in", re.I)).click()
    assert study.invite_token in page.content()
    assert page.locator("#summary tr").count() == 4  # a header and three conditions
    assert page.title() == f"{study.title} · MultiViz Studies"
    expect(page.locator("#monitor-at")).to_have_text(re.compile("^updated"))  # live monitor
    page.click("#compare button")
    expect(page.locator("#compare-result")).not_to_be_empty()
    assert "p =" in page.text_content("#compare-result")
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


def login(page, live_server, username, password, next_url):
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name=re.compile("log in", re.I)).click()


def test_a_researcher_builds_previews_and_opens_a_study_in_the_browser(browser, live_server, built_bundle):
    from playwright.sync_api import expect

    from studies.models import Study

    grace = User.objects.create_user("grace", password="a-long-passphrase", is_staff=True)
    bundle = import_bundle(built_bundle, owner=grace)
    page = browser.new_context().new_page()
    login(page, live_server, "grace", "a-long-passphrase", "/studies/")
    page.click("#new-study-link")
    page.fill("input[name=title]", "Built in the browser")
    page.select_option("#bundle", str(bundle.pk))
    expect(page.locator("fieldset.presets[data-task=simulation]")).to_be_visible()
    page.get_by_label("Rℓ+P", exact=True).uncheck()
    page.get_by_label("Rg+P", exact=True).uncheck()
    page.fill("textarea[name=custom]", "U+P: U P")
    page.get_by_role("button", name="Create the study").click()
    expect(page.locator("h1")).to_have_text("Built in the browser")
    study = Study.objects.get(title="Built in the browser")
    assert [c.name for c in study.conditions.all()][-1] == "U+P" and study.conditions.count() == 6
    counted = study.items.get(is_practice=False)
    page.fill(f"input[name=choices-{counted.pk}]", ", ".join(sorted(bundle.class_names)[:3]))
    page.get_by_role("button", name="Save items").click()
    expect(page.locator(f"input[name=choices-{counted.pk}]")).to_have_value(", ".join(sorted(bundle.class_names)[:3]))
    u_plus_p = study.conditions.get(name="U+P")
    page.goto(f"{live_server.url}/studies/{study.pk}/preview/{u_plus_p.pk}/?item=1")
    expect(page.locator(".preview-banner")).to_contain_text("U+P")
    expect(page.locator("#prediction")).to_be_hidden()  # a page at a time: the Overview first
    open_page(page, "Prediction")
    expect(page.locator("#prediction")).to_be_visible()
    expect(page.locator("#overview")).to_be_hidden()
    assert page.locator("#features").count() == 0
    page.get_by_role("link", name="back to the builder").click()
    page.click("#open-study")
    expect(page.locator("#status")).to_have_text("open")
    annotator = browser.new_context().new_page()
    annotator.goto(f"{live_server.url}/join/{study.invite_token}/")
    expect(annotator.get_by_role("button", name="I agree to take part")).to_be_visible()


def test_a_researcher_clusters_concepts_in_the_browser(browser, live_server, eager_tasks):
    from playwright.sync_api import expect

    from studies.services import enrol
    from tests.platform.study_helpers import answer_all, make_study

    study = make_study(task="concept", n_items=2, practice=0)
    texts = {"a": ["colour red", "triangles"], "b": ["redness", "three corners"], "c": ["red things", "triangle shapes"]}
    for name, answers in texts.items():
        answer_all(enrol(study, pseudonym=name),
                   lambda item, answers=answers: {"free_text": answers[item.bundle_item.position], "confidence": 4})
    study.owner.set_password("a-long-passphrase")
    study.owner.is_staff = True
    study.owner.save()
    page = browser.new_context().new_page()
    login(page, live_server, study.owner.username, "a-long-passphrase", f"/studies/{study.pk}/concepts/")
    expect(page.get_by_text("Not clustered yet")).to_be_visible()
    page.click("#suggest")
    expect(page.locator("article.cluster").first).to_be_visible(timeout=60000)
    for text in ("colour red", "redness", "red things"):
        page.get_by_label(re.compile(f"“{text}”")).check()
    page.fill("input[name=to]", "red")
    page.click("#move")
    for text in ("triangles", "three corners", "triangle shapes"):
        page.get_by_label(re.compile(f"“{text}”")).check()
    page.fill("input[name=to]", "triangle")
    page.click("#move")
    expect(page.locator("article.cluster")).to_have_count(2)
    expect(page.locator("#concept-metrics")).to_contain_text("1.00")  # alpha over the clusters
    page.select_option("select[name=old]", "triangle")
    page.fill("input[name=new]", "three-cornered shapes")
    page.click("#rename")
    expect(page.locator("article.cluster[data-cluster='three-cornered shapes']")).to_be_visible()
