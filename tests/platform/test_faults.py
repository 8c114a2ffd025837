"""When the database is away for a moment the annotator is told to retry and keeps their
answer; the real PostgreSQL restart is the slow test below."""

import re

import pytest
from django.db import OperationalError

from annotations.models import Response
from studies.services import enrol

from .study_helpers import make_study, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_down(monkeypatch):
    """Every answer fails as it would with the database restarting."""
    def unreachable(*_args, **_kwargs):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    monkeypatch.setattr("studies.annotate.submit_response", unreachable)
    monkeypatch.setattr("annotations.api.submit_response", unreachable)


def test_an_answer_sent_while_the_database_is_away_comes_back_in_a_send_again_form(client, database_down):
    study = make_study(practice=0)
    e = start(enrol(study, pseudonym="p"))
    answer = {"item": str(e.item_order[0]), "choice": "green", "seconds_on_item": "12.5"}
    response = client.post(f"/a/{e.token}/", answer)
    html = response.content.decode()
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "it is kept on this page, not lost" in html and 'id="send-again"' in html
    kept = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', html))
    assert {k: kept[k] for k in answer} == answer and kept["csrfmiddlewaretoken"]
    assert re.search(rf'action="/a/{e.token}/"', html)
    assert Response.objects.count() == 0


def test_the_send_again_form_saves_the_answer_once_the_database_is_back(client, monkeypatch):
    study = make_study(practice=0)
    e = start(enrol(study, pseudonym="p"))
    answer = {"item": str(e.item_order[0]), "choice": "green"}
    with monkeypatch.context() as m:
        m.setattr("studies.annotate.submit_response",
                  lambda *a, **k: (_ for _ in ()).throw(OperationalError("server closed the connection")))
        html = client.post(f"/a/{e.token}/", answer).content.decode()
    resent = {k: v for k, v in re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', html)}
    assert client.post(f"/a/{e.token}/", resent).status_code == 302
    assert Response.objects.get().choice == "green"


def test_a_page_asked_for_while_the_database_is_away_says_to_try_again(client, monkeypatch):
    study = make_study()
    e = enrol(study, pseudonym="p")
    monkeypatch.setattr("studies.annotate._enrolment",
                        lambda *a: (_ for _ in ()).throw(OperationalError("the database system is starting up")))
    response = client.get(f"/a/{e.token}/")
    assert response.status_code == 503 and 'id="try-again"' in response.content.decode()
    assert "Everything you answered is saved" in response.content.decode()


def test_the_api_says_to_retry_when_the_database_is_away(client, database_down):
    study = make_study(practice=0)
    e = start(enrol(study, pseudonym="p"))
    response = client.post(f"/api/annotate/{e.token}/responses/", {"item": e.item_order[0], "choice": "red"},
                           content_type="application/json")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "nothing already saved is lost" in response.json()["detail"]
