"""Quality controls of a study: attention checks and the comprehension gate.

- An **attention check** is a study item with a known correct answer (``StudyItem.expected_answer``),
  placed at a seeded position among an annotator's counted items and never counted in any
  metric. With ``Study.attention_min_correct`` set, an annotator who gets fewer of them right
  is excluded from the metrics when they reach the closing questions, through the same
  exclusion the researcher uses (recorded with its reason; the researcher can include them
  again).
- The **comprehension gate** (``Study.gate_min_correct``): after the practice items, an
  annotator who got fewer than that many right takes the practice again (their answers of the
  round kept in ``Enrolment.practice_rounds``), up to ``Study.gate_attempts`` rounds; after the
  last failed round they are screened out (step ``screened_out``, sent on with the study's
  screened-out code) and free their place in the condition.

Every function here reads and writes through the models (answers through the enrolment's
``responses``); the annotator's views, the answer service and the builder's services call them, so the
rules are written once.
"""

from __future__ import annotations

from django.utils import timezone

from .models import Enrolment, Study, StudyItem
from .task_registry import task_spec

__all__ = [
    "known_answer",
    "answer_value",
    "is_right",
    "same_answer",
    "attention_score",
    "gate_status",
    "close_practice_round",
    "quality_problem",
    "ATTENTION_REASON",
]

ATTENTION_REASON = "attention checks: {right} of {of} right, fewer than the study's {need}"


def known_answer(item: StudyItem, task: str) -> str:
    """The answer an item is scored against: its ``expected_answer``, else, for a practice
    item of a task scored against the model (simulation), the model's answer. "" when the
    item has none."""
    if item.expected_answer:
        return item.expected_answer
    if task_spec(task).scored and item.is_practice:
        return item.bundle_item.prediction
    return ""


def answer_value(response, task: str) -> str:
    """What an answer says, in the form ``expected_answer`` is written in: the task's answer
    field (the task registry's ``answer_fields``)."""
    return getattr(response, task_spec(task).answer_fields[0])


def same_answer(given: str, expected: str, task: str) -> bool:
    """Whether an answer is the expected one (free text: the words, whatever their case and
    spacing)."""
    if task_spec(task).answer_fields[0] == "free_text":
        return " ".join(given.lower().split()) == " ".join(expected.lower().split())
    return given == expected


def is_right(item: StudyItem, response, task: str) -> bool | None:
    """Whether ``response`` gives the item's known answer (None: the item has none)."""
    expected = known_answer(item, task)
    return same_answer(answer_value(response, task), expected, task) if expected else None


def attention_score(enrolment: Enrolment) -> tuple[int, int]:
    """``(right, of)``: the enrolment's answered attention checks and how many were right."""
    task = enrolment.study.task
    answers = enrolment.responses.filter(item__attention_check=True).select_related("item__bundle_item")
    scored = [is_right(r.item, r, task) for r in answers]
    return sum(1 for s in scored if s), len(scored)


def _practice_count(enrolment: Enrolment) -> int:
    return enrolment.study.items.filter(pk__in=enrolment.item_order, is_practice=True).count()


def gate_status(enrolment: Enrolment) -> str:
    """Where the annotator stands at the gate: ``"none"`` (no gate, or still practising),
    ``"passed"``, ``"retry"`` (the last round failed and another is allowed) or
    ``"screened_out"``."""
    study = enrolment.study
    if study.gate_min_correct is None or not enrolment.practice_rounds:
        return "none"
    if enrolment.step == Enrolment.Step.SCREENED_OUT:
        return "screened_out"
    last = enrolment.practice_rounds[-1]
    if last["passed"]:
        return "passed"
    return "retry" if enrolment.position == _practice_count(enrolment) else "none"


def close_practice_round(enrolment: Enrolment) -> dict | None:
    """Score the practice round the (locked) ``enrolment`` just finished, when the study has a
    gate and the annotator has answered the last practice item; records the round and, after
    the last allowed failed round, screens the annotator out. Returns the round, or None when
    there is nothing to score. The caller saves ``practice_rounds`` and ``step``."""
    study = enrolment.study
    n = _practice_count(enrolment)
    if study.gate_min_correct is None or n == 0 or enrolment.position != n:
        return None
    answers = (enrolment.responses.filter(is_practice=True).select_related("item__bundle_item").order_by("pk"))
    rows = [{"item": r.item.bundle_item.item_id, "answer": answer_value(r, study.task), "right": bool(is_right(r.item, r, study.task))}
            for r in answers]
    right = sum(row["right"] for row in rows)
    result = {"round": len(enrolment.practice_rounds) + 1, "right": right, "of": len(rows),
              "passed": right >= study.gate_min_correct, "answers": rows, "at": timezone.now().isoformat()}
    enrolment.practice_rounds = [*enrolment.practice_rounds, result]
    if not result["passed"] and result["round"] >= study.gate_attempts:
        enrolment.step = Enrolment.Step.SCREENED_OUT
    return result


def quality_problem(study: Study) -> str:
    """What keeps the study's items from meeting its quality settings ("" when nothing), said
    so the researcher knows what to change:
    a gate asking for more right answers than there are scored practice items, an attention
    rule asking for more than there are attention checks, an attention check without its
    answer."""
    items = list(study.items.select_related("bundle_item"))
    for item in items:
        if item.attention_check and not item.expected_answer:
            return f"item {item.bundle_item.item_id}: an attention check needs its expected answer"
        if item.attention_check and item.is_practice:
            return f"item {item.bundle_item.item_id}: an item is practice or an attention check, not both"
    scored_practice = sum(1 for i in items if i.is_practice and known_answer(i, study.task))
    if study.gate_min_correct is not None and study.gate_min_correct > scored_practice:
        return (f"comprehension gate: it asks for {study.gate_min_correct} right practice answers but the study "
                f"has {scored_practice} practice items with a known answer")
    checks = sum(1 for i in items if i.attention_check)
    if study.attention_min_correct is not None and study.attention_min_correct > checks:
        return (f"attention rule: it asks for {study.attention_min_correct} right attention checks but the study "
                f"has {checks}")
    if study.gate_attempts < 1:
        return "comprehension gate: allow at least one round of practice"
    return ""
