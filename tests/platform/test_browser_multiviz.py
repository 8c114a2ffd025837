"""In Debian's chromium (Playwright): an annotator completes a model-simulation study over
MultiViz's own vqa554 results (vendored), imported with ``import_multiviz``; the item page
shows the datapoint and the views as images (the MODALITIES contract's pre-rendered
assets), and nothing on it names the prediction's file names."""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command

from annotations.models import Response
from studies.models import Bundle, Enrolment
from studies.services import create_study

CHROMIUM = "/usr/bin/chromium"
VQA554 = Path(settings.BASE_DIR) / "fixtures" / "multiviz" / "vqa554"

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


def test_an_annotator_completes_a_simulation_study_over_multiviz_vqa554_seeing_its_views(browser, live_server,
                                                                                          settings, tmp_path):
    from playwright.sync_api import expect

    settings.DATA_DIR = tmp_path
    researcher = User.objects.create_user("ada", password="a-long-passphrase", is_staff=True)
    call_command("import_multiviz", str(VQA554), "--name", "vqa554", "--class-names", "wood,metal,plastic",
                 "--owner", "ada")
    bundle = Bundle.objects.get(name="vqa554")
    study = create_study(researcher, bundle, title="MultiViz VQA", practice=0, group_size=1, open_now=True,
                         presets=["MultiViz (U+C+Rℓ+Rg+P)"])
    study.completion_code = "THANKS-MV"
    study.save()
    item = bundle.items.get()
    n_views = len(item.section("U")["views"]) + len(item.section("C")["views"])  # LIME ×2, DIME ×4

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/join/{study.invite_token}/")
    page.get_by_role("button", name="I agree to take part").click()
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#answer")).to_be_visible()
    images = page.locator("main img")
    expect(images.nth(n_views)).to_be_attached()  # the datapoint's image and one per U and C view, at least
    for k in range(images.count()):
        expect(images.nth(k)).to_have_js_property("complete", True)
        assert images.nth(k).evaluate("img => img.naturalWidth") > 0, f"image {k} did not load"
        assert not re.search(r"pred|correct|glass|lxmert|feat", images.nth(k).get_attribute("src") or "")
    assert page.locator("input[name=choice]").count() == 4
    page.keyboard.press("1")
    helpful = page.locator("input[name=helpful_page][value=features]")
    if helpful.count():
        helpful.check()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.get_by_role("button", name="Finish").click()
    expect(page.locator("#completion-code")).to_have_text("THANKS-MV")
    context.close()
    assert Response.objects.filter(enrolment__study=study, is_practice=False).count() == 1
    assert Enrolment.objects.get(study=study).step == "done"
