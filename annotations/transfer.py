"""Moving a study to another installation: the whole study as one versioned JSON document.

:func:`export_study` writes everything a study holds — its conditions, items, enrolments
(tokens, pseudonyms, Prolific ids, steps, item orders, closing answers, timestamps) and
every response (concept clusters included) — and :func:`import_study` recreates it, all or
nothing, so that its metrics come out identical and annotators' links keep working.

The bundle is referenced, not copied: by the SHA-256 of its manifest, so the receiving
installation must have imported the same bundle folder first (``manage.py import_bundle``).
Database ids never travel: items are named by their bundle item id, conditions by name,
users by username. The document, version 1::

    {"format": "multiviz-study", "version": 1, "exported_at": "<ISO 8601>",
     "bundle": {"name", "manifest_sha256", "dataset", "model", "task"},
     "study": {"title", "task", "status", "item_order", "instructions", "consent_text",
               "invite_token", "completion_code", "completion_url", "returned_code",
               "screened_out_code", "bonus_per_correct": "<decimal>", "bonus_threshold": <0–100> | null,
               "bonus_threshold_amount": "<decimal>", "training_cards": {"<stage>": {"<text>": "..."}},
               "created_at", "owner": "<username>", "shared_with": ["<username>", ...]},
     "conditions": [{"name", "stages", "rg_highlights", "live_sog", "ask_helpful_page",
                     "global_feature_ids", "target_size", "paused"}, ...],
     "items": [{"item_id", "choices", "is_practice", "order"}, ...],
     "enrolments": [{"condition": "<name>", "token", "pseudonym", "prolific_study_id",
                     "prolific_session_id", "item_order": ["<item_id>", ...], "position", "step",
                     "closing_answers", "assignment": {"seed", "fill", "tied", "drawn"}, "started_at",
                     "last_seen_at", "completed_at",
                     "excluded", "exclusion_reason", "exclusion_changed_by": "<username>" | null,
                     "exclusion_changed_at", "exclusion_history": [{"excluded", "reason", "by", "at"}, ...],
                     "responses": [{"item": "<item_id>", "is_practice", "choice", "free_text",
                                    "category", "confidence", "helpful_page", "seconds_on_item",
                                    "concept_cluster", "created_at"}, ...]}, ...]}

Times are ISO 8601 with their UTC offset. The document holds every annotator's token (their
link to continue): keep it as private as the database.

Import checks every value against the document's schema (``annotations/schemas.py``: types,
text that fits its column and holds no NUL, times on an item finite and at most a week,
lists of bounded length), then the rules between its parts (an item order names each of
the study's items at most once, a simulation answer is one of its item's choices, …),
and refuses the first mismatch naming its field, e.g. ``items[3].item_id: missing``.
"""

from __future__ import annotations

import json
import logging

from django.contrib.auth.models import User
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from studies.models import Bundle, Condition, Enrolment, Study, StudyItem
from studies.schemas import first_error
from studies.services import StudyError

from studies.task_registry import task_spec

from .models import Response
from .schemas import StudyDocumentSchema

__all__ = ["FORMAT", "VERSION", "export_study", "import_study"]

FORMAT = "multiviz-study"
VERSION = 1

logger = logging.getLogger(__name__)

# The fields that travel as they are (besides references, tokens and times, handled apart).
STUDY_TEXTS = ["title", "task", "status", "item_order", "instructions", "consent_text", "completion_code",
               "completion_url"]
# added to the format later, so optional (documents written before them take the defaults):
# Prolific's codes, the quality controls, the study's own training card texts; amounts as text, exact
STUDY_LATER = ["returned_code", "screened_out_code", "bonus_threshold", "attention_min_correct",
               "gate_min_correct", "gate_attempts", "training_cards"]
STUDY_AMOUNTS = ["bonus_per_correct", "bonus_threshold_amount"]
CONDITION_FLAGS = ["rg_highlights", "live_sog", "ask_helpful_page", "paused", "global_feature_ids"]
ENROLMENT_TEXTS = ["pseudonym", "prolific_study_id", "prolific_session_id", "step"]
ENROLMENT_EXCLUSION = ["excluded", "exclusion_reason", "exclusion_history",  # optional: documents before them
                       "practice_rounds"]
ITEM_QUALITY = ["attention_check", "expected_answer", "instruction"]  # optional: documents before them
RESPONSE_TEXTS = ["choice", "free_text", "category", "helpful_page", "concept_cluster"]


# -- export ---------------------------------------------------------------------------------------
def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


def _export_bundle_reference(bundle: Bundle) -> dict:
    return {"name": bundle.name, "manifest_sha256": bundle.manifest_sha256, "dataset": bundle.dataset,
            "model": bundle.model, "task": bundle.task}


def _export_study_fields(study: Study) -> dict:
    fields = {name: getattr(study, name) for name in STUDY_TEXTS + STUDY_LATER}
    fields.update({name: str(getattr(study, name)) for name in STUDY_AMOUNTS})
    fields.update(invite_token=study.invite_token, created_at=_iso(study.created_at), owner=study.owner.username,
                  shared_with=sorted(study.shared_with.values_list("username", flat=True)))
    return fields


def _export_condition(condition: Condition) -> dict:
    fields = {"name": condition.name, "stages": list(condition.stages), "target_size": condition.target_size}
    fields.update({flag: getattr(condition, flag) for flag in CONDITION_FLAGS})
    return fields


def _export_item(item: StudyItem) -> dict:
    return {"item_id": item.bundle_item.item_id, "choices": list(item.choices), "is_practice": item.is_practice,
            "order": item.order, **{name: getattr(item, name) for name in ITEM_QUALITY}}


def _export_response(response: Response, item_ids: dict[int, str]) -> dict:
    fields = {"item": item_ids[response.item_id], "is_practice": response.is_practice,
              "confidence": response.confidence, "seconds_on_item": response.seconds_on_item,
              "created_at": _iso(response.created_at)}
    fields.update({name: getattr(response, name) for name in RESPONSE_TEXTS})
    return fields


def _item_order_as_ids(enrolment: Enrolment, item_ids: dict[int, str]) -> list[str]:
    stale = [pk for pk in enrolment.item_order if pk not in item_ids]
    if stale:
        raise StudyError(f"annotator {enrolment.pseudonym!r}'s item order names study items {stale[:5]} that are "
                         f"no longer in the study; the study cannot be exported as it is")
    return [item_ids[pk] for pk in enrolment.item_order]


def _export_enrolment(enrolment: Enrolment, item_ids: dict[int, str], responses: list[Response]) -> dict:
    fields = {"condition": enrolment.condition.name, "token": enrolment.token,
              "item_order": _item_order_as_ids(enrolment, item_ids), "position": enrolment.position,
              "closing_answers": dict(enrolment.closing_answers), "assignment": dict(enrolment.assignment),
              "started_at": _iso(enrolment.started_at),
              "last_seen_at": _iso(enrolment.last_seen_at), "completed_at": _iso(enrolment.completed_at)}
    fields.update({name: getattr(enrolment, name) for name in ENROLMENT_TEXTS + ENROLMENT_EXCLUSION})
    fields["exclusion_changed_by"] = enrolment.exclusion_changed_by.username if enrolment.exclusion_changed_by else None
    fields["exclusion_changed_at"] = _iso(enrolment.exclusion_changed_at)
    fields["responses"] = [_export_response(r, item_ids) for r in responses]
    return fields


def _responses_by_enrolment(study: Study) -> dict[int, list[Response]]:
    grouped: dict[int, list[Response]] = {}
    for response in Response.objects.filter(enrolment__study=study).order_by("enrolment_id", "created_at", "pk"):
        grouped.setdefault(response.enrolment_id, []).append(response)
    return grouped


def export_study(study: Study) -> dict:
    """The whole study as a JSON-ready dict (format ``multiviz-study``, version 1; see the
    module's documentation). Read-only. Raises :class:`StudyError` if an enrolment's item
    order names items the study no longer has."""
    # the bundle item's id only: not its record and sections, the bulk of the database
    items = list(study.items.select_related("bundle_item").defer("bundle_item__record", "bundle_item__sections")
                 .order_by("pk"))
    item_ids = {item.pk: item.bundle_item.item_id for item in items}
    responses = _responses_by_enrolment(study)
    enrolments = study.enrolments.select_related("condition", "exclusion_changed_by").order_by("started_at", "pk")
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": _iso(timezone.now()),
        "bundle": _export_bundle_reference(study.bundle),
        "study": _export_study_fields(study),
        "conditions": [_export_condition(c) for c in study.conditions.order_by("pk")],
        "items": [_export_item(item) for item in items],
        "enrolments": [_export_enrolment(e, item_ids, responses.get(e.pk, [])) for e in enrolments],
    }


def export_study_json(study: Study) -> str:
    """:func:`export_study` as the JSON text of the file (the page's download and the command)."""
    return json.dumps(export_study(study), indent=1, ensure_ascii=False)


# -- reading the document: its schema (annotations/schemas.py), then the rules between its parts -------------
def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unique(values: list, what: str, where: str) -> None:
    seen = set()
    for k, value in enumerate(values):
        if value in seen:
            raise StudyError(f"{where}[{k}]: {what} {value!r} appears twice")
        seen.add(value)


def _check_format(document) -> None:
    if not isinstance(document, dict):
        raise StudyError(f"the document must be a JSON object (a study exported with manage.py export_study); "
                         f"got {_short(document)}")
    kind = document.get("format")
    if kind != FORMAT:
        raise StudyError(f"document.format must be {FORMAT!r} (a study exported with manage.py export_study); "
                         f"got {_short(kind)}")
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise StudyError(f"document.version must be a whole number; got {_short(version)}")
    if version != VERSION:
        raise StudyError(f"document.version is {version}, but this installation reads version {VERSION} of the "
                         f"study format" + (" (update this installation)" if version > VERSION else ""))


def _read(document) -> dict:
    """The document's values, each of its type and within its bounds (``items[3].order: ...``)."""
    checked = StudyDocumentSchema(data=document)
    if not checked.is_valid():
        raise StudyError(first_error(checked.errors))
    return checked.validated_data


def _bundle_here(reference: dict) -> Bundle:
    digest, name = reference["manifest_sha256"], reference["name"]
    bundle = Bundle.objects.filter(manifest_sha256=digest).first()
    if bundle is None:
        raise StudyError(f"bundle {name!r} (manifest sha256 {digest}) is not imported in this installation: "
                         f"import bundle {name!r} (sha {digest[:12]}…) first with manage.py import_bundle")
    return bundle


def _check_items(items: list[dict], bundle: Bundle) -> None:
    """Each item is an item of the bundle here, once, with distinct choices among its classes;
    adds ``bundle_item``."""
    _unique([i["item_id"] for i in items], "item", "items")
    bundle_items = {bi.item_id: bi for bi in bundle.items.only("pk", "item_id")}
    classes = set(bundle.class_names)
    for k, item in enumerate(items):
        where = f"items[{k}]"
        if item["item_id"] not in bundle_items:
            raise StudyError(f"{where}.item_id: item {item['item_id']!r} is not in bundle {bundle.name!r} here "
                             f"(was the document or the bundle changed?)")
        strangers = [c for c in item["choices"] if c not in classes]
        if strangers:
            raise StudyError(f"{where}.choices: {strangers[:5]} are not classes of the bundle's model")
        _unique(item["choices"], "choice", f"{where}.choices")
        item["bundle_item"] = bundle_items[item["item_id"]]


def _check_response(response: dict, where: str, order: set[str], choices: dict[str, list], task: str) -> None:
    if response["item"] not in order:
        raise StudyError(f"{where}.item: {response['item']!r} is not in this annotator's item_order")
    choice, offered = response["choice"], choices[response["item"]]
    if (task_spec(task).checks_choices or choice) and choice not in offered:
        raise StudyError(f"{where}.choice: {choice!r} is not one of the item's choices "
                         f"({', '.join(offered) or 'it has none'})")


def _check_enrolment(data: dict, where: str, condition_names: set[str], choices: dict[str, list], task: str) -> None:
    if data["condition"] not in condition_names:
        raise StudyError(f"{where}.condition: {data['condition']!r} is not a condition of this study "
                         f"(document.conditions)")
    strangers = [i for i in data["item_order"] if i not in choices]
    if strangers:
        raise StudyError(f"{where}.item_order: {strangers[:5]} are not items of this study (document.items)")
    _unique(data["item_order"], "item", f"{where}.item_order")
    if data["position"] > len(data["item_order"]):
        raise StudyError(f"{where}.position must be a whole number from 0 to {len(data['item_order'])}; "
                         f"got {data['position']}")
    order = set(data["item_order"])
    for k, response in enumerate(data["responses"]):
        _check_response(response, f"{where}.responses[{k}]", order, choices, task)
    _unique([r["item"] for r in data["responses"]], "a response to item", f"{where}.responses")


def _check_parts(document: dict) -> None:
    """The rules between the parts: names and tokens unique, references to what is there."""
    _unique([c["name"] for c in document["conditions"]], "condition name", "conditions")
    names = {c["name"] for c in document["conditions"]}
    choices = {i["item_id"]: i["choices"] for i in document["items"]}
    for k, enrolment in enumerate(document["enrolments"]):
        _check_enrolment(enrolment, f"enrolments[{k}]", names, choices, document["study"]["task"])
    _unique([e["token"] for e in document["enrolments"]], "enrolment token", "enrolments")
    _unique([e["pseudonym"] for e in document["enrolments"]], "pseudonym", "enrolments")


def _describe(study: Study) -> str:
    return f"study #{study.pk} {study.title!r} (owner {study.owner.username})"


def _check_collisions(study: dict, enrolments: list[dict]) -> None:
    """Tokens are kept so links keep working; they must therefore be new here."""
    clash = Study.objects.select_related("owner").filter(invite_token=study["invite_token"]).first()
    if clash:
        raise StudyError(f"the study's invite token is already used here by {_describe(clash)}; "
                         f"was this study imported here already?")
    tokens = [e["token"] for e in enrolments]
    taken = Enrolment.objects.select_related("study__owner").filter(token__in=tokens).first()
    if taken:
        raise StudyError(f"annotator {taken.pseudonym!r}'s enrolment token is already used here by an enrolment in "
                         f"{_describe(taken.study)}; was this study imported here already?")


def _users_to_share_with(usernames: list[str], owner, notes: list[str]) -> list:
    users = list(User.objects.filter(username__in=usernames).exclude(pk=owner.pk))
    missing = sorted(set(usernames) - {u.username for u in users} - {owner.username})
    if missing:
        notes.append(f"not shared with {', '.join(missing)}: no such user{'s' if len(missing) > 1 else ''} here")
    return users


# -- writing ---------------------------------------------------------------------------------------------
def _create_study(data: dict, bundle: Bundle, owner, share_with: list) -> Study:
    study = Study.objects.create(owner=owner, bundle=bundle, invite_token=data["invite_token"],
                                 **{name: data[name] for name in STUDY_TEXTS + STUDY_LATER + STUDY_AMOUNTS})
    Study.objects.filter(pk=study.pk).update(created_at=data["created_at"])  # auto_now_add set it to now
    study.created_at = data["created_at"]
    study.shared_with.set(share_with)
    return study


def _create_conditions(study: Study, conditions: list[dict]) -> dict[str, Condition]:
    return {c["name"]: Condition.objects.create(study=study, **c) for c in conditions}


def _create_items(study: Study, items: list[dict]) -> dict[str, StudyItem]:
    return {i["item_id"]: StudyItem.objects.create(study=study, bundle_item=i["bundle_item"], choices=i["choices"],
                                                   is_practice=i["is_practice"], order=i["order"],
                                                   **{name: i[name] for name in ITEM_QUALITY})
            for i in items}


def _create_responses(enrolment: Enrolment, responses: list[dict], items: dict[str, StudyItem]) -> None:
    created = Response.objects.bulk_create([
        Response(enrolment=enrolment, item=items[r["item"]], is_practice=r["is_practice"], confidence=r["confidence"],
                 seconds_on_item=r["seconds_on_item"], **{name: r[name] for name in RESPONSE_TEXTS})
        for r in responses])
    for response, data in zip(created, responses):  # auto_now_add set them to now
        response.created_at = data["created_at"]
    Response.objects.bulk_update(created, ["created_at"])


def _create_enrolment(study: Study, data: dict, conditions: dict[str, Condition],
                      items: dict[str, StudyItem]) -> Enrolment:
    enrolment = Enrolment.objects.create(
        study=study, condition=conditions[data["condition"]], token=data["token"],
        item_order=[items[i].pk for i in data["item_order"]], position=data["position"],
        closing_answers=data["closing_answers"], assignment=data["assignment"], completed_at=data["completed_at"],
        exclusion_changed_at=data["exclusion_changed_at"],
        # who excluded them, if they have an account here (the history keeps every name)
        exclusion_changed_by=User.objects.filter(username=data["exclusion_changed_by"] or "").first(),
        **{name: data[name] for name in ENROLMENT_TEXTS + ENROLMENT_EXCLUSION})
    Enrolment.objects.filter(pk=enrolment.pk).update(started_at=data["started_at"], last_seen_at=data["last_seen_at"])
    _create_responses(enrolment, data["responses"], items)
    return enrolment


def import_study(document: dict, owner, notes: list[str] | None = None) -> Study:
    """Recreate the study of an :func:`export_study` document here, owned by ``owner``.

    Tokens (invite link and annotators' links), pseudonyms, Prolific ids, steps, item
    orders, closing answers, every response and every timestamp are kept; the study is
    shared with those of its collaborators who have an account here (by username). What
    could not be carried over is appended to ``notes`` (and logged).

    All or nothing: raises :class:`StudyError`, with nothing written, when the document's
    format or version is unknown or a field is malformed (the message names the field),
    when its bundle is not imported here or lacks one of its items, or when the invite
    token or an enrolment token is already used here.
    """
    notes = [] if notes is None else notes
    _check_format(document)
    document = _read(document)
    bundle = _bundle_here(document["bundle"])
    _check_items(document["items"], bundle)
    _check_parts(document)
    study_data, conditions, items, enrolments = (document[k] for k in ("study", "conditions", "items", "enrolments"))
    _check_collisions(study_data, enrolments)
    share_with = _users_to_share_with(study_data["shared_with"], owner, notes)
    if study_data["owner"] != owner.username:
        notes.append(f"owned here by {owner.username} (exported from {study_data['owner']}'s study)")
    try:
        with transaction.atomic():
            study = _create_study(study_data, bundle, owner, share_with)
            by_name = _create_conditions(study, conditions)
            by_item_id = _create_items(study, items)
            for data in enrolments:
                _create_enrolment(study, data, by_name, by_item_id)
    except (IntegrityError, DataError) as exc:
        raise StudyError(f"the study could not be saved, nothing was written: {exc}") from None
    for note in notes:
        logger.info("import of study %r: %s", study.title, note)
    return study
