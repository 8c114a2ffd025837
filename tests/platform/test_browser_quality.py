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


def test_an_annotator_passes_the_gate_on_the_second_round_misses_the_attention_check_and_is_excluded_then_included(
        browser, live_server):  # noqa: F811
    """The whole of the quality controls in chromium: the researcher sets an attention check and
    the gate in the builder; an annotator misses the practice, practises again, passes, misses
    the attention check and is excluded for it when they finish; the researcher includes them
    again with a reason, and the bonus file pays them for their counted answers."""
    from playwright.sync_api import expect

    study = make_study(n_items=2, practice=1, conditions=(("U", ["U"], 0),), bonus_per_correct=Decimal("0.50"),
                       completion_code="DONE-1")
    study.owner.set_password("a-long-passphrase")
    study.owner.is_staff = True
    study.owner.save()
    practice, counted, check = study.items.order_by("order")  # the model answers red, blue, green
    researcher = browser.new_context(accept_downloads=True).new_page()
    login(researcher, live_server, study.owner.username, "a-long-passphrase", f"/studies/{study.pk}/edit/")
    researcher.check(f"input[name=attention-{check.pk}]")
    researcher.fill(f"input[name=expected_answer-{check.pk}]", "green")
    researcher.fill(f"input[name=instruction-{check.pk}]", "To show you read this, choose green.")
    researcher.get_by_role("button", name="Save items").click()
    expect(researcher.locator(f"input[name=attention-{check.pk}]")).to_be_checked()
    researcher.fill("input[name=attention_min_correct]", "1")
    researcher.fill("input[name=gate_min_correct]", "1")
    researcher.click("#save-quality")
    expect(researcher.locator("input[name=gate_min_correct]")).to_have_value("1")

    page = browser.new_context().new_page()
    page.goto(f"{live_server.url}/join/{study.invite_token}/?PROLIFIC_PID={PID[0]}&STUDY_ID=s&SESSION_ID=x")
    page.get_by_role("button", name="I agree to take part").click()
    page.get_by_role("button", name="Start").click()

    def answer(choice):
        expect(page.locator("#answer")).to_be_visible()
        page.check(f"input[name=choice][value={choice}]")
        with page.expect_navigation():
            page.get_by_role("button", name="Submit").click()

    answer("blue")  # the practice item, wrong (the model answered red)
    expect(page.get_by_text("The model predicted")).to_be_visible()
    page.get_by_role("link", name="Continue").click()
    expect(page.locator("#gate-right")).to_have_text("0 of 1")
    page.click("#repeat-practice")
    answer("red")  # the practice again, right
    page.get_by_role("link", name="Continue").click()
    for _ in range(2):  # the counted item and the attention check, in this annotator's order
        expect(page.locator("#answer")).to_be_visible()
        if page.locator("#item-instruction").count():
            expect(page.locator("#item-instruction")).to_have_text("To show you read this, choose green.")
            answer("red")  # missed
        else:
            answer("blue")  # the model's answer: right
    page.get_by_role("button", name="Finish").click()
    expect(page.locator("#completion-code")).to_be_visible()

    researcher.goto(f"{live_server.url}/studies/{study.pk}/")
    expect(researcher.locator("#excluded-annotators")).to_contain_text("attention checks: 0 of 1 right")
    researcher.select_option("select[name=enrolment]", str(Enrolment.objects.get(pseudonym=PID[0]).pk))
    researcher.select_option("select[name=excluded]", "false")
    researcher.fill("input[name=reason]", "the check's wording was unclear")
    researcher.click("#exclusion-submit")
    expect(researcher.locator("#excluded-annotators")).not_to_contain_text(PID[0])
    with researcher.expect_download() as download:
        researcher.click("#export-bonuses-csv")
    with open(download.value.path(), encoding="utf-8") as f:
        assert f.read() == f"{PID[0]},0.50\n"  # one counted answer right; the check never counts
    e = Enrolment.objects.get(pseudonym=PID[0])
    assert [h["reason"] for h in e.exclusion_history] == ["attention checks: 0 of 1 right, fewer than the study's 1",
                                                          "the check's wording was unclear"]
    assert [(r["right"], r["passed"]) for r in e.practice_rounds] == [(0, False), (1, True)]
