"""In Debian's chromium (Playwright): the researcher excludes an annotator with a reason and
downloads Prolific's bulk bonus file; an annotator who declines consent lands on Prolific
with the returned code."""

from decimal import Decimal

import pytest

from studies.models import Enrolment
from studies.services import enrol
from tests.platform.test_browser import browser, login  # noqa: F401 - the fixture
from tests.platform.test_prolific_outcomes import PID, PROLIFIC, bonus_study
from tests.platform.study_helpers import make_study

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_researcher_excludes_an_annotator_and_downloads_the_bonus_file(browser, live_server):  # noqa: F811
    from playwright.sync_api import expect

    study = bonus_study(bonus_per_correct=Decimal("0.50"))
    study.owner.set_password("a-long-passphrase")
    study.owner.is_staff = True
    study.owner.save()
    page = browser.new_context(accept_downloads=True).new_page()
    login(page, live_server, study.owner.username, "a-long-passphrase", f"/studies/{study.pk}/")
    expect(page.locator("#bonus-table")).to_contain_text("1.50")  # PID[1]: 3 right
    page.select_option("select[name=enrolment]", str(Enrolment.objects.get(pseudonym=PID[1]).pk))
    page.fill("input[name=reason]", "answered in 2 s per item")
    page.click("#exclusion-submit")
    expect(page.locator("#excluded-annotators")).to_contain_text("answered in 2 s per item")
    expect(page.locator("#excluded-annotators")).to_contain_text(study.owner.username)
    with page.expect_download() as download:
        page.click("#export-bonuses-csv")
    with open(download.value.path(), encoding="utf-8") as f:
        assert f.read() == f"{PID[0]},2.00\n{PID[2]},0.50\n"


def test_an_annotator_who_declines_consent_lands_on_prolific_with_the_returned_code(browser, live_server):  # noqa: F811
    from playwright.sync_api import expect

    study = make_study(completion_url=PROLIFIC, returned_code="RET9")
    page = browser.new_context().new_page()
    landed = []
    page.route("https://app.prolific.com/**", lambda route: (landed.append(route.request.url),
                                                             route.fulfill(body="Prolific", content_type="text/html")))
    page.goto(f"{live_server.url}/join/{study.invite_token}/?PROLIFIC_PID={PID[3]}&STUDY_ID=s&SESSION_ID=x")
    page.get_by_role("button", name="I do not agree").click()
    expect(page.locator("body")).to_have_text("Prolific")
    assert landed == [f"{PROLIFIC}?cc=RET9"]
    assert Enrolment.objects.get(pseudonym=PID[3]).step == Enrolment.Step.DECLINED
    again = enrol(study, pseudonym=PID[3], prolific_study_id="s", prolific_session_id="x")  # Prolific sends them back
    assert again.step == Enrolment.Step.DECLINED  # joining again: still declined
