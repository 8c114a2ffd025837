"""Who may come back to an enrolment through the invite link: the browser that remembers it,
or a Prolific participant with the study and session ids it joined with. A pseudonym alone
(shown by the exports, the monitor and the API) opens nothing."""

import csv
import io

import pytest
from django.test import Client

from annotations.models import Response
from studies.models import Enrolment, Study
from studies.services import EnrolmentTaken, enrol

from .study_helpers import body_text, make_study

pytestmark = pytest.mark.django_db

PROLIFIC = {"PROLIFIC_PID": "5f1e0c2a9b8d7e6f5a4b3c2d", "STUDY_ID": "60aa11bb22cc33dd44ee55ff",
            "SESSION_ID": "sess-7c9e41"}


def join(study, client=None, secure=False, **params):
    return (client or Client()).get(f"/join/{study.invite_token}/", params, secure=secure)


def opened(response, enrolment) -> bool:
    """Whether the answer leads to ``enrolment``'s pages (its token anywhere in it)."""
    return enrolment.token in response.get("Location", "") or enrolment.token in response.content.decode()


@pytest.fixture
def study():
    return make_study(conditions=(("U", ["U"], 0),))


def test_a_prolific_id_alone_does_not_open_its_enrolment(study):
    first = join(study, **PROLIFIC)
    assert first.status_code == 302
    e = Enrolment.objects.get(pseudonym=PROLIFIC["PROLIFIC_PID"])
    for params in ({"PROLIFIC_PID": e.pseudonym},
                   {"PROLIFIC_PID": e.pseudonym, "STUDY_ID": PROLIFIC["STUDY_ID"]},  # the study id is no secret
                   {"PROLIFIC_PID": e.pseudonym, "SESSION_ID": PROLIFIC["SESSION_ID"]},
                   {**PROLIFIC, "SESSION_ID": "sess-guessed"}):
        refused = join(study, **params)
        assert refused.status_code == 403 and not opened(refused, e), params
        assert "You have already started this study" in refused.content.decode()
    assert Enrolment.objects.count() == 1


def test_a_prolific_participant_resumes_in_any_browser_with_their_study_and_session_ids(study):
    first = join(study, **PROLIFIC)
    again = join(study, **PROLIFIC)  # another browser: no cookie
    assert again.status_code == 302 and again["Location"] == first["Location"]
    assert Enrolment.objects.count() == 1


def test_a_generated_pseudonym_shown_to_researchers_opens_nothing(study):
    e = Enrolment.objects.get(pk=enrol(study).pk)
    assert e.pseudonym.startswith("anon-")
    for params in ({"PROLIFIC_PID": e.pseudonym}, {"PROLIFIC_PID": e.pseudonym, "STUDY_ID": "", "SESSION_ID": ""},
                   {"PROLIFIC_PID": e.pseudonym, "STUDY_ID": "x", "SESSION_ID": "y"}):
        refused = join(study, **params)
        assert refused.status_code == 403 and not opened(refused, e), params


def test_every_annotator_name_a_researcher_sees_opens_no_enrolment(study):
    from annotations.exports import responses_csv

    joined = [enrol(study, pseudonym=f"PID-{k}", prolific_study_id="S", prolific_session_id=f"secret-{k}")
              for k in range(2)] + [enrol(study)]
    for e in joined:
        Enrolment.objects.filter(pk=e.pk).update(step=Enrolment.Step.ITEMS)
        Response.objects.create(enrolment=e, item_id=e.item_order[0], choice="red")
    researcher = Client()
    researcher.force_login(study.owner)
    shown = {row["annotator"] for row in csv.DictReader(io.StringIO(responses_csv(study)))}
    shown |= {row["pseudonym"] for row in researcher.get(f"/api/studies/{study.pk}/enrolments/").json()}
    shown |= {row["annotator"] for row in researcher.get(f"/studies/{study.pk}/monitor.json").json()["annotators"]}
    assert shown == {e.pseudonym for e in joined}
    pages = [body_text(researcher.get(url)) for url in (
        f"/studies/{study.pk}/export.csv", f"/studies/{study.pk}/export.json", f"/studies/{study.pk}/monitor.json",
        f"/api/studies/{study.pk}/enrolments/", f"/api/studies/{study.pk}/responses/", f"/api/studies/{study.pk}/export/")]
    assert not [p for p in pages if "secret-" in p], "the session ids that prove a participant are never shown"
    for name in shown:
        answer = join(study, PROLIFIC_PID=name, STUDY_ID="S")
        assert answer.status_code == 403 and not any(opened(answer, e) for e in joined), name


def test_a_closed_study_resumes_nobody_on_a_pseudonym_and_enrols_nobody_new(study):
    browser = Client()
    join(study, browser, **PROLIFIC)
    e = Enrolment.objects.get()
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    refused = join(study, PROLIFIC_PID=e.pseudonym)
    assert refused.status_code == 409 and not opened(refused, e)
    assert "not open for new participants" in refused.content.decode()
    assert join(study, PROLIFIC_PID="someone-new").status_code == 409
    # the participant themselves still reach their page (answers saved, completion code)
    assert join(study, **PROLIFIC)["Location"] == f"/a/{e.token}/"
    assert join(study, browser)["Location"] == f"/a/{e.token}/"
    assert Enrolment.objects.count() == 1


def test_the_remembering_browser_resumes_unless_the_link_names_someone_else(study):
    browser = Client()
    mine = join(study, browser, PROLIFIC_PID="pid-a")["Location"]
    assert join(study, browser)["Location"] == mine
    assert join(study, browser, PROLIFIC_PID="pid-a")["Location"] == mine  # proven by the cookie
    other = join(study, browser, PROLIFIC_PID="pid-b")  # a shared computer: the next participant
    assert other.status_code == 302 and other["Location"] != mine
    assert sorted(Enrolment.objects.values_list("pseudonym", flat=True)) == ["pid-a", "pid-b"]


def test_enrol_refuses_a_taken_pseudonym_without_the_prolific_session():
    study = make_study()
    mine = enrol(study, pseudonym="p", prolific_study_id="S", prolific_session_id="X")
    with pytest.raises(EnrolmentTaken):
        enrol(study, pseudonym="p")
    with pytest.raises(EnrolmentTaken):
        enrol(study, pseudonym="p", prolific_study_id="S", prolific_session_id="Y")
    assert enrol(study, pseudonym="p", prolific_study_id="S", prolific_session_id="X").pk == mine.pk
    enrol(study, pseudonym="q")  # joined without Prolific's ids: only its browser resumes it
    with pytest.raises(EnrolmentTaken):
        enrol(study, pseudonym="q", prolific_study_id="", prolific_session_id="")


# -- the enrolment cookie -------------------------------------------------------------------------
def test_the_enrolment_cookie_is_secure_over_https_and_in_production(study, settings):
    name = f"mvz_enrolment_{study.pk}"
    assert not join(study).cookies[name]["secure"]  # the development server speaks plain HTTP
    assert join(study, secure=True).cookies[name]["secure"]  # the request came over HTTPS
    settings.SESSION_COOKIE_SECURE = True  # production settings (DJANGO_DEBUG=0)
    cookie = join(study).cookies[name]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
