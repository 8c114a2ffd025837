"""The REST API: researchers see their own studies only; annotators act by token only."""

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from annotations.models import Response
from studies.models import Enrolment, Study
from studies.services import enrol
from tests.platform.study_helpers import CLASSES, make_study, start

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
    assert api.get("/api/studies/").status_code == 401


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


# -- regressions found by fuzzing the API from its schema (test_api_fuzz.py) ---------------------
def test_a_study_filter_of_non_ascii_digits_is_a_400_and_a_huge_id_finds_no_items(api):
    study = make_study()
    api.force_authenticate(study.owner)
    for bad in ("²", "١", "1.5", "-1", "", "1\x00"):  # "²".isdigit() is True, int("²") a ValueError
        response = api.get("/api/items/", {"study": bad})
        assert response.status_code == 400 and "study id" in response.json()["study"], bad
    assert api.get("/api/items/", {"study": "9" * 30}).json() == []  # beyond SQLite's integers
    assert len(api.get("/api/items/", {"study": str(study.pk)}).json()) == study.items.count()


@pytest.mark.parametrize("group_size", [2**31, 2**63, 2**70])
def test_a_group_size_no_database_column_holds_is_a_400_and_creates_nothing(api, group_size):
    base = make_study()
    api.force_authenticate(base.owner)
    response = api.post("/api/studies/", {"bundle": base.bundle.pk, "title": "big", "presets": ["U"],
                                          "group_size": group_size}, format="json")
    assert response.status_code == 400 and "group_size" in response.json()
    assert Study.objects.count() == 1
    largest = api.post("/api/studies/", {"bundle": base.bundle.pk, "title": "big", "presets": ["U"],
                                         "group_size": 2**31 - 1}, format="json")
    assert largest.status_code == 201 and largest.json()["conditions"][0]["target_size"] == 2**31 - 1


def test_a_token_with_a_nul_character_is_a_404_on_every_database(api):
    e = start(enrol(make_study(), pseudonym="a"))
    for url in (f"/api/annotate/{e.token}%00/", "/api/annotate/%00/"):  # PostgreSQL cannot compare text with NUL
        assert api.get(url).status_code == 404
        posted = api.post(url + "responses/", {"item": e.item_order[0], "choice": "red"}, format="json")
        assert posted.status_code == 404 and posted.json()["detail"] == "no enrolment has this token"
    assert Response.objects.count() == 0


def test_an_absurd_time_on_item_is_refused_and_the_studys_figures_stay_computable(api):
    study = make_study(n_items=2, practice=0)
    e = start(enrol(study, pseudonym="a"))
    url = f"/api/annotate/{e.token}/responses/"
    for item in e.item_order:
        refused = api.post(url, {"item": item, "choice": "red", "seconds_on_item": 1.5e308}, format="json")
        assert refused.status_code == 400 and "at most a week" in str(refused.json()["seconds_on_item"])
        assert Response.objects.filter(item_id=item).count() == 0
        assert api.post(url, {"item": item, "choice": "red", "seconds_on_item": 12.5}, format="json").status_code == 201
    api.force_authenticate(study.owner)
    for figures in ("metrics", "summary", "export"):  # two answers of 1.5e308 s made the mean infinite: a 500
        assert api.get(f"/api/studies/{study.pk}/{figures}/").status_code == 200, figures
    assert api.get(f"/api/studies/{study.pk}/metrics/").json()[0]["seconds_per_item"]["mean"] == 12.5


def test_a_url_under_api_that_no_route_takes_is_a_json_404(api):
    study = make_study()
    api.force_authenticate(study.owner)
    for method, url in (("get", "/api/studies/1.5/x/"), ("post", "/api/studies/1.5/close/"), ("get", "/api/nothing/"),
                        ("get", "/api/studies/a%2Fb/")):  # Django's own 404 was an HTML page (a POST's, CSRF's 403)
        response = getattr(api, method)(url)
        assert response.status_code == 404 and response["Content-Type"] == "application/json", url
        assert response.json()["detail"] == "no such API endpoint"
    assert api.get("/api/studies").status_code == 301  # the slash is still appended
    assert Study.objects.get().status == Study.Status.OPEN


def test_a_study_whose_conditions_are_all_paused_cannot_be_opened_through_the_api(api):
    study = make_study()
    Study.objects.filter(pk=study.pk).update(status=Study.Status.PAUSED)
    study.conditions.update(paused=True)
    api.force_authenticate(study.owner)
    refused = api.post(f"/api/studies/{study.pk}/open/")
    assert refused.status_code == 400 and "open at least one condition" in refused.json()["detail"]
    study.refresh_from_db()
    assert study.status == Study.Status.PAUSED
    study.conditions.update(paused=False)
    assert api.post(f"/api/studies/{study.pk}/open/").json()["status"] == "open"


def test_the_schema_documents_refusals_json_bodies_and_the_shapes_returned(client):
    schema = client.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    # 401 without (valid) credentials, 403 a session's write without its CSRF token, 429 a lockout
    assert set(paths["/api/studies/{id}/"]["patch"]["responses"]) == {"200", "400", "401", "403", "404", "413", "429"}
    assert set(paths["/api/studies/{id}/"]["get"]["responses"]) == {"200", "401", "404", "429"}
    assert set(paths["/api/annotate/{token}/responses/"]["post"]["responses"]) == {"200", "201", "400", "404", "409",
                                                                                    "413"}
    assert set(paths["/api/annotate/{token}/"]["get"]["responses"]) == {"200", "404"}  # no login: no 403
    assert list(paths["/api/studies/"]["post"]["requestBody"]["content"]) == ["application/json"]
    metrics = paths["/api/studies/{id}/metrics/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert metrics["type"] == "array"  # it was documented as an object
    assert [p["name"] for p in paths["/api/items/"]["get"]["parameters"]] == ["study"]
    assert schema["components"]["securitySchemes"]["basicAuth"] == {"type": "http", "scheme": "basic"}
    group_size = schema["components"]["schemas"]["StudyCreate"]["properties"]["group_size"]
    assert group_size["maximum"] == 2**31 - 1


def test_basic_auth_credentials_with_a_nul_character_are_refused_not_a_server_error(client):
    import base64

    study = make_study()
    for credentials in ("a\x00b:pw", f"{study.owner.username}:pw\x00", "\x00:\x00"):
        header = "Basic " + base64.b64encode(credentials.encode()).decode()
        response = client.get("/api/studies/", HTTP_AUTHORIZATION=header)  # PostgreSQL cannot compare NUL
        assert response.status_code == 401 and "Invalid username/password" in response.json()["detail"]


def test_a_session_cookie_with_a_nul_character_is_no_session(client):
    cookie = {"HTTP_COOKIE": "sessionid=abcdefgh\x00ijklmnop"}  # sent as is: Django's session store would query it
    assert client.get("/api/studies/", **cookie).status_code == 401
    assert client.get("/studies/", **cookie).status_code == 302  # to the login page


def test_an_unknown_field_in_any_writable_body_is_a_400_naming_it_and_changes_nothing(api):
    study = make_study(n_items=2, practice=0)
    api.force_authenticate(study.owner)
    item, condition = study.items.first(), study.conditions.first()
    writes = [
        ("patch", f"/api/items/{item.pk}/", {"is_practise": True}, "is_practise"),  # misspelt is_practice
        ("put", f"/api/items/{item.pk}/", {"choices": ["red", "blue"], "is_practice": True, "order": 0,
                                          "colour": "x"}, "colour"),
        ("patch", f"/api/studies/{study.pk}/", {"title": "renamed", "name": "renamed"}, "name"),
        ("patch", f"/api/conditions/{condition.pk}/", {"pause": True}, "pause"),
        ("post", "/api/studies/", {"bundle": study.bundle.pk, "title": "new", "preset": ["U"]}, "preset"),
    ]
    for method, url, body, unknown in writes:
        refused = getattr(api, method)(url, body, format="json")
        assert refused.status_code == 400, (url, refused.content)
        assert unknown in refused.json() and "unknown field" in refused.json()[unknown][0]
    item.refresh_from_db()
    study.refresh_from_db()
    condition.refresh_from_db()
    assert (item.is_practice, item.choices, study.title, condition.paused) == (False, CLASSES, "t", False)
    assert Study.objects.count() == 1
    # the fields the API itself returns, read-only ones included, may be sent back as they are
    sent_back = api.get(f"/api/items/{item.pk}/").json()
    assert api.put(f"/api/items/{item.pk}/", sent_back, format="json").status_code == 200
    # an annotator's answer too; with another field wrong, both are named
    e = start(enrol(study, pseudonym="a"))
    answer = api.post(f"/api/annotate/{e.token}/responses/", {"item": "x", "choise": "red"}, format="json")
    assert answer.status_code == 400 and set(answer.json()) == {"item", "choise"}
    assert Response.objects.count() == 0


def test_the_schema_says_bodies_take_only_their_own_fields(client):
    schemas = client.get("/api/schema/?format=json").json()["components"]["schemas"]
    for name in ("PatchedStudyItem", "StudyItem", "PatchedCondition", "StudyCreate", "Answer"):
        assert schemas[name]["additionalProperties"] is False, name


def test_missing_or_wrong_credentials_get_401_with_a_basic_challenge(client):
    import base64

    study = make_study()
    study.owner.set_password("the-right-passphrase")
    study.owner.save()
    wrong = "Basic " + base64.b64encode(f"{study.owner.username}:wrong".encode()).decode()
    right = "Basic " + base64.b64encode(f"{study.owner.username}:the-right-passphrase".encode()).decode()
    for headers in ({}, {"HTTP_AUTHORIZATION": wrong}):
        response = client.patch(f"/api/studies/{study.pk}/", {"title": "x"}, content_type="application/json",
                                **headers)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Basic realm="MultiViz Studies API"'
    assert client.get("/api/studies/", HTTP_AUTHORIZATION=right).status_code == 200
