"""Prolific: a code per outcome (completed, returned on declined consent, screened out), the
redirect to Prolific with it, and the bonus table and its bulk bonus file."""

from decimal import Decimal

import pytest

from annotations.exports import bonuses_csv
from annotations.selectors import bonus_rows
from studies.models import Enrolment
from studies.selectors import outcome_url
from studies.services import StudyError, enrol, set_exclusion, update_recruitment
from tests.platform.study_helpers import CLASSES, answer_all, make_study

pytestmark = pytest.mark.django_db

PROLIFIC = "https://app.prolific.com/submissions/complete"
PID = ["5f1a" + "0" * 19 + str(k) for k in range(4)]  # Prolific's ids: 24 hexadecimal characters


def test_declining_consent_sends_the_annotator_to_prolific_with_the_returned_code(client):
    study = make_study(completion_url=PROLIFIC, completion_code="DONE1", returned_code="RET9")
    e = enrol(study, pseudonym=PID[0])
    response = client.post(f"/a/{e.token}/", {"form": "consent", "agree": "no"})
    assert response.status_code == 302 and response["Location"] == f"{PROLIFIC}?cc=RET9"
    e.refresh_from_db()
    assert e.step == Enrolment.Step.DECLINED
    page = client.get(f"/a/{e.token}/").content.decode()  # a reload: the code, not the consent again
    assert "RET9" in page and "I agree" not in page
    # nothing more can be answered, and the place in the group is free again
    client.post(f"/a/{e.token}/", {"form": "consent", "agree": "yes"})
    e.refresh_from_db()
    assert e.step == Enrolment.Step.DECLINED
    from studies.services import condition_fill
    assert condition_fill(e.condition) == 0


def test_without_a_completion_url_a_declining_annotator_sees_the_returned_code(client):
    study = make_study(returned_code="RET9")
    e = enrol(study)
    response = client.post(f"/a/{e.token}/", {"form": "consent", "agree": "no"}, follow=True)
    assert 'id="return-code">RET9<' in response.content.decode()


def test_finishing_sends_the_annotator_to_prolific_with_the_completion_code(client):
    study = make_study(completion_url=PROLIFIC + "?cc=OLD&lang=en", completion_code="DONE1", returned_code="RET9")
    e = answer_all(enrol(study, pseudonym=PID[0]), lambda item: {"choice": "red"})
    response = client.post(f"/a/{e.token}/", {"form": "closing", "clarity": "4"})
    assert response.status_code == 302 and response["Location"] == f"{PROLIFIC}?lang=en&cc=DONE1"


def test_each_outcome_has_its_own_code_and_no_code_leaves_the_url_as_set():
    study = make_study(completion_url=PROLIFIC, completion_code="C", returned_code="R", screened_out_code="S")
    assert [outcome_url(study, o) for o in ("completed", "returned", "screened_out")] == [
        f"{PROLIFIC}?cc=C", f"{PROLIFIC}?cc=R", f"{PROLIFIC}?cc=S"]
    study.screened_out_code = ""
    assert outcome_url(study, "screened_out") == PROLIFIC
    study.completion_url = ""
    assert outcome_url(study, "completed") == ""


def bonus_study(**rule):
    """Four counted items; the model predicts red, blue, green, yellow (practice item first)."""
    study = make_study(n_items=4, practice=1, conditions=(("U", ["U"], 0),), **rule)
    right = {0: 4, 1: 3, 2: 1}  # how many of the 4 counted items each Prolific annotator gets right
    for k, n in right.items():
        answer_all(enrol(study, pseudonym=PID[k]),
                   lambda item, n=n: {"choice": item.bundle_item.prediction if item.order - 1 < n else
                                      CLASSES[(CLASSES.index(item.bundle_item.prediction) + 1) % 4]})
    answer_all(enrol(study, pseudonym="lab-visitor"), lambda item: {"choice": item.bundle_item.prediction})
    return study


def test_the_bonus_is_per_correct_counted_answer_plus_the_threshold_amount_from_the_threshold_on():
    study = bonus_study(bonus_per_correct=Decimal("0.13"), bonus_threshold=75, bonus_threshold_amount=Decimal("1"))
    rows = {r["annotator"]: r for r in bonus_rows(study)}
    assert (rows[PID[0]]["correct"], rows[PID[0]]["answered"]) == (4, 4)  # the practice item never counts
    assert rows[PID[0]]["amount"] == Decimal("1.52")  # 4 × 0.13 + 1
    assert rows[PID[1]]["amount"] == Decimal("1.39")  # 3 of 4 = 75 %: at the threshold
    assert rows[PID[2]]["amount"] == Decimal("0.13")
    assert not rows["lab-visitor"]["payable"] and "no Prolific id" in rows["lab-visitor"]["note"]


def test_the_bulk_bonus_file_has_one_prolific_line_per_paid_annotator_and_none_for_the_excluded():
    study = bonus_study(bonus_per_correct=Decimal("0.50"))
    set_exclusion(study, {"enrolment": Enrolment.objects.get(pseudonym=PID[1]).pk, "excluded": True,
                          "reason": "straight-lined"}, study.owner)
    assert bonuses_csv(study) == f"{PID[0]},2.00\n{PID[2]},0.50\n"


def test_the_bonus_file_downloads_for_the_owner_and_is_refused_for_a_task_without_correct_answers(client):
    study = bonus_study(bonus_per_correct=Decimal("0.50"))
    client.force_login(study.owner)
    response = client.get(f"/studies/{study.pk}/bonuses.csv")
    assert response.status_code == 200 and response.content.decode().splitlines()[0] == f"{PID[0]},2.00"
    assert "attachment" in response["Content-Disposition"]
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert 'id="bonus-table"' in page and "2.00" in page
    concept = make_study(task="concept")
    concept.owner = study.owner
    concept.save()
    refused = client.get(f"/studies/{concept.pk}/bonuses.csv")
    assert refused.status_code == 400 and "model-simulation studies only" in refused.content.decode()


def test_the_builder_sets_codes_and_the_bonus_rule_and_refuses_bad_values_naming_the_field(client):
    study = make_study()
    client.force_login(study.owner)
    url = f"/studies/{study.pk}/edit/"
    form = {"action": "recruitment", "completion_url": PROLIFIC, "completion_code": "C1", "returned_code": "R1",
            "screened_out_code": "S1", "bonus_per_correct": "0.10", "bonus_threshold": "80",
            "bonus_threshold_amount": "2.00"}
    assert client.post(url, form).status_code == 302
    study.refresh_from_db()
    assert (study.returned_code, study.screened_out_code, study.bonus_per_correct, study.bonus_threshold) == (
        "R1", "S1", Decimal("0.10"), 80)
    for field, value in (("bonus_per_correct", "-1"), ("bonus_threshold", "101"), ("completion_url", "not a url"),
                         ("bonus_per_correct", "1e9")):
        response = client.post(url, {**form, field: value})
        assert response.status_code == 400 and field.replace("_", " ") in response.content.decode().lower()
    study.refresh_from_db()
    assert study.bonus_per_correct == Decimal("0.10") and study.completion_url == PROLIFIC


def test_a_threshold_amount_needs_a_threshold():
    study = make_study()
    with pytest.raises(StudyError, match="^bonus threshold: "):
        update_recruitment(study, {"bonus_threshold_amount": "1.00", "bonus_threshold": ""})


def test_the_monitor_counts_a_declined_annotator_as_declined_not_active(client):
    from annotations.selectors import monitor

    study = make_study()
    e = enrol(study)
    client.post(f"/a/{e.token}/", {"form": "consent", "agree": "no"})
    figures = monitor(study)
    assert figures["conditions"][0]["declined"] == 1 and figures["conditions"][0]["active"] == 0
    assert figures["annotators"][0]["state"] == "declined"


def test_the_consent_and_closing_pages_may_send_their_forms_on_to_the_completion_url_and_nowhere_else(client):
    """The Content-Security-Policy's form-action holds for a form's redirect too: without the
    completion URL's origin, declining consent or finishing could not reach Prolific."""
    study = make_study(completion_url=PROLIFIC, returned_code="RET9")
    joined = client.get(f"/join/{study.invite_token}/")
    policy = client.get(joined["Location"])["Content-Security-Policy"]
    form_action = next(d for d in policy.split(";") if d.strip().startswith("form-action"))
    assert form_action.split()[1:] == ["'self'", "https://app.prolific.com"]
    plain = make_study()
    policy = client.get(client.get(f"/join/{plain.invite_token}/")["Location"])["Content-Security-Policy"]
    assert "form-action 'self';" in policy + ";"


def test_the_bonus_of_a_study_not_read_back_is_a_decimal_of_cents():
    """A study as created holds its bonus defaults as given (the integer 0), not as the
    database returns them: the rule still gives cents."""
    from annotations.selectors import bonus_amount
    from studies.models import Study

    assert bonus_amount(Study(bonus_threshold=50), correct=3, answered=4) == Decimal("0.00")
