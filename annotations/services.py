"""Business rules that write responses: validated, idempotent, never counted twice."""

import math

from django.db import IntegrityError, transaction
from django.utils import timezone

from studies import workers
from studies.models import Enrolment, Study
from studies.quality import close_practice_round, gate_status
from studies.selectors import helpful_page_choices
from studies.services import StudyError, apply_attention_rule, without_nul
from studies.stage_views import PAGES
from studies.task_registry import task_spec

from .models import Response

MAX_FREE_TEXT = 500
SUGGEST_CLUSTERS = "annotations.tasks.suggest_clusters"  # the task's name: workers load the embedding model
SUGGEST_TIMEOUT_SECONDS = 300
MAX_SECONDS_ON_ITEM = 7 * 24 * 3600.0  # a week: longer is a broken clock, not a slow annotator


def plausible_seconds(seconds: float) -> bool:
    """Whether a time on an item can count: finite and at most a week ("inf", "nan" or 1e308
    would make every mean of the study's figures infinite or undefined)."""
    return math.isfinite(seconds) and seconds <= MAX_SECONDS_ON_ITEM


# the answer's text fields, as a refusal names them to the annotator
TEXT_FIELDS = {"choice": "the answer", "free_text": "the concept", "category": "the error category",
               "helpful_page": "the helpful page"}


def _validate(enrolment: Enrolment, item, answer: dict) -> dict:
    study, condition = enrolment.study, enrolment.condition
    for field, what in TEXT_FIELDS.items():
        if isinstance(answer.get(field), str):
            without_nul(what, answer[field])
    clean = {"choice": "", "free_text": "", "category": "", "confidence": None, "helpful_page": ""}
    confidence = answer.get("confidence")
    if confidence not in (None, ""):
        try:
            confidence = int(confidence)
        except (TypeError, ValueError):
            raise StudyError("confidence must be a whole number from 1 to 5") from None
        if not 1 <= confidence <= 5:
            raise StudyError(f"confidence must be from 1 to 5; got {confidence}")
        clean["confidence"] = confidence
    task = task_spec(study.task)
    clean.update(task.clean(answer, item))  # the task's own fields (studies.task_registry)
    if task.asks_confidence and clean["confidence"] is None:
        raise StudyError("say how confident you are (1–5)")
    clean["helpful_page"] = _helpful_page(condition, item, str(answer.get("helpful_page") or ""))
    seconds = answer.get("seconds_on_item")
    try:
        seconds = None if seconds in (None, "") else float(seconds)
    except (TypeError, ValueError):
        raise StudyError("seconds_on_item must be a number") from None
    if seconds is not None and not plausible_seconds(seconds):
        raise StudyError(f"seconds_on_item must be a number of seconds up to a week ({MAX_SECONDS_ON_ITEM:.0f})")
    clean["seconds_on_item"] = None if seconds is None else max(0.0, seconds)
    return clean


def _helpful_page(condition, item, page: str) -> str:
    """The answer to "which page helped you more?": one of the pages the item had, where it
    was asked (:func:`studies.selectors.helpful_page_choices`); "" where it was not."""
    pages = helpful_page_choices(condition, item)
    if not pages:
        return ""
    if not page:
        raise StudyError("say which page helped more")
    if page not in pages:
        shown = page if len(page) <= 40 else page[:37] + "…"
        raise StudyError(f"“{shown}” is not a page of this item; say which of its pages helped more: "
                         + ", ".join(PAGES[p] for p in pages))
    return page


def _same(response: Response, clean: dict) -> bool:
    return all(getattr(response, k) == v for k, v in clean.items() if k != "seconds_on_item")


def _resent(existing: Response, clean: dict) -> tuple[Response, bool]:
    """The saved answer again for an identical resend; a different one is refused."""
    if _same(existing, clean):
        return existing, False
    raise StudyError("this item is already answered; answers cannot be changed")


def submit_response(enrolment: Enrolment, item_id: int, answer: dict) -> tuple[Response, bool]:
    """Record the answer to the enrolment's current item; returns ``(response, created)``.

    Submitting the same answer again returns the saved one (``created`` False); a different
    answer to an answered item, an item out of turn, or any answer once the study is closed
    is refused with a :class:`StudyError`, and nothing saved changes.
    """
    with transaction.atomic():
        # the row lock serializes the submits of one annotator (a double click's two POSTs)
        enrolment = Enrolment.objects.select_for_update().select_related("study", "condition").get(pk=enrolment.pk)
        order, position = enrolment.item_order, enrolment.position
        if item_id not in order:
            raise StudyError("this item is not part of your study")
        item = enrolment.study.items.get(pk=item_id)
        clean = _validate(enrolment, item, answer)
        on_it = enrolment.step == Enrolment.Step.ITEMS and position < len(order) and order[position] == item_id
        if not on_it:  # answered already (a resend?), or out of turn
            existing = enrolment.responses.filter(item_id=item_id).first()
            if existing:
                return _resent(existing, clean)
        if enrolment.study.status != Study.Status.OPEN:
            raise StudyError("the study is closed; your earlier answers are saved")
        if not on_it:
            raise StudyError("this is not the item you are on; reload the page")
        if gate_status(enrolment) == "retry":
            raise StudyError("the practice is to be taken again before the counted items; reload the page")
        try:  # the current item has no answer yet: the position moves on with the first one
            with transaction.atomic():
                response = Response.objects.create(enrolment=enrolment, item=item, is_practice=item.is_practice, **clean)
        except IntegrityError:  # saved without moving the position on (never by this service)
            return _resent(Response.objects.get(enrolment=enrolment, item=item), clean)
        enrolment.position += 1
        if enrolment.position >= len(enrolment.item_order):
            enrolment.step = Enrolment.Step.CLOSING
        if item.is_practice:  # the last practice answer closes a round of the comprehension gate
            close_practice_round(enrolment)
        enrolment.last_seen_at = timezone.now()
        enrolment.save(update_fields=["position", "step", "last_seen_at", "practice_rounds"])
        if enrolment.step == Enrolment.Step.CLOSING:
            apply_attention_rule(enrolment)
        return response, True


def assign_concept_clusters(study: Study, clusters: dict[int, str]) -> int:
    """Save the researcher's clustering of a concept study's free texts: ``{response id:
    cluster name}`` (an empty name clears it). Returns how many responses changed."""
    if not task_spec(study.task).clusters:
        raise StudyError("only concept-assignment studies have concepts to cluster")
    responses = {r.pk: r for r in Response.objects.filter(enrolment__study=study, pk__in=list(clusters))}
    unknown = sorted(set(clusters) - set(responses))
    if unknown:
        raise StudyError(f"responses {unknown[:5]} are not answers of this study")
    changed = 0
    with transaction.atomic():
        for pk, name in clusters.items():
            name = str(name).strip()[:200]
            if responses[pk].concept_cluster != name:
                responses[pk].concept_cluster = name
                responses[pk].save(update_fields=["concept_cluster"])
                changed += 1
    return changed


def concept_responses(study: Study):
    """The counted free-text answers of a concept study."""
    return Response.objects.filter(enrolment__study=study, is_practice=False).exclude(free_text="") \
        .select_related("enrolment__condition", "item__bundle_item").order_by("item__order", "enrolment_id")


def apply_suggested_clusters(study: Study, only_unclustered: bool = True) -> int:
    """Cluster all of the study's concepts from sentence embeddings, across features (as the
    paper sorted all its answers into one set of concepts); keeps the researcher's clusters
    unless ``only_unclustered`` is False. A worker computes the embeddings (the task
    ``SUGGEST_CLUSTERS``; in this process without a broker)."""
    if not task_spec(study.task).clusters:
        raise StudyError("only concept-assignment studies have concepts to cluster")
    responses = list(concept_responses(study))
    names = workers.run(SUGGEST_CLUSTERS, [r.free_text for r in responses]).get(timeout=SUGGEST_TIMEOUT_SECONDS)
    return assign_concept_clusters(study, {r.pk: name for r, name in zip(responses, names)
                                           if not (only_unclustered and r.concept_cluster)})


def rename_concept_cluster(study: Study, old: str, new: str) -> int:
    """Rename a cluster; renaming it to an existing cluster's name merges the two."""
    new = new.strip()
    if not new:
        raise StudyError("a cluster needs a name")
    ids = list(concept_responses(study).filter(concept_cluster=old).values_list("pk", flat=True))
    if not ids:
        raise StudyError(f"there is no cluster named {old!r}")
    return assign_concept_clusters(study, {pk: new for pk in ids})
