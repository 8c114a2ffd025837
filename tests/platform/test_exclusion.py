"""The researcher excludes an annotator from the metrics, with a reason: reversible,
recorded with who and when, shown on the study page, carried by every export."""

import csv
import io
import json

import pytest
from django.db.models import Count, Max
from rest_framework.test import APIClient

from annotations.exports import annotators_csv, responses_csv, study_json
from annotations.selectors import condition_metrics, counted_responses
from studies.models import Enrolment
from studies.services import StudyError, enrol, set_exclusion
from tests.platform.study_helpers import answer_all, make_study

pytestmark = pytest.mark.django_db


def simulated():
    """Three annotators: a and b answer as the model, c always 'red' (right on 1 of 4)."""
    study = make_study(n_items=4, practice=1, conditions=(("U", ["U"], 0),))
    for name in "ab":
        answer_all(enrol(study, pseudonym=name), lambda item: {"choice": item.bundle_item.prediction})
    answer_all(enrol(study, pseudonym="c"), lambda item: {"choice": "red"})
    return study


def enrolment(study, name):
    return Enrolment.objects.get(study=study, pseudonym=name)


def test_an_excluded_annotator_counts_in_no_metric_until_included_again():
    study = simulated()
    (condition,) = study.conditions.all()
    before = condition_metrics(condition)
    assert before["annotators"] == 3 and before["accuracy"]["mean"] == pytest.approx((1 + 1 + .25) / 3)
    set_exclusion(study, {"enrolment": enrolment(study, "c").pk, "excluded": True, "reason": "answered red throughout"},
                  study.owner)
    after = condition_metrics(condition)
    assert after["annotators"] == 2 and after["accuracy"]["mean"] == 1.0 and after["alpha"] == 1.0
    set_exclusion(study, {"enrolment": enrolment(study, "c").pk, "excluded": False, "reason": "excluded by mistake"},
                  study.owner)
    assert condition_metrics(condition)["accuracy"] == before["accuracy"]


def test_each_change_is_recorded_with_who_and_when_and_a_double_click_records_once():
    study = simulated()
    c = enrolment(study, "c")
    for _ in range(2):
        set_exclusion(study, {"enrolment": c.pk, "excluded": "true", "reason": " straight-lined "}, study.owner)
    set_exclusion(study, {"enrolment": c.pk, "excluded": "false", "reason": "checked again"}, study.owner)
    c.refresh_from_db()
    assert [(h["excluded"], h["reason"], h["by"]) for h in c.exclusion_history] == [
        (True, "straight-lined", study.owner.username), (False, "checked again", study.owner.username)]
    assert not c.excluded and c.exclusion_changed_by == study.owner and c.exclusion_changed_at is not None


@pytest.mark.parametrize("data, field", [
    ({"excluded": True, "reason": "   "}, "reason"),
    ({"excluded": True}, "reason"),
    ({"excluded": "maybe", "reason": "x"}, "excluded"),
    ({"excluded": True, "reason": "x", "enrolment": 999999}, "enrolment"),
])
def test_an_exclusion_without_a_reason_or_of_no_annotator_is_refused_naming_the_field(data, field):
    study = simulated()
    c = enrolment(study, "c")
    with pytest.raises(StudyError, match=f"^{field}: "):
        set_exclusion(study, {"enrolment": c.pk, **data}, study.owner)
    c.refresh_from_db()
    assert not c.excluded and c.exclusion_history == []


def test_an_annotator_of_another_study_cannot_be_excluded_through_this_one():
    study, other = simulated(), simulated()
    with pytest.raises(StudyError, match="no annotator of this study"):
        set_exclusion(study, {"enrolment": enrolment(other, "c").pk, "excluded": True, "reason": "x"}, study.owner)


def test_every_export_marks_excluded_annotators_with_the_reason():
    study = simulated()
    set_exclusion(study, {"enrolment": enrolment(study, "c").pk, "excluded": True, "reason": "failed, the checks"},
                  study.owner)
    responses = list(csv.DictReader(io.StringIO(responses_csv(study))))
    assert {(r["annotator"], r["excluded"], r["exclusion_reason"]) for r in responses} == {
        ("a", "False", ""), ("b", "False", ""), ("c", "True", "failed, the checks")}
    annotators = {r["annotator"]: r for r in csv.DictReader(io.StringIO(annotators_csv(study)))}
    assert annotators["c"]["excluded"] == "True" and annotators["c"]["exclusion_reason"] == "failed, the checks"
    assert annotators["c"]["exclusion_changed_by"] == study.owner.username and annotators["c"]["exclusion_changed_at"]
    assert annotators["a"]["excluded"] == "False"
    data = json.loads(json.dumps(study_json(study), default=str))
    (c,) = [a for a in data["annotators"] if a["annotator"] == "c"]
    assert c["excluded"] is True and c["exclusion_history"][0]["reason"] == "failed, the checks"
    assert data["metrics"][0]["annotators"] == 2


def _key(condition):
    """What a cache of the condition's metrics must be keyed on (see counted_responses)."""
    return tuple(counted_responses(condition).aggregate(Count("pk"), Max("pk"), Max("enrolment__exclusion_changed_at"))
                 .values())


def test_a_key_derived_from_the_counted_responses_changes_with_every_exclusion_change():
    study = simulated()
    (condition,) = study.conditions.all()
    a, b = enrolment(study, "a").pk, enrolment(study, "b").pk
    keys = [_key(condition)]
    set_exclusion(study, {"enrolment": a, "excluded": True, "reason": "x"}, study.owner)
    keys.append(_key(condition))
    # swap who is excluded: as many counted answers, the same last one (c's), another set
    set_exclusion(study, {"enrolment": a, "excluded": False, "reason": "y"}, study.owner)
    set_exclusion(study, {"enrolment": b, "excluded": True, "reason": "y"}, study.owner)
    keys.append(_key(condition))
    assert len(set(keys)) == 3


def test_the_study_page_form_excludes_and_shows_the_reason_and_refuses_a_blank_one(client):
    study = simulated()
    client.force_login(study.owner)
    c = enrolment(study, "c")
    url = f"/studies/{study.pk}/exclusions/"
    refused = client.post(url, {"enrolment": c.pk, "excluded": "true", "reason": ""})
    assert refused.status_code == 400 and "Reason: say why" in refused.content.decode()
    assert not enrolment(study, "c").excluded
    assert client.post(url, {"enrolment": c.pk, "excluded": "true", "reason": "too fast"}).status_code == 302
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert "too fast" in page
    monitor = client.get(f"/studies/{study.pk}/monitor.json").json()
    assert {a["annotator"]: a["excluded"] for a in monitor["annotators"]} == {"a": "", "b": "", "c": "too fast"}


def test_the_api_excludes_with_a_reason_and_refuses_none(client):
    study = simulated()
    api = APIClient()
    api.force_authenticate(study.owner)
    c = enrolment(study, "c")
    url = f"/api/studies/{study.pk}/exclusions/"
    refused = api.post(url, {"enrolment": c.pk, "excluded": True, "reason": ""}, format="json")
    assert refused.status_code == 400 and "reason" in refused.json()
    done = api.post(url, {"enrolment": c.pk, "excluded": True, "reason": "bot-like timing"}, format="json")
    assert done.status_code == 200 and done.json()["excluded"] is True
    assert done.json()["exclusion_changed_by"] == study.owner.username
    assert api.get(f"/api/studies/{study.pk}/metrics/").json()[0]["annotators"] == 2
    stranger = APIClient()
    from django.contrib.auth.models import User
    stranger.force_authenticate(User.objects.create_user("stranger"))
    assert stranger.post(url, {"enrolment": c.pk, "excluded": False, "reason": "z"}, format="json").status_code == 404


def test_a_moved_study_keeps_its_exclusions_and_an_older_document_imports_with_none():
    from annotations.transfer import export_study, import_study
    from tests.platform.test_study_transfer import delete_study

    study = simulated()
    set_exclusion(study, {"enrolment": enrolment(study, "c").pk, "excluded": True, "reason": "too fast"}, study.owner)
    figures = [condition_metrics(c) for c in study.conditions.all()]
    document, owner = export_study(study), study.owner
    delete_study(study)
    moved = import_study(document, owner)
    c = enrolment(moved, "c")
    assert c.excluded and c.exclusion_reason == "too fast" and c.exclusion_changed_by == owner
    assert [h["reason"] for h in c.exclusion_history] == ["too fast"]
    assert [condition_metrics(x) for x in moved.conditions.all()] == figures
    delete_study(moved)
    for e in document["enrolments"]:  # as written before exclusions existed
        for key in ("excluded", "exclusion_reason", "exclusion_changed_by", "exclusion_changed_at", "exclusion_history"):
            del e[key]
    assert not enrolment(import_study(document, owner), "c").excluded
