"""Every write goes through the services: the REST API refuses what the builder refuses, in
the same words, and the admin cannot change what a service rules."""

import pytest
from django.contrib.auth.models import User
from django.utils.html import escape
from rest_framework.test import APIClient

from studies.models import Condition, Enrolment, Study, StudyItem
from studies.services import enrol
from tests.platform.study_helpers import CLASSES, make_study

pytestmark = pytest.mark.django_db


def draft_study(**kwargs):
    study = make_study(n_items=1, practice=1, **kwargs)  # one counted item
    Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
    return Study.objects.get(pk=study.pk)


def items_form(study, **changes):
    """The builder's item form as its page sends it (every item kept, practice as now)."""
    form = {"action": "items"}
    for item in study.items.all():
        form[f"include-{item.pk}"] = "on"
        if item.is_practice:
            form[f"practice-{item.pk}"] = "on"
        form[f"choices-{item.pk}"] = ", ".join(item.choices)
    form.update(changes)
    return form


def conditions_form(study, **changes):
    form = {"action": "conditions", **{f"size-{c.pk}": str(c.target_size) for c in study.conditions.all()}}
    form.update(changes)
    return form


def counted(study):
    return study.items.filter(is_practice=False).order_by("order").first()


# each case: (the builder's form, the API's request), both the same change to the same study
CASES = {
    "a simulation item with one choice": (
        lambda s: items_form(s, **{f"choices-{counted(s).pk}": "red"}),
        lambda s: ("patch", f"/api/items/{counted(s).pk}/", {"choices": ["red"]})),
    "a choice that is no class of the model": (
        lambda s: items_form(s, **{f"choices-{counted(s).pk}": "red, mauve"}),
        lambda s: ("patch", f"/api/items/{counted(s).pk}/", {"choices": ["red", "mauve"]})),
    "a choice given twice": (
        lambda s: items_form(s, **{f"choices-{counted(s).pk}": "red, red"}),
        lambda s: ("patch", f"/api/items/{counted(s).pk}/", {"choices": ["red", "red"]})),
    "a study with no counted item": (
        lambda s: items_form(s, **{f"practice-{i.pk}": "on" for i in s.items.all()}),
        lambda s: ("patch", f"/api/items/{counted(s).pk}/", {"is_practice": True})),
    "a negative target size": (
        lambda s: conditions_form(s, **{f"size-{s.conditions.first().pk}": "-1"}),
        lambda s: ("patch", f"/api/conditions/{s.conditions.first().pk}/", {"target_size": -1})),
    "a target size beyond what the database holds": (
        lambda s: conditions_form(s, **{f"size-{s.conditions.first().pk}": str(2**31)}),
        lambda s: ("patch", f"/api/conditions/{s.conditions.first().pk}/", {"target_size": 2**31})),
    "a blank title": (
        lambda s: {"action": "texts", "title": "   ", "instructions": "", "consent_text": ""},
        lambda s: ("patch", f"/api/studies/{s.pk}/", {"title": "   "})),
    "a title longer than its column": (
        lambda s: {"action": "texts", "title": "x" * 201, "instructions": "", "consent_text": ""},
        lambda s: ("patch", f"/api/studies/{s.pk}/", {"title": "x" * 201})),
    "a training card text longer than its limit": (
        lambda s: {"action": "cards", "card-U-shows": "x" * 2001},
        lambda s: ("patch", f"/api/studies/{s.pk}/", {"training_cards": {"U": {"shows": "x" * 2001}}})),
    "a training card text with a NUL": (
        lambda s: {"action": "cards", "card-U-title": "U\x00"},
        lambda s: ("patch", f"/api/studies/{s.pk}/", {"training_cards": {"U": {"title": "U\x00"}}})),
}


def state(study):
    """Everything the writes above could change."""
    return (list(StudyItem.objects.filter(study=study).order_by("pk").values_list("choices", "is_practice", "order")),
            list(Condition.objects.filter(study=study).order_by("pk").values_list("target_size", "paused")),
            Study.objects.get(pk=study.pk).title, Study.objects.get(pk=study.pk).training_cards)


@pytest.mark.parametrize("case", list(CASES))
def test_the_api_refuses_what_the_builder_refuses_with_the_same_message(client, case):
    form, request = CASES[case]
    study = draft_study()
    client.force_login(study.owner)
    api = APIClient()
    api.force_authenticate(study.owner)
    before = state(study)

    page = client.post(f"/studies/{study.pk}/edit/", form(study))
    method, url, body = request(study)
    refused = getattr(api, method)(url, body, format="json")

    assert page.status_code == 400 and refused.status_code == 400, refused.content
    message = refused.json()["detail"]
    assert escape(message[:1].upper() + message[1:]) in page.content.decode(), message
    assert state(study) == before


def test_once_an_annotator_started_the_api_and_the_builder_refuse_item_changes_alike(client):
    study = make_study(n_items=2, practice=1)
    enrol(study, pseudonym="first")
    client.force_login(study.owner)
    api = APIClient()
    api.force_authenticate(study.owner)
    item = counted(study)
    page = client.post(f"/studies/{study.pk}/edit/", items_form(study, **{f"choices-{item.pk}": "red, blue"}))
    refused = api.patch(f"/api/items/{item.pk}/", {"choices": ["red", "blue"]}, format="json")
    message = refused.json()["detail"]
    assert page.status_code == refused.status_code == 400
    assert message == "annotators have started this study; its items can no longer change"
    assert escape(message[:1].upper() + message[1:]) in page.content.decode()
    item.refresh_from_db()
    assert item.choices == CLASSES


def test_the_api_writes_what_the_builder_accepts(client):
    study = draft_study()
    api = APIClient()
    api.force_authenticate(study.owner)
    item, condition = counted(study), study.conditions.first()
    assert api.patch(f"/api/items/{item.pk}/", {"choices": [" blue", "red "], "order": 7},
                     format="json").json()["choices"] == ["blue", "red"]
    assert api.patch(f"/api/conditions/{condition.pk}/", {"target_size": 0}, format="json").json()["target_size"] == 0
    condition.refresh_from_db()
    assert not condition.paused  # a flag the request left out keeps its value
    renamed = api.patch(f"/api/studies/{study.pk}/", {"title": " Renamed ", "completion_code": "C1"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["title"] == "Renamed"
    item.refresh_from_db()
    study.refresh_from_db()
    assert (item.choices, item.order, study.title, study.completion_code) == (["blue", "red"], 7, "Renamed", "C1")


def test_the_item_order_cannot_change_once_annotators_started(client):
    study = make_study(item_order=Study.Order.SHUFFLED)
    api = APIClient()
    api.force_authenticate(study.owner)
    enrol(study, pseudonym="first")
    refused = api.patch(f"/api/studies/{study.pk}/", {"item_order": "fixed"}, format="json")
    assert refused.status_code == 400 and "order of its items can no longer change" in refused.json()["detail"]
    assert api.patch(f"/api/studies/{study.pk}/", {"item_order": "shuffled"}, format="json").status_code == 200


def test_the_admin_shows_what_services_rule_but_changes_only_ownership_and_sharing(client):
    study = make_study(n_items=2, practice=1)
    enrol(study, pseudonym="a")
    admin = User.objects.create_superuser("admin", password="admin-passphrase")
    client.force_login(admin)
    rows = {"condition": study.conditions.first(), "studyitem": counted(study),
            "enrolment": Enrolment.objects.get(study=study)}
    for model, row in rows.items():
        change = f"/admin/studies/{model}/{row.pk}/change/"
        assert client.get(change).status_code == 200  # shown, read-only
        assert client.post(change, {}).status_code == 403
        assert client.get(f"/admin/studies/{model}/add/").status_code == 403
        assert client.post(f"/admin/studies/{model}/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/studies/study/add/").status_code == 403
    other = User.objects.create_user("colleague")
    saved = client.post(f"/admin/studies/study/{study.pk}/change/", {
        "owner": study.owner.pk, "shared_with": [other.pk], "title": "changed in the admin",
        "conditions-TOTAL_FORMS": "1", "conditions-INITIAL_FORMS": "1", "conditions-MIN_NUM_FORMS": "0",
        "conditions-MAX_NUM_FORMS": "1000"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    study.refresh_from_db()
    assert study.title == "t" and list(study.shared_with.all()) == [other]
