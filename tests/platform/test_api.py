"""The REST API: researchers see their own studies only; annotators act by token only."""

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from annotations.models import Response
from studies.models import Enrolment, Study
from studies.services import enrol
from tests.platform.study_helpers import make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


def test_a_researcher_lists_and_reads_only_their_own_studies(api):
    mine, theirs = make_study(), make_study()
    api.force_authenticate(mine.owner)
    listed = api.get("/api/studies/").json()
    assert [s["id"] for s in listed] == [mine.pk]
    assert api.get(f"/api/studies/{theirs.pk}/").status_code == 404
    assert api.get(f"/api/studies/{theirs.pk}/metrics/").status_code == 404
    assert api.post(f"/api/studies/{theirs.pk}/close/").status_code == 404
    assert api.patch(f"/api/conditions/{theirs.conditions.first().pk}/", {"paused": True}).status_code == 404


def test_anonymous_requests_to_researcher_endpoints_are_refused(api):
    make_study()
    assert api.get("/api/studies/").status_code in (401, 403)


def test_a_researcher_creates_a_study_from_presets_and_opens_it(api):
    base = make_study()
    api.force_authenticate(base.owner)
    lacking = api.post("/api/studies/", {"bundle": base.bundle.pk, "title": "x", "presets": ["U+C"]}, format="json")
    assert lacking.status_code == 400 and "lacks stage(s) ['C']" in lacking.json()["detail"]
    base.bundle.stages = ["U", "C", "Rl", "Rg", "P"]
    base.bundle.save()
    created = api.post("/api/studies/", {"bundle": base.bundle.pk, "title": "via API",
                                         "presets": ["U", "U+C"], "practice": 1}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert [c["name"] for c in body["conditions"]] == ["U", "U+C"] and body["status"] == "draft"
    bad = api.post("/api/studies/", {"bundle": base.bundle.pk, "title": "x", "presets": ["U+Z"]}, format="json")
    assert bad.status_code == 400 and "unknown preset" in bad.json()["detail"]
    assert api.post(f"/api/studies/{body['id']}/open/").json()["status"] == "open"


def test_item_choices_are_editable_until_annotators_start(api):
    study = make_study()
    api.force_authenticate(study.owner)
    item = study.items.first()
    ok = api.patch(f"/api/items/{item.pk}/", {"choices": ["red", "blue"]}, format="json")
    assert ok.status_code == 200 and ok.json()["choices"] == ["red", "blue"]
    bad = api.patch(f"/api/items/{item.pk}/", {"choices": ["red", "mauve"]}, format="json")
    assert bad.status_code == 400 and "mauve" in str(bad.json())
    enrol(study, pseudonym="someone")
    late = api.patch(f"/api/items/{item.pk}/", {"is_practice": True}, format="json")
    assert late.status_code == 400 and "started" in str(late.json())


def test_an_annotator_answers_by_token_and_a_double_submit_counts_once(api):
    study = make_study(n_items=2, practice=0)
    e = enrol(study, pseudonym="a")
    Enrolment.objects.filter(pk=e.pk).update(step="items")
    state = api.get(f"/api/annotate/{e.token}/").json()
    item = state["item"]
    assert set(item["sections"]) <= {"U"} and "prediction" not in item
    url = f"/api/annotate/{e.token}/responses/"
    first = api.post(url, {"item": item["item"], "choice": "red"}, format="json")
    again = api.post(url, {"item": item["item"], "choice": "red"}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    changed = api.post(url, {"item": item["item"], "choice": "blue"}, format="json")
    assert changed.status_code == 409
    assert Response.objects.count() == 1


@pytest.mark.parametrize("payload, code, message", [
    ({"item": "x", "choice": "red"}, 400, "item"),
    ({"choice": "red"}, 400, "item"),
])
def test_malformed_answers_are_refused(api, payload, code, message):
    study = make_study()
    e = enrol(study, pseudonym="a")
    response = api.post(f"/api/annotate/{e.token}/responses/", payload, format="json")
    assert response.status_code == code and message in str(response.json())


def test_forged_tokens_get_404_and_closed_studies_409(api):
    assert api.get("/api/annotate/forged/").status_code == 404
    study = make_study(n_items=1, practice=0)
    e = enrol(study, pseudonym="a")
    Enrolment.objects.filter(pk=e.pk).update(step="items")
    Study.objects.filter(pk=study.pk).update(status="closed")
    closed = api.post(f"/api/annotate/{e.token}/responses/", {"item": e.item_order[0], "choice": "red"}, format="json")
    assert closed.status_code == 409 and "closed" in closed.json()["detail"]


def test_the_openapi_schema_describes_the_api(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/studies/", "/api/annotate/{token}/responses/", "/api/items/{id}/", "/api/studies/{id}/metrics/"):
        assert path in text, path


def test_metrics_and_summary_are_served(api):
    study = make_study()
    api.force_authenticate(study.owner)
    User.objects.create_user("other")
    metrics = api.get(f"/api/studies/{study.pk}/metrics/").json()
    assert metrics[0]["condition"] == "U" and metrics[0]["alpha"] is None
    assert api.get(f"/api/studies/{study.pk}/summary/").json()[0]["condition"] == "U"


def test_a_studys_bundle_cannot_be_swapped_under_its_items(api):
    study, other = make_study(), make_study()
    api.force_authenticate(study.owner)
    response = api.patch(f"/api/studies/{study.pk}/", {"bundle": other.bundle.pk, "title": "renamed"}, format="json")
    assert response.status_code == 200
    study.refresh_from_db()
    assert study.bundle_id != other.bundle_id and study.title == "renamed"
