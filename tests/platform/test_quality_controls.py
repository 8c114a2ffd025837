"""Attention checks and the comprehension gate (issue 16, point 3): where checks are placed,
that they never count, the exclusion rule, the gate's rounds and its screen-out, the
builder's refusals, and what the exports carry."""

import json

import pytest

from annotations.exports import annotator_rows, iter_response_rows, study_json
from annotations.selectors import condition_metrics
from annotations.services import submit_response
from studies.models import Enrolment, StudyItem
from studies.quality import attention_score, gate_status
from studies.services import StudyError, enrol, repeat_practice, update_items, update_quality_controls
from annotations.transfer import export_study, import_study
from tests.platform.study_helpers import CLASSES, make_study, start

pytestmark = pytest.mark.django_db


def _wrong(item):
    return CLASSES[(CLASSES.index(item.bundle_item.prediction) + 1) % 4]


def checked_study(n_items=6, practice=2, checks=2, **kwargs):
    """A simulation study whose last ``checks`` items are attention checks (expected: blue)."""
    study = make_study(n_items=n_items, practice=practice, conditions=(("U", ["U"], 0),), **kwargs)
    for item in study.items.order_by("-order")[:checks]:
        item.attention_check, item.expected_answer, item.instruction = True, "blue", "To show you read this, choose blue."
        item.save()
    return study


def test_attention_checks_come_among_the_counted_items_never_first_and_at_places_that_differ_per_annotator():
    study = checked_study(n_items=12, practice=1, checks=2)
    checks = set(study.items.filter(attention_check=True).values_list("pk", flat=True))
    practice = set(study.items.filter(is_practice=True).values_list("pk", flat=True))
    places = set()
    for k in range(20):
        order = enrol(study, pseudonym=f"p{k}").item_order
        assert set(order[:1]) == practice and order[1] not in checks  # practice first; a check never opens
        assert sorted(order) == sorted(study.items.values_list("pk", flat=True))
        places.add(tuple(n for n, pk in enumerate(order) if pk in checks))
    assert len(places) > 5


def test_attention_checks_never_count_in_any_metric():
    study = checked_study(n_items=4, practice=1, checks=1)
    e = start(enrol(study, pseudonym="a"))
    for pk in e.item_order:
        item = StudyItem.objects.get(pk=pk)
        submit_response(e, pk, {"choice": item.expected_answer or item.bundle_item.prediction})
    m = condition_metrics(study.conditions.get())
    assert m["responses"] == 3 and m["accuracy"]["mean"] == 1.0  # 3 counted items, the check left out


def test_too_few_right_attention_checks_exclude_the_annotator_with_the_reason_when_they_finish():
    study = checked_study(attention_min_correct=2)
    careful, careless = start(enrol(study, pseudonym="careful")), start(enrol(study, pseudonym="careless"))
    for e, check_answer in ((careful, "blue"), (careless, "red")):
        for pk in e.item_order:
            item = StudyItem.objects.get(pk=pk)
            submit_response(e, pk, {"choice": check_answer if item.attention_check else item.bundle_item.prediction})
    careful.refresh_from_db()
    careless.refresh_from_db()
    assert attention_score(careful) == (2, 2) and not careful.excluded
    assert attention_score(careless) == (0, 2) and careless.excluded
    assert careless.exclusion_reason == "attention checks: 0 of 2 right, fewer than the study's 2"
    assert careless.exclusion_history[-1]["by"] == ""  # the study's rule, not a researcher
    rows = {r["annotator"]: r for r in annotator_rows(study)}
    assert (rows["careless"]["attention_right"], rows["careless"]["attention_checks"]) == (0, 2)
    assert rows["careless"]["excluded"] and "attention checks" in rows["careless"]["exclusion_reason"]
    check_rows = [r for r in iter_response_rows(study) if r["attention_check"]]
    assert {(r["annotator"], r["expected_answer"], r["answer_right"]) for r in check_rows} == {
        ("careful", "blue", True), ("careless", "blue", False)}


def _practise(e, pick):
    """Answer the practice items of the current round."""
    e.refresh_from_db()
    while e.position < e.study.items.filter(is_practice=True).count():
        item = StudyItem.objects.get(pk=e.item_order[e.position])
        submit_response(e, item.pk, {"choice": pick(item)})
        e.refresh_from_db()
    return e


def test_the_gate_lets_an_annotator_practise_again_then_screens_them_out_after_the_last_round():
    study = checked_study(checks=0, gate_min_correct=2, gate_attempts=2)
    e = _practise(start(enrol(study, pseudonym="p")), _wrong)
    assert gate_status(e) == "retry" and e.practice_rounds[-1]["right"] == 0
    counted = e.item_order[e.position]
    with pytest.raises(StudyError, match="practice is to be taken again"):
        submit_response(e, counted, {"choice": "red"})
    e = repeat_practice(e)
    assert e.position == 0 and not e.responses.exists()  # answered again; the first round is kept
    e = _practise(e, _wrong)
    assert e.step == Enrolment.Step.SCREENED_OUT and gate_status(e) == "screened_out"
    assert [(r["round"], r["right"], r["of"], r["passed"]) for r in e.practice_rounds] == [(1, 0, 2, False),
                                                                                          (2, 0, 2, False)]
    assert study.conditions.get().enrolments.count() == 1
    from studies.services import condition_fill
    assert condition_fill(study.conditions.get()) == 0  # a screened-out annotator frees their place


def test_passing_the_gate_on_the_second_round_opens_the_counted_items():
    study = checked_study(checks=0, gate_min_correct=2, gate_attempts=3)
    e = _practise(start(enrol(study, pseudonym="p")), _wrong)
    e = _practise(repeat_practice(e), lambda item: item.bundle_item.prediction)
    assert gate_status(e) == "passed" and e.step == Enrolment.Step.ITEMS
    response, created = submit_response(e, e.item_order[e.position], {"choice": "red"})
    assert created and not response.is_practice


def test_the_annotator_pages_show_the_gate_the_retry_and_the_screen_out_code(client):
    study = checked_study(checks=0, gate_min_correct=1, gate_attempts=2, screened_out_code="SCR1")
    e = _practise(start(enrol(study, pseudonym="p")), _wrong)
    page = client.get(f"/a/{e.token}/")
    assert b"Practise again" in page.content and b"0 of 2" in page.content
    client.post(f"/a/{e.token}/", {"form": "repeat_practice"})
    e.refresh_from_db()
    assert e.position == 0
    _practise(e, _wrong)
    page = client.get(f"/a/{e.token}/")
    assert b"SCR1" in page.content and b"Thank you for your time" in page.content


def test_the_builder_refuses_quality_settings_the_items_cannot_meet_and_saves_nothing():
    study = checked_study(checks=1)
    with pytest.raises(StudyError, match="gate: it asks for 3 right practice answers but the study has 2"):
        update_quality_controls(study, {"gate_min_correct": "3"})
    with pytest.raises(StudyError, match="attention rule: it asks for 2 right attention checks but the study has 1"):
        update_quality_controls(study, {"attention_min_correct": "2"})
    study.refresh_from_db()
    assert study.gate_min_correct is None and study.attention_min_correct is None
    check = study.items.get(attention_check=True)
    with pytest.raises(StudyError, match="needs its expected answer"):
        update_items(study, {check.pk: {"expected_answer": ""}})
    with pytest.raises(StudyError, match="must be one of its choices"):
        update_items(study, {check.pk: {"expected_answer": "purple"}})
    check.refresh_from_db()
    assert check.expected_answer == "blue"
    update_quality_controls(study, {"gate_min_correct": "2", "attention_min_correct": "1", "gate_attempts": "3"})
    study.refresh_from_db()
    assert (study.gate_min_correct, study.attention_min_correct, study.gate_attempts) == (2, 1, 3)


def test_quality_controls_are_fixed_once_anyone_has_enrolled():
    study = checked_study(checks=1)
    enrol(study, pseudonym="p")
    with pytest.raises(StudyError, match="can no longer change"):
        update_quality_controls(study, {"gate_min_correct": "1"})


def test_a_study_with_attention_checks_and_gate_rounds_travels_whole_in_its_document():
    from tests.platform.test_study_transfer import delete_study

    study = checked_study(attention_min_correct=1, gate_min_correct=1)
    _practise(start(enrol(study, pseudonym="p")), _wrong)
    assert study_json(study)["quality_controls"] == {"attention_min_correct": 1, "gate_min_correct": 1,
                                                     "gate_attempts": 2}
    document = json.loads(json.dumps(export_study(study)))  # as it travels: a file
    owner = study.owner
    delete_study(study)
    moved = import_study(document, owner)
    assert (moved.attention_min_correct, moved.gate_min_correct, moved.gate_attempts) == (1, 1, 2)
    assert sorted(moved.items.filter(attention_check=True).values_list("expected_answer", "instruction")) == [
        ("blue", "To show you read this, choose blue.")] * 2
    e = moved.enrolments.get()
    assert [(r["right"], r["of"], r["passed"]) for r in e.practice_rounds] == [(0, 2, False)]
    assert gate_status(e) == "retry"


def test_the_dashboards_quality_table_counts_attention_checks_apart_from_the_counted_answers():
    from annotations.analysis import annotator_quality

    study = checked_study(n_items=4, practice=1, checks=2)
    e = start(enrol(study, pseudonym="p"))
    for pk in e.item_order:
        item = StudyItem.objects.get(pk=pk)
        submit_response(e, pk, {"choice": "red" if item.attention_check else item.bundle_item.prediction})
    row = annotator_quality(study)[0]
    assert (row["answers"], row["accuracy"]) == (2, 1.0)  # the two counted items, both right
    assert (row["attention_right"], row["attention_checks"]) == (0, 2)
