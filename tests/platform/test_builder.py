"""The study builder: create from a bundle, edit, preview any condition, open/pause/close."""

import pytest
from django.contrib.auth.models import User

from studies.models import Study
from studies.services import StudyError, enrol, import_bundle, parse_condition
from tests.platform.study_helpers import make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher(client):
    user = User.objects.create_user("builder", password="a-long-passphrase")
    client.force_login(user)
    return user


def test_custom_conditions_take_any_set_of_stages():
    assert parse_condition("U+P: U P") == ("U+P", ["U", "P"], {})
    assert parse_condition("everything: P Rg rl c u") == ("everything", ["U", "C", "Rl", "Rg", "P"], {})
    assert parse_condition("No-Viz:") == ("No-Viz", [], {})
    with pytest.raises(StudyError, match="not a stage"):
        parse_condition("odd: U X")
    with pytest.raises(StudyError, match="name: stages"):
        parse_condition("U P")


def test_a_study_is_built_edited_previewed_and_opened(client, researcher, bundle_copy):
    bundle = import_bundle(bundle_copy, owner=researcher)
    created = client.post("/studies/new/", {"title": "Built", "bundle": bundle.pk, "task": "simulation",
                                            "preset": ["U", "MultiViz (U+C+Rℓ+Rg+P)"], "custom": "U+P: U P",
                                            "practice": "1", "group_size": "2"})
    study = Study.objects.get(title="Built")
    assert created.status_code == 302 and created["Location"] == f"/studies/{study.pk}/edit/"
    assert [c.name for c in study.conditions.all()] == ["U", "MultiViz (U+C+Rℓ+Rg+P)", "U+P"]
    assert all(c.target_size == 2 for c in study.conditions.all()) and study.status == "draft"
    edit = f"/studies/{study.pk}/edit/"
    counted = study.items.get(is_practice=False)
    pick = sorted(bundle.class_names)[:3]
    client.post(edit, {"action": "items", f"include-{counted.pk}": "on", f"choices-{counted.pk}": ", ".join(pick),
                       **{f"include-{i.pk}": "on" for i in study.items.all()},
                       **{f"practice-{i.pk}": "on" for i in study.items.filter(is_practice=True)}})
    counted.refresh_from_db()
    assert counted.choices == pick
    u_plus_p = study.conditions.get(name="U+P")
    client.post(edit, {"action": "conditions", **{f"size-{c.pk}": "4" for c in study.conditions.all()},
                       f"live_sog-{u_plus_p.pk}": "on"})
    u_plus_p.refresh_from_db()
    assert u_plus_p.target_size == 4 and u_plus_p.live_sog and not u_plus_p.paused
    preview = client.get(f"/studies/{study.pk}/preview/{u_plus_p.pk}/", {"item": 1}).content.decode()
    assert "Preview as an annotator of" in preview and "Prediction" in preview and "C-phrase" not in preview
    assert "Pick words" in preview and "disabled" in preview
    client.post(edit, {"action": "open"})
    study.refresh_from_db()
    assert study.status == "open"
    assert client.get(f"/join/{study.invite_token}/").status_code == 302


@pytest.mark.parametrize("form, message", [
    ({"title": "", "preset": ["U"]}, "needs a title"),
    ({"title": "x", "preset": [], "custom": ""}, "at least one condition"),
    ({"title": "x", "preset": ["U"], "custom": "U: U C"}, "names must differ"),
    ({"title": "x", "preset": ["U"], "practice": "9"}, "practice must leave counted items"),
    ({"title": "x", "preset": ["U"], "custom": "bad line"}, "name: stages"),
])
def test_bad_builder_input_is_shown_and_creates_nothing(client, researcher, bundle_copy, form, message):
    bundle = import_bundle(bundle_copy, owner=researcher)
    response = client.post("/studies/new/", {"bundle": bundle.pk, "task": "simulation", "practice": "1", **form})
    assert response.status_code == 400 and message.lower() in response.content.decode().lower()
    assert Study.objects.count() == 0


def test_items_are_locked_once_annotators_start_and_bad_choices_are_refused(client):
    study = make_study()
    client.force_login(study.owner)
    item = study.items.filter(is_practice=False).first()
    edit = f"/studies/{study.pk}/edit/"
    everything = {f"include-{i.pk}": "on" for i in study.items.all()}
    bad = client.post(edit, {"action": "items", **everything, f"choices-{item.pk}": "red, mauve"})
    assert bad.status_code == 400 and "mauve are not" in bad.content.decode()
    enrol(study, pseudonym="first")
    locked = client.post(edit, {"action": "items", **everything, f"choices-{item.pk}": "red, blue"})
    assert locked.status_code == 400 and "can no longer change" in locked.content.decode()
    item.refresh_from_db()
    assert item.choices == ["red", "blue", "green", "yellow"]


def test_a_study_with_every_condition_paused_cannot_open(client):
    study = make_study()
    study.status = "draft"
    study.save()
    study.conditions.update(paused=True)
    client.force_login(study.owner)
    response = client.post(f"/studies/{study.pk}/edit/", {"action": "open"})
    assert response.status_code == 400 and "Open at least one condition" in response.content.decode()


def test_another_researcher_cannot_edit_or_preview(client):
    study = make_study()
    client.force_login(User.objects.create_user("mallory"))
    assert client.get(f"/studies/{study.pk}/edit/").status_code == 404
    assert client.post(f"/studies/{study.pk}/edit/", {"action": "closed"}).status_code == 404
    assert client.get(f"/studies/{study.pk}/preview/{study.conditions.first().pk}/").status_code == 404
    assert client.get(f"/studies/{study.pk}/preview/{study.conditions.first().pk}/instructions/").status_code == 404
    assert client.post(f"/studies/{study.pk}/edit/", {"action": "cards", "card-U-title": "mine"}).status_code == 404
    study.refresh_from_db()
    assert study.training_cards == {}
    assert study.status == "open"
