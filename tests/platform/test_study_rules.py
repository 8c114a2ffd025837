"""The rules that write (enrolment, responses) and the metrics, on hand-built studies."""

import numpy as np
import pytest

from annotations.models import Response
from annotations.selectors import bootstrap_alpha_interval, condition_metrics, krippendorff_nominal, mean_std
from annotations.services import submit_response
from studies.models import Enrolment, Study
from studies.services import StudyError, enrol

from tests.platform.study_helpers import CLASSES, answer_all, make_study, start  # noqa: F401

pytestmark = pytest.mark.django_db


# -- enrolment ------------------------------------------------------------------------------------
def test_newcomers_go_to_the_least_filled_condition_and_stay_there():
    study = make_study(conditions=[("U", ["U"], 3), ("U+C", ["U", "C"], 3), ("all", ["U", "C", "Rl", "Rg", "P"], 3)])
    joined = [enrol(study, pseudonym=f"p{k}", prolific_study_id="S", prolific_session_id=f"s{k}") for k in range(6)]
    sizes = sorted(Enrolment.objects.filter(condition=c).count() for c in study.conditions.all())
    assert sizes == [2, 2, 2]
    again = enrol(study, pseudonym="p0", prolific_study_id="S", prolific_session_id="s0")
    assert again.pk == joined[0].pk and again.condition_id == joined[0].condition_id


def test_paused_and_full_conditions_take_no_one():
    study = make_study(conditions=[("a", ["U"], 1), ("b", ["U"], 5)])
    study.conditions.filter(name="b").update(paused=True)
    enrol(study, pseudonym="first")
    with pytest.raises(StudyError, match="full"):
        enrol(study, pseudonym="second")


def test_a_study_that_is_not_open_refuses_newcomers_but_not_returning_annotators():
    study = make_study()
    mine = enrol(study, pseudonym="returning", prolific_study_id="S", prolific_session_id="X")
    study.status = Study.Status.PAUSED
    study.save()
    assert enrol(study, pseudonym="returning", prolific_study_id="S", prolific_session_id="X").pk == mine.pk
    with pytest.raises(StudyError, match="not open"):
        enrol(study, pseudonym="new")


def test_practice_items_come_first_and_the_shuffle_is_per_annotator():
    study = make_study(n_items=8, practice=2)
    practice = list(study.items.filter(is_practice=True).order_by("order").values_list("pk", flat=True))
    orders = [enrol(study, pseudonym=f"p{k}").item_order for k in range(3)]
    assert all(o[:2] == practice for o in orders)
    assert len({tuple(o[2:]) for o in orders}) > 1
    fixed = make_study(n_items=8, practice=2, item_order=Study.Order.FIXED)
    assert enrol(fixed, pseudonym="a").item_order == enrol(fixed, pseudonym="b").item_order


def test_tokens_are_long_and_distinct():
    study = make_study()
    tokens = {enrol(study, pseudonym=f"p{k}").token for k in range(3)} | {study.invite_token}
    assert len(tokens) == 4 and all(len(t) >= 40 for t in tokens)


# -- responses -----------------------------------------------------------------------------------
def test_a_double_submit_counts_once_and_a_changed_answer_is_refused():
    study = make_study()
    e = start(enrol(study, pseudonym="a"))
    first = e.item_order[0]
    r1, created1 = submit_response(e, first, {"choice": "blue"})
    r2, created2 = submit_response(e, first, {"choice": "blue"})
    assert created1 and not created2 and r1.pk == r2.pk
    with pytest.raises(StudyError, match="already answered"):
        submit_response(e, first, {"choice": "red"})
    assert Response.objects.count() == 1
    assert Enrolment.objects.get(pk=e.pk).position == 1


def test_a_resend_of_an_earlier_answer_after_moving_on_is_still_the_saved_one():
    study = make_study()
    e = start(enrol(study, pseudonym="a"))
    first, second = e.item_order[:2]
    r1, _ = submit_response(e, first, {"choice": "blue"})
    submit_response(e, second, {"choice": "red"})
    again, created = submit_response(e, first, {"choice": "blue"})  # an old tab sends it once more
    assert (again.pk, created) == (r1.pk, False)
    with pytest.raises(StudyError, match="already answered"):
        submit_response(e, first, {"choice": "red"})
    assert Response.objects.count() == 2 and Enrolment.objects.get(pk=e.pk).position == 2


@pytest.mark.parametrize("answer, message", [
    ({"choice": "purple"}, "not one of this item's choices"),
    ({"choice": "red", "confidence": 6}, "from 1 to 5"),
    ({"choice": "red", "confidence": "high"}, "whole number"),
    ({"choice": "red", "seconds_on_item": "inf"}, "up to a week"),
    ({"choice": "red", "seconds_on_item": "nan"}, "up to a week"),
    ({"choice": "red", "seconds_on_item": 1e308}, "up to a week"),
    ({"choice": "red", "seconds_on_item": "soon"}, "must be a number"),
])
def test_bad_answers_are_refused_and_nothing_is_saved(answer, message):
    study = make_study()
    e = start(enrol(study, pseudonym="a"))
    with pytest.raises(StudyError, match=message):
        submit_response(e, e.item_order[0], answer)
    assert Response.objects.count() == 0 and Enrolment.objects.get(pk=e.pk).position == 0


def test_answers_out_of_turn_and_for_foreign_items_are_refused():
    study = make_study()
    other = make_study()
    e = start(enrol(study, pseudonym="a"))
    with pytest.raises(StudyError, match="not the item you are on"):
        submit_response(e, e.item_order[2], {"choice": "red"})
    with pytest.raises(StudyError, match="not part of your study"):
        submit_response(e, other.items.first().pk, {"choice": "red"})


def test_after_the_study_closes_no_new_answer_is_taken_and_saved_ones_stay():
    study = make_study()
    e = start(enrol(study, pseudonym="a"))
    submit_response(e, e.item_order[0], {"choice": "red"})
    study.status = Study.Status.CLOSED
    study.save()
    with pytest.raises(StudyError, match="closed; your earlier answers are saved"):
        submit_response(e, e.item_order[1], {"choice": "red"})
    assert submit_response(e, e.item_order[0], {"choice": "red"})[1] is False  # a resend is still fine
    assert Response.objects.count() == 1


def test_the_last_answer_moves_the_annotator_to_the_closing_questions():
    study = make_study(n_items=2, practice=1)
    e = answer_all(enrol(study, pseudonym="a"), lambda item: {"choice": "red"})
    assert e.step == Enrolment.Step.CLOSING and e.position == 3


def test_error_and_concept_tasks_need_their_own_answers_and_a_confidence():
    err = make_study(task="error")
    e = start(enrol(err, pseudonym="a"))
    with pytest.raises(StudyError, match="not an error category"):
        submit_response(e, e.item_order[0], {"category": "typo", "confidence": 3})
    with pytest.raises(StudyError, match="how confident"):
        submit_response(e, e.item_order[0], {"category": "unimodal"})
    concept = make_study(task="concept")
    c = start(enrol(concept, pseudonym="b"))
    with pytest.raises(StudyError, match="describe the concept"):
        submit_response(c, c.item_order[0], {"free_text": "  ", "confidence": 3})


def test_the_helpful_page_question_is_required_where_the_condition_asks_it():
    study = make_study(conditions=[("all", ["U", "C", "Rl", "Rg", "P"], 3)],
                       sections={"U": {}, "Rl": {"features": []}})  # an overview and a features page
    study.conditions.update(ask_helpful_page=True)
    e = start(enrol(study, pseudonym="a"))
    submit_response(e, e.item_order[0], {"choice": "red"})  # practice: not asked
    with pytest.raises(StudyError, match="which page helped more"):
        submit_response(e, e.item_order[1], {"choice": "red"})


# -- metrics -------------------------------------------------------------------------------------
def test_simulation_accuracy_is_per_annotator_against_the_prediction_then_mean_and_std():
    study = make_study(n_items=4, practice=1)
    # predictions of counted items i1..i4: blue, green, yellow, red
    right = lambda item: {"choice": item.bundle_item.prediction}  # noqa: E731
    half = lambda item: {"choice": item.bundle_item.prediction if item.bundle_item.position % 2 else "red"}  # noqa: E731
    answer_all(enrol(study, pseudonym="a"), right)
    answer_all(enrol(study, pseudonym="b"), half)
    m = condition_metrics(study.conditions.get())
    # a: 4/4; b: right on i1, i3 (odd positions) and on i4 (its prediction is red): 3/4
    assert m["accuracy"]["mean"] == pytest.approx(0.875)
    assert m["accuracy"]["std"] == pytest.approx(np.std([1.0, 0.75], ddof=1))
    assert m["responses"] == 8  # practice answers are not counted


def test_krippendorff_alpha_matches_a_hand_computed_nominal_value():
    # 2 annotators × 4 items, values a/b; one disagreement (item 4).
    # coincidences: o_aa = 4, o_bb = 2, o_ab = o_ba = 1; n = 8, n_a = 5, n_b = 3
    # D_o = 2/8; D_e = 2·5·3 / (8·7) = 30/56; α = 1 − D_o/D_e = 1 − (1/4)(56/30) = 8/15
    answers = {("x", "1"): "a", ("y", "1"): "a", ("x", "2"): "a", ("y", "2"): "a",
               ("x", "3"): "b", ("y", "3"): "b", ("x", "4"): "a", ("y", "4"): "b"}
    alpha, why = krippendorff_nominal(answers)
    assert alpha == pytest.approx(8 / 15) and why == ""
    lo, hi = bootstrap_alpha_interval(answers)
    assert lo <= alpha <= hi


def test_alpha_is_undefined_for_a_single_value_or_a_single_annotator():
    assert krippendorff_nominal({("x", "1"): "a", ("y", "1"): "a", ("x", "2"): "a", ("y", "2"): "a"}) == (
        None, "every answer is the same value: α is undefined")
    assert krippendorff_nominal({("x", "1"): "a", ("x", "2"): "b"})[0] is None
    assert bootstrap_alpha_interval({("x", "1"): "a"}) is None


def test_error_breakdown_confidence_and_helpful_share():
    study = make_study(task="error", n_items=3, practice=0)
    cats = ["unimodal", "cross_modal", "cross_modal"]
    order = {}
    for name, conf in (("a", 4), ("b", 2)):
        e = enrol(study, pseudonym=name)
        order[name] = e
        answer_all(e, lambda item, conf=conf: {"category": cats[item.bundle_item.position], "confidence": conf})
    m = condition_metrics(study.conditions.get())
    assert m["categories"] == {"unimodal": 2, "cross_modal": 4, "prediction": 0}
    assert m["confidence"] == {"mean": 3.0, "std": pytest.approx(np.std([4, 4, 4, 2, 2, 2], ddof=1)), "n": 6}
    assert m["alpha"] == pytest.approx(1.0)
    assert m["features_helped_more"] is None


def test_mean_std_of_nothing_is_none():
    assert mean_std([]) == {"mean": None, "std": None, "n": 0}


def test_concept_alpha_and_full_agreement_come_from_the_saved_clusters():
    from annotations.services import assign_concept_clusters

    study = make_study(task="concept", n_items=2, practice=0)
    texts = {"a": ["colour red", "triangles"], "b": ["redness", "three corners"], "c": ["red things", "blue"]}
    for name, answers in texts.items():
        answer_all(enrol(study, pseudonym=name),
                   lambda item, answers=answers: {"free_text": answers[item.bundle_item.position], "confidence": 4})
    before = condition_metrics(study.conditions.get())
    assert before["alpha"] is None and before["clustered"] == 0
    responses = {r.free_text: r.pk for r in Response.objects.all()}
    cluster = {"colour red": "red", "redness": "red", "red things": "red",
               "triangles": "triangle", "three corners": "triangle", "blue": "blue"}
    assert assign_concept_clusters(study, {responses[t]: c for t, c in cluster.items()}) == 6
    m = condition_metrics(study.conditions.get())
    assert m["clustered"] == 6 and m["full_agreement_items"] == 1  # item 0: all "red"
    # by hand: item 0 = (red, red, red), item 1 = (triangle, triangle, blue); each unit has
    # 3 values, so every ordered pair weighs 1/2: o_rr = 3, o_tt = 1, o_tb = o_bt = 1; n = 6,
    # n_r = 3, n_t = 2, n_b = 1. D_o = 2/6; D_e = 2(3·2 + 3·1 + 2·1) / (6·5) = 22/30;
    # α = 1 − (1/3)/(22/30) = 6/11
    assert m["alpha"] == pytest.approx(6 / 11)
    with pytest.raises(StudyError, match="not answers of this study"):
        assign_concept_clusters(study, {999999: "x"})


def test_the_alpha_interval_of_perfect_agreement_is_exactly_one():
    answers = {(a, str(i)): v for a in ("x", "y", "z") for i, v in enumerate(["red", "blue", "red", "green", "blue"])}
    assert krippendorff_nominal(answers) == (1.0, "")
    assert bootstrap_alpha_interval(answers) == (1.0, 1.0)
