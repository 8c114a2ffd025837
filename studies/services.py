"""Business rules that write: importing bundles, caching live second-order gradients."""

from pathlib import Path

from django.db import DataError, IntegrityError, transaction
from rest_framework import serializers

from viz_engine.bundles.folder import validate_bundle
from viz_engine.bundles.format import BundleError, read_json, sha256_file

from . import workers
from .models import Bundle, BundleItem, Condition, DebuggingReport, Enrolment, LiveSOGResult, Study, StudyItem
from .quality import ATTENTION_REASON, attention_score, gate_status, quality_problem
from .schemas import BundleItemRowSchema, BundleRowSchema, DebuggingParams, first_error
from .selectors import REPORT_STALE_AFTER_SECONDS, accessible_bundles, report_is_stale
from .stage_views import (CARD_FIELDS, pages_of, parse_stage, platform_stage_names, stage_label, stage_view,
                          training_card)
from .task_registry import task_spec, task_specs


def _bundle_rows_fit(row: dict, items: list[dict]) -> None:
    """The values the rows keep must fit their columns (names without NUL, not too long)."""
    checked = BundleRowSchema(data=row)
    if not checked.is_valid():
        raise BundleError(f"bundle {first_error(checked.errors)}")
    checked = BundleItemRowSchema(data=items, many=True)
    if not checked.is_valid():
        raise BundleError(first_error(checked.errors, "items"))


def import_bundle(path, name: str | None = None, owner=None) -> Bundle:
    """Validate the bundle at ``path`` and record it with its items, all or nothing, owned by
    ``owner`` (a user; None: no owner, so superusers only until it is given or shared).

    Raises :class:`BundleError` (nothing written) for a partial, malformed or tampered
    bundle, one holding a symbolic link, or one already imported.
    """
    root = Path(path).resolve()
    manifest = validate_bundle(root)
    digest = sha256_file(root / "manifest.json")
    name = name or root.name
    row = {"name": name, "path": str(root), "dataset": manifest["dataset"]["name"], "model": manifest["model"]["name"]}
    stages = manifest["request"]["stages"]
    records = []
    for entry in manifest["items"]:
        record = read_json(root / "items" / entry["id"] / "item.json")
        if record["id"] != entry["id"]:
            raise BundleError(f"items/{entry['id']}/item.json names item {record['id']!r}")
        records.append(record)
    _bundle_rows_fit(row, [{"item_id": r["id"], "label": r["label"], "prediction": r["prediction"]} for r in records])
    if Bundle.objects.filter(manifest_sha256=digest).exists():
        raise BundleError(f"this bundle is already imported as {Bundle.objects.get(manifest_sha256=digest).name!r}")
    if Bundle.objects.filter(name=name).exists():
        raise BundleError(f"a bundle named {name!r} already exists; import under another name")
    items = [BundleItem(item_id=entry["id"], position=position, label=record["label"], prediction=record["prediction"],
                        correct=record["correct"], feature=entry.get("feature"), record=record,
                        sections={s: read_json(root / "items" / entry["id"] / f"{s}.json") for s in stages})
             for position, (entry, record) in enumerate(zip(manifest["items"], records))]
    try:
        with transaction.atomic():
            bundle = Bundle.objects.create(**row, owner=owner, manifest_sha256=digest, task=manifest["task"],
                                           stages=stages, class_names=manifest["class_names"], manifest=manifest)
            for item in items:
                item.bundle = bundle
            BundleItem.objects.bulk_create(items)
    except (IntegrityError, DataError) as exc:
        raise BundleError(f"the bundle could not be recorded: {exc}") from None
    return bundle


def multiviz_results_dir() -> Path:
    """Where MultiViz's shared sample results are (``MULTIVIZ_RESULTS_DIR``, default
    ``../shared/multiviz-results`` beside the repository); it may not exist."""
    import os

    from django.conf import settings

    default = Path(settings.BASE_DIR).parent / "shared" / "multiviz-results"
    return Path(os.environ.get("MULTIVIZ_RESULTS_DIR") or default)


def multiviz_bundle_dir(name: str) -> Path:
    """Where ``import_multiviz`` writes the bundle named ``name`` (under MULTIVIZ_DATA_DIR)."""
    import re

    from django.conf import settings

    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip(".-")[:100] or "bundle"
    return Path(settings.DATA_DIR) / "bundles" / f"multiviz-{slug}"


def import_multiviz(folders, name: str, owner=None, *, class_names=(), allow_missing: bool = False,
                    task: str = "simulation", model: str | None = None, out=None) -> Bundle:
    """MultiViz's own results ``folders`` (one dataset) as the bundle ``name``: written to
    ``out`` (default :func:`multiviz_bundle_dir`) by ``viz_engine.importers.multiviz``, then
    imported like any bundle. All or nothing: on a refusal (:class:`BundleError` naming the
    file and the problem) no row is recorded and no folder is left behind."""
    import shutil

    from viz_engine.importers.multiviz import write_bundle

    if not isinstance(name, str) or not name.strip() or len(name) > 200 or "\x00" in name:
        raise BundleError("--name: a bundle name of 1 to 200 characters, without NUL")
    if Bundle.objects.filter(name=name).exists():
        raise BundleError(f"a bundle named {name!r} already exists; import under another name")
    out = Path(out) if out else multiviz_bundle_dir(name)
    write_bundle(folders, out, class_names=class_names, allow_missing=allow_missing, task=task, model=model)
    try:
        return import_bundle(out, name=name, owner=owner)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


class LiveSOGThrottled(Exception):
    """One new word set too many for now: ``wait`` seconds until the next is computed."""

    def __init__(self, wait: int):
        super().__init__(f"too many new word sets: wait {wait} s")
        self.wait = wait


def live_second_order_gradient(item: BundleItem, positions, timeout: float = 30.0, throttle=None) -> LiveSOGResult:
    """The SOG of the words at ``positions`` of ``item``'s question over its image, computed
    by a worker that keeps the model loaded (in-process without a broker), cached per words:
    at most ``MULTIVIZ_LIVE_SOG_KEEP`` word sets per item, the least recently shown dropped
    first (a question of n words has 2ⁿ − 1 of them). Before computing a new one it asks
    ``throttle()`` for the seconds to wait (0: go on) and raises :class:`LiveSOGThrottled`
    if there are any; word sets already computed are never held back. The worker's task is
    reached by its name (``workers.LIVE_SOG``): this process need not load the engine."""
    from django.conf import settings
    from django.utils import timezone

    tokens = item.record.get("datapoint", {}).get("tokens", [])  # none: a datapoint without words
    try:
        wanted = sorted({int(p) for p in positions})
    except (TypeError, ValueError):
        raise BundleError("positions must be word positions (integers)") from None
    if not wanted:
        raise BundleError("pick at least one word")
    bad = [p for p in wanted if not 0 <= p < len(tokens)]
    if bad:
        raise BundleError(f"word positions {bad} are not words of this question (0–{len(tokens) - 1})")
    key = ",".join(map(str, wanted))
    cached = LiveSOGResult.objects.filter(item=item, positions=key).first()
    if cached:
        LiveSOGResult.objects.filter(pk=cached.pk).update(last_used_at=timezone.now())
        return cached
    wait = throttle() if throttle else 0
    if wait:
        raise LiveSOGThrottled(wait)
    bundle = item.bundle
    result = workers.run(workers.LIVE_SOG, bundle.dataset, bundle.model, item.record["split"], item.record["index"],
                         wanted)
    data = result.get(timeout=timeout)
    heat = bytes.fromhex(data.pop("heatmap_png"))
    obj, _ = LiveSOGResult.objects.get_or_create(item=item, positions=key,
                                                 defaults={"result": data, "heatmap_png": heat})
    kept = LiveSOGResult.objects.filter(item=item).order_by("-last_used_at", "-pk").values_list("pk", flat=True)
    LiveSOGResult.objects.filter(pk__in=list(kept[max(1, settings.MULTIVIZ_LIVE_SOG_KEEP):])).delete()
    return obj


# -- enrolment ----------------------------------------------------------------------------------
class StudyError(ValueError):
    """A request the study cannot take (closed, full, bad answer …); the message says why."""


def without_nul(what: str, value: str) -> str:
    """``value``, refused if it holds a NUL character: no one types one, PostgreSQL stores
    no text with one, and the refusal (naming ``what``) tells the annotator what to change."""
    if "\x00" in value:
        raise StudyError(f"{what} has a NUL character (an invisible control character, shown as \ufffd) that "
                         "cannot be saved; delete it and send again")
    return value


# An enrolment counts towards its condition's size while completed or seen this recently.
ACTIVE_WINDOW_SECONDS = 30 * 60
# enrolments that never fill a place in their condition: declined consent, or screened out
NOT_FILLING = (Enrolment.Step.DECLINED, Enrolment.Step.SCREENED_OUT)


def condition_fill(condition, now=None) -> int:
    """Completed enrolments plus those active within ``ACTIVE_WINDOW_SECONDS``."""
    from datetime import timedelta

    from django.db.models import Q
    from django.utils import timezone

    now = now or timezone.now()
    recent = now - timedelta(seconds=ACTIVE_WINDOW_SECONDS)
    return condition.enrolments.filter(Q(completed_at__isnull=False) | Q(last_seen_at__gte=recent)) \
        .exclude(step__in=NOT_FILLING).count()


def conditions_with_fill(study, now=None):
    """The study's conditions, each with ``fill`` (as :func:`condition_fill`) in one query:
    a burst of joins waits on each other's lock, so each join must be short."""
    from datetime import timedelta

    from django.db.models import Count, Q
    from django.utils import timezone

    recent = (now or timezone.now()) - timedelta(seconds=ACTIVE_WINDOW_SECONDS)
    counted = (Q(enrolments__completed_at__isnull=False) | Q(enrolments__last_seen_at__gte=recent)) \
        & ~Q(enrolments__step__in=NOT_FILLING)
    return study.conditions.annotate(fill=Count("enrolments", filter=counted))


def _item_order(study, token: str) -> list[int]:
    """An annotator's items: practice first, then the counted items (shuffled, seeded by the
    enrolment, unless the study fixes the order) with the attention checks at seeded places
    among them, never first, so where a check comes tells nothing."""
    import random

    items = study.items.order_by("order", "pk").values_list("pk", "is_practice", "attention_check")
    practice, counted, checks = [], [], []
    for pk, is_practice, is_check in items:
        (checks if is_check else practice if is_practice else counted).append(pk)
    rng = random.Random(token)
    if study.item_order == study.Order.SHUFFLED:
        rng.shuffle(counted)
    for pk in checks:
        counted.insert(rng.randint(1, len(counted)) if counted else 0, pk)
    return practice + counted


class EnrolmentTaken(StudyError):
    """The pseudonym has an enrolment that the request did not prove its own."""


PROLIFIC_ID_LENGTH = 100  # Enrolment's pseudonym and Prolific id fields


def clean_pseudonym(value: str) -> str:
    """A pseudonym (Prolific's PID) as it is stored."""
    return (value or "").strip()[:PROLIFIC_ID_LENGTH]


def proves_prolific_session(enrolment, prolific_study_id: str, prolific_session_id: str) -> bool:
    """Whether Prolific's study and session ids are the ones ``enrolment`` joined with: what
    Prolific puts in the link of the participant it sent, and what no researcher's page
    shows. An enrolment that joined without them can only be resumed by its browser."""
    from django.utils.crypto import constant_time_compare

    stored = (enrolment.prolific_study_id, enrolment.prolific_session_id)
    given = (prolific_study_id[:PROLIFIC_ID_LENGTH], prolific_session_id[:PROLIFIC_ID_LENGTH])
    return all(stored) and all(constant_time_compare(s, g) for s, g in zip(stored, given))


def draw_condition(candidates, seed: int):
    """The least-filled of ``candidates`` (conditions with ``fill``); a tie is broken by a
    draw seeded with ``seed``, never by id, so early joiners do not always fill the same
    conditions. Returns the condition and the record of the draw (kept on the enrolment)."""
    import random

    least = min(c.fill for c in candidates)
    tied = sorted((c for c in candidates if c.fill == least), key=lambda c: c.pk)
    drawn = random.Random(seed).choice(tied)
    return drawn, {"seed": seed, "fill": least, "tied": [c.name for c in tied], "drawn": drawn.name}


def enrol(study, pseudonym: str = "", prolific_study_id: str = "", prolific_session_id: str = ""):
    """The annotator's enrolment: a new one in the least-filled open condition (permanent),
    or their existing one under the same pseudonym if they prove it is theirs with the
    Prolific study and session ids it joined with (:func:`proves_prolific_session`).

    A pseudonym is public (exports, the monitor and the API show it), so on its own it opens
    nothing: an unproven claim to a taken pseudonym raises :class:`EnrolmentTaken` while the
    study is open, and the study's "not open" :class:`StudyError` otherwise. (A browser that
    remembers its enrolment is sent back to it by the join view, before any of this.)
    """
    import secrets

    pseudonym = clean_pseudonym(pseudonym)
    enrolment = Enrolment(pseudonym=pseudonym or f"anon-{secrets.token_hex(6)}",
                          prolific_study_id=prolific_study_id[:PROLIFIC_ID_LENGTH],
                          prolific_session_id=prolific_session_id[:PROLIFIC_ID_LENGTH])
    # before the lock: a burst of joins waits on it, so it covers only choosing the condition
    enrolment.item_order = _item_order(study, enrolment.token)
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)  # one join at a time per study
        existing = study.enrolments.filter(pseudonym=pseudonym).first() if pseudonym else None
        if existing and proves_prolific_session(existing, prolific_study_id, prolific_session_id):
            return existing
        if study.status != Study.Status.OPEN:
            raise StudyError("this study is not open for new participants")
        if existing:
            raise EnrolmentTaken("this Prolific ID has already started this study")
        candidates = [c for c in conditions_with_fill(study).filter(paused=False).order_by("pk")
                      if c.target_size == 0 or c.fill < c.target_size]
        if not candidates:
            raise StudyError("this study is full: every group has all the participants it needs")
        enrolment.condition, enrolment.assignment = draw_condition(candidates, secrets.randbits(32))
        enrolment.study = study
        enrolment.save()
        return enrolment


TOUCH_INTERVAL_SECONDS = 60


def touch(enrolment) -> None:
    """The annotator was here now (keeps their place counted in the condition). Written at
    most once a minute: a page view should not always be a database write."""
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    if enrolment.last_seen_at and now - enrolment.last_seen_at < timedelta(seconds=TOUCH_INTERVAL_SECONDS):
        return
    type(enrolment).objects.filter(pk=enrolment.pk).update(last_seen_at=now)


def advance(enrolment, from_step: str, to_step: str):
    """Move past consent or instructions; a repeated click is harmless."""
    with transaction.atomic():
        e = Enrolment.objects.select_for_update().get(pk=enrolment.pk)
        if e.step == from_step:
            e.step = to_step
            e.save(update_fields=["step"])
        return e


def decline(enrolment):
    """The annotator declined consent: their enrolment ends here (step ``declined``), frees
    its place in the condition and is sent on with the study's returned code. Only from
    the consent page; a repeated click is harmless."""
    return advance(enrolment, Enrolment.Step.CONSENT, Enrolment.Step.DECLINED)


CLARITY_SCALE = ("", "1", "2", "3", "4", "5")  # "": not answered (the question is optional)


def asks_clarity(enrolment) -> bool:
    """Whether the closing page asks how clear the explanations were: not of an annotator
    whose condition showed none (No-Viz)."""
    return bool(enrolment.condition.stages)


def finish(enrolment, closing_answers: dict):
    """Record the closing questions and complete the enrolment (once)."""
    from django.utils import timezone

    closing_answers = {k: without_nul(f"the answer to \u201c{k}\u201d", str(v)) for k, v in closing_answers.items()}
    if not asks_clarity(enrolment):  # nothing was explained: the question is not asked, nor kept
        closing_answers.pop("clarity", None)
    elif closing_answers.get("clarity", "") not in CLARITY_SCALE:
        raise StudyError("how clear the explanations were is a number from 1 (not clear at all) to 5 (very clear), "
                         "or no answer")
    with transaction.atomic():
        e = Enrolment.objects.select_for_update().get(pk=enrolment.pk)
        if e.step == Enrolment.Step.DONE:
            return e
        if e.step != Enrolment.Step.CLOSING:
            raise StudyError("there are items left to answer")
        e.closing_answers = {k: str(v)[:2000] for k, v in closing_answers.items()}
        e.step, e.completed_at = Enrolment.Step.DONE, timezone.now()
        e.save(update_fields=["closing_answers", "step", "completed_at"])
        return e


# -- building studies ------------------------------------------------------------------------
ALL_STAGES = ["U", "C", "Rl", "Rg", "P"]  # the paper's stages; T (transformer views) on request


def presets_by_task() -> dict[str, list]:
    """The paper's conditions per task (section 3, appendix D), as each task registers them:
    task name → [(name, stages, options)]."""
    return {t.name: list(t.presets) for t in task_specs()}


def answer_type(bundle, label: str) -> list[str]:
    """The classes of ``label``'s answer type (the bundle's ``answer_types``, e.g. colours,
    shapes, counts), in class order. A bundle that records no answer types has one: all
    its classes; classes no type names form one type of their own."""
    types = (bundle.manifest or {}).get("answer_types") or {}
    for names in types.values():
        if label in names:
            return [c for c in bundle.class_names if c in names]
    typed = {c for names in types.values() for c in names}
    return [c for c in bundle.class_names if c not in typed]


def simulation_choices(bundle_item, n: int = 4, bundle=None) -> list[str]:
    """Up to ``n`` classes of the prediction's answer type, so none can be ruled out without
    an explanation: the prediction, the correct answer (when of that type), the most probable
    others, then a random rest (seeded by the item). Stored sorted by name; each annotator
    sees them in their own order (:func:`studies.selectors.choices_shown`)."""
    import random

    same = answer_type(bundle or bundle_item.bundle, bundle_item.prediction)
    picks = dict.fromkeys([bundle_item.prediction])
    if bundle_item.label in same:
        picks[bundle_item.label] = None
    for name, _p in bundle_item.record.get("probabilities", []):
        if len(picks) >= n:
            break
        if name in same:
            picks[name] = None
    rest = [c for c in same if c not in picks]
    random.Random(f"choices:{bundle_item.item_id}").shuffle(rest)
    picks.update(dict.fromkeys(rest[:max(0, n - len(picks))]))
    return sorted(picks)


def parse_condition(line: str) -> tuple[str, list[str], dict]:
    """``"name: U C Rl"`` (any set of stages, or none) → a custom condition."""
    name, sep, stages = line.partition(":")
    name = name.strip()
    if not sep or not name:
        raise StudyError(f"write a custom condition as 'name: stages', e.g. 'U+P: U P'; got {line!r}")
    parsed = []
    for token in stages.replace("+", " ").replace(",", " ").split():
        stage = parse_stage(token)
        if stage is None:
            raise StudyError(f"{token!r} in {line!r} is not a stage ({', '.join(platform_stage_names())})")
        if stage not in parsed:
            parsed.append(stage)
    return name, [s for s in platform_stage_names() if s in parsed], {}


def create_study(owner, bundle, *, title: str, task: str | None = None, presets: list[str] | None = None,
                 custom: list[tuple[str, list[str], dict]] | None = None, practice: int = 1,
                 group_size: int | None = None, instructions: str = "", consent_text: str = "",
                 open_now: bool = False):
    """A study over every item of ``bundle`` with the paper's conditions for its task (all of
    them, or those named in ``presets``) and any ``custom`` conditions (name, stages,
    options); the first ``practice`` items are practice. Only over a bundle ``owner`` may
    see (:func:`~studies.selectors.accessible_bundles`)."""
    if not accessible_bundles(owner).filter(pk=bundle.pk).exists():
        raise StudyError(f"bundle {bundle.name!r} is not yours nor shared with you: ask its owner to share it")
    task = task or bundle.task
    if task not in [t.name for t in task_specs()]:
        raise StudyError(f"task {task!r} is unknown; tasks: {', '.join(t.name for t in task_specs())}")
    spec = task_spec(task)
    title = _clean_title(title)
    instructions, consent_text = _text(instructions, "the instructions"), _text(consent_text, "the consent text")
    chosen = [p for p in spec.presets if presets is None or p[0] in presets]
    if presets is not None and len(chosen) != len(presets):
        known = [p[0] for p in spec.presets]
        raise StudyError(f"unknown preset(s) {sorted(set(presets) - set(known))}; presets for {task}: {known}")
    chosen = chosen + list(custom or [])
    names = [c[0] for c in chosen]
    if not chosen:
        raise StudyError("choose at least one condition")
    if len(set(names)) != len(names):
        raise StudyError(f"condition names must differ: {names}")
    if not 0 <= practice < bundle.items.count():
        raise StudyError(f"practice must leave counted items: the bundle has {bundle.items.count()} items")
    missing = sorted({s for _, stages, _ in chosen for s in stages} - set(bundle.stages))
    if missing:
        raise StudyError(f"the bundle lacks stage(s) {missing} that these conditions show")
    unknown = sorted({s for _, stages, _ in chosen for s in stages} - set(platform_stage_names()))
    if unknown:
        raise StudyError(f"unknown stage(s) {unknown}; stages: {', '.join(platform_stage_names())}")
    size = spec.group_size if group_size is None else _whole_number(group_size, "the group size")
    with transaction.atomic():
        study = Study.objects.create(owner=owner, bundle=bundle, title=title, task=task, instructions=instructions,
                                     consent_text=consent_text,
                                     status=Study.Status.OPEN if open_now else Study.Status.DRAFT)
        for name, stages, options in chosen:
            pages = pages_of(dict.fromkeys(stages))
            Condition.objects.create(study=study, name=name, stages=stages, target_size=size,
                                     ask_helpful_page=spec.ask_helpful_page and pages["features"]
                                     and any(stage_view(s).page == "overview" for s in stages), **options)
        for k, bi in enumerate(bundle.items.order_by("position")):
            StudyItem.objects.create(study=study, bundle_item=bi, order=k, is_practice=k < practice,
                                     choices=spec.item_choices(bi, bundle))
    return study


# The rules of editing a study, shared by every write path: the builder's forms, the REST
# API (annotations/api.py) and nothing else (the admin shows these rows read-only).
MAX_POSITIVE_INT = 2_147_483_647  # a PositiveIntegerField's limit in every database
DETAIL_FIELDS = ("title", "instructions", "consent_text", "item_order", "training_cards")
ITEM_FIELDS = ("choices", "is_practice", "order", "include", "attention_check", "expected_answer",
               "instruction")
CONDITION_FLAGS = ("paused", "rg_highlights", "live_sog", "ask_helpful_page", "global_feature_ids")


def _whole_number(value, what: str) -> int:
    """``value`` as a whole number from 0 to :data:`MAX_POSITIVE_INT`, or why not."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise StudyError(f"{what} must be a whole number") from None
    if isinstance(value, bool) or (isinstance(value, float) and value != number):
        raise StudyError(f"{what} must be a whole number")
    if number < 0:
        raise StudyError(f"{what} cannot be negative")
    if number > MAX_POSITIVE_INT:
        raise StudyError(f"{what} must be at most {MAX_POSITIVE_INT}")
    return number


def _text(value, what: str) -> str:
    if not isinstance(value, str):
        raise StudyError(f"{what} must be text")
    return without_nul(what, value)


def _clean_title(title) -> str:
    """A study's title: text, not blank, that fits its column."""
    title = _text(title, "the title").strip()
    if not title:
        raise StudyError("the study needs a title")
    limit = Study._meta.get_field("title").max_length
    if len(title) > limit:
        raise StudyError(f"the title is longer than {limit} characters")
    return title


def _item_choices(study, item, choices) -> list[str]:
    """The answer choices of ``item``: distinct classes of the model, two or more in a
    model-simulation study (the annotator picks the prediction among them)."""
    if not isinstance(choices, (list, tuple)) or not all(isinstance(c, str) for c in choices):
        raise StudyError(f"item {item.bundle_item.item_id}: choices must be a list of class names")
    classes = set(study.bundle.class_names)
    choices = [c.strip() for c in choices if c.strip()]
    bad = [c for c in choices if c not in classes]
    fewest = 2 if task_spec(study.task).checks_choices else 0
    if len(choices) < fewest or bad or len(set(choices)) != len(choices):
        raise StudyError(f"item {item.bundle_item.item_id}: choices must be "
                         + ("two or more distinct" if fewest else "distinct")
                         + " classes of the model" + (f" ({', '.join(bad)} are not)" if bad else ""))
    return choices


def update_items(study, rows: dict[int, dict]) -> None:
    """``{study item id: {"choices": [...], "is_practice": bool, "order": int, "include":
    bool, "attention_check": bool, "expected_answer": str, "instruction": str}}``, each key
    optional (an absent one keeps its value; ``include`` false removes the item). Only
    before anyone enrols: answers must never refer to items that changed under them. At
    least one counted item (not practice, not an attention check) stays, and the study's
    quality controls must still be met (:func:`studies.quality.quality_problem`). All or
    nothing, with a message naming the item."""
    if study.enrolments.exists():
        raise StudyError("annotators have started this study; its items can no longer change")
    items = {i.pk: i for i in study.items.select_related("bundle_item")}
    unknown = sorted(set(rows) - set(items))
    if unknown:
        raise StudyError(f"items {unknown[:5]} are not in this study")
    with transaction.atomic():
        for pk, row in rows.items():
            item = items[pk]
            if not row.get("include", True):
                item.delete()
                continue
            if "choices" in row:
                item.choices = _item_choices(study, item, row["choices"])
            if "order" in row:
                item.order = _whole_number(row["order"], f"item {item.bundle_item.item_id}: the order")
            item.is_practice = bool(row.get("is_practice", item.is_practice))
            item.attention_check = bool(row.get("attention_check", item.attention_check))
            for name in ("expected_answer", "instruction"):
                if name in row:
                    limit = StudyItem._meta.get_field(name).max_length
                    value = without_nul(f"item {item.bundle_item.item_id}: {name.replace('_', ' ')}",
                                        str(row[name] or "")).strip()
                    if len(value) > limit:
                        raise StudyError(f"item {item.bundle_item.item_id}: {name.replace('_', ' ')} is longer than "
                                         f"{limit} characters")
                    setattr(item, name, value)
            if (task_spec(study.task).checks_choices and item.expected_answer and item.choices
                    and item.expected_answer not in item.choices):
                raise StudyError(f"item {item.bundle_item.item_id}: the expected answer must be one of its choices")
            item.save()
        if not StudyItem.objects.filter(study=study, is_practice=False, attention_check=False).exists():
            raise StudyError("keep at least one counted (non-practice) item")
        problem = quality_problem(study)
        if problem:
            raise StudyError(problem)


def repeat_practice(enrolment: Enrolment) -> Enrolment:
    """Start another round of practice after a failed gate: the round's answers are already
    kept in ``practice_rounds``; the practice responses are cleared so they can be answered
    again. A repeated click, or a call when no retry is due, changes nothing."""
    with transaction.atomic():
        e = Enrolment.objects.select_for_update().select_related("study").get(pk=enrolment.pk)
        if e.step != Enrolment.Step.ITEMS or gate_status(e) != "retry":
            return e
        e.responses.filter(is_practice=True).delete()
        e.position = 0
        e.save(update_fields=["position"])
        return e


def apply_attention_rule(enrolment: Enrolment) -> bool:
    """Exclude ``enrolment`` from the metrics when it got fewer attention checks right than
    the study asks (once, when it reaches the closing questions); returns whether it did."""
    study = enrolment.study
    need = study.attention_min_correct
    if need is None:
        return False
    right, of = attention_score(enrolment)
    if right >= need:
        return False
    set_exclusion(study, {"enrolment": enrolment.pk, "excluded": True,
                          "reason": ATTENTION_REASON.format(right=right, of=of, need=need)}, by=None)
    return True



class QualitySettings(serializers.Serializer):
    """The builder's quality controls (every field optional: an absent one keeps its value)."""

    attention_min_correct = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=1000,
                                                     help_text="exclude annotators with fewer right attention checks")
    gate_min_correct = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=1000,
                                                help_text="practice answers to get right before the counted items")
    gate_attempts = serializers.IntegerField(required=False, min_value=1, max_value=10,
                                             help_text="rounds of practice allowed to pass the gate")


def update_quality_controls(study, data: dict):
    """Set the study's attention rule and comprehension gate from ``data`` (a form: an empty
    number is no rule). Only before anyone enrols; refused (nothing saved) when the study's
    items cannot meet them (:func:`studies.quality.quality_problem`)."""
    fields = QualitySettings().fields
    data = {k: (None if str(v).strip() == "" else v) for k, v in data.items() if k in fields}
    clean = _validated(QualitySettings, data)
    if study.enrolments.exists():
        raise StudyError("annotators have started this study; its quality controls can no longer change")
    before = {name: getattr(study, name) for name in clean}
    for name, value in clean.items():
        setattr(study, name, value)
    problem = quality_problem(study)
    if problem:
        for name, value in before.items():  # the caller's object as it was: nothing changed
            setattr(study, name, value)
        raise StudyError(problem)
    study.save(update_fields=list(clean))
    return study


def update_conditions(study, rows: dict[int, dict]) -> None:
    """``{condition id: {"target_size": int, "paused": bool, "rg_highlights": bool, …}}``:
    target sizes, pausing and the variants of each condition; an absent key keeps its
    value. All or nothing."""
    conditions = {c.pk: c for c in study.conditions.all()}
    with transaction.atomic():
        for pk, row in rows.items():
            if pk not in conditions:
                raise StudyError(f"condition {pk} is not in this study")
            c = conditions[pk]
            if "target_size" in row:
                c.target_size = _whole_number(row["target_size"], f"{c.name}: the target size")
            for flag in CONDITION_FLAGS:
                setattr(c, flag, bool(row.get(flag, getattr(c, flag))))
            c.save()


# the longest text of a training card: a heading, or a few sentences
CARD_TEXT_LIMITS = {"title": 120, "shows": 2000, "colours": 2000, "example": 2000}


def clean_training_cards(cards) -> dict:
    """A study's own texts of its training cards, ``{stage: {field: text}}`` (fields:
    :data:`~studies.stage_views.CARD_FIELDS`), as they are stored: trimmed, line ends as
    ``\\n``, and only the texts that differ from the stage's default (an empty one, or the
    default itself, shows the default and follows it when it changes). Raises
    :class:`StudyError` naming the stage and the text; the builder, the API and the study
    import all ask this."""
    if not isinstance(cards, dict):
        raise StudyError("the training cards must be an object: {stage: {text: value}}")
    stages = platform_stage_names()
    clean = {}
    for stage, texts in cards.items():
        if stage not in stages:
            raise StudyError(f"training cards: {str(stage)[:40]!r} is not a stage ({', '.join(stages)})")
        if not isinstance(texts, dict):
            raise StudyError(f"training cards: the {stage_label(stage)} card must be an object of its texts "
                             f"({', '.join(CARD_FIELDS)})")
        default = training_card(stage)
        for field, text in texts.items():
            if field not in CARD_FIELDS:
                raise StudyError(f"training cards: {str(field)[:40]!r} is not a text of the {stage_label(stage)} card "
                                 f"(its texts: {', '.join(CARD_FIELDS)})")
            what = f"the {stage_label(stage)} card's {CARD_FIELDS[field]}"
            text = _text(text, what).replace("\r\n", "\n").strip()
            if len(text) > CARD_TEXT_LIMITS[field]:
                raise StudyError(f"{what} is longer than {CARD_TEXT_LIMITS[field]} characters")
            if text and text != getattr(default, field):
                clean.setdefault(stage, {})[field] = text
    return clean


def update_details(study, data: dict):
    """The study's title (never empty), instructions, consent text, item order and training
    cards (:func:`clean_training_cards`, replacing the study's own texts), from ``data`` (an
    absent key keeps its value). The order annotators get their items in cannot change once
    one has started: it is fixed per annotator when they join."""
    changes = {}
    for name in ("title", "instructions", "consent_text"):
        if name in data:
            changes[name] = _text(data[name], f"the {name.replace('_', ' ')}")
    if "title" in changes:
        changes["title"] = _clean_title(changes["title"])
    if "training_cards" in data:
        changes["training_cards"] = clean_training_cards(data["training_cards"])
    if "item_order" in data:
        if data["item_order"] not in Study.Order.values:
            raise StudyError(f"the item order must be one of {', '.join(Study.Order.values)}")
        if data["item_order"] != study.item_order and study.enrolments.exists():
            raise StudyError("annotators have started this study; the order of its items can no longer change")
        changes["item_order"] = data["item_order"]
    for name, value in changes.items():
        setattr(study, name, value)
    if changes:
        study.save(update_fields=list(changes))
    return study


def set_status(study, status: str):
    if status not in Study.Status.values:
        raise StudyError(f"status must be one of {', '.join(Study.Status.values)}")
    if status == Study.Status.OPEN and not study.conditions.filter(paused=False).exists():
        raise StudyError("open at least one condition before opening the study")
    study.status = status
    study.save(update_fields=["status"])
    return study


# -- model debugging reports ----------------------------------------------------------------------
def _validated(serializer_class, data):
    """The serializer's ``validated_data`` of ``data``, or a :class:`StudyError` naming the
    first field refused and why."""
    checked = serializer_class(data=data)
    if not checked.is_valid():
        field, problems = next(iter(checked.errors.items()))
        raise StudyError(f"{field.replace('_', ' ')}: {problems[0]}")
    return checked.validated_data


def start_debugging_report(bundle, data) -> DebuggingReport:
    """Record a run of the model debugging report of ``bundle`` and hand it to Celery.

    ``data`` holds the parameters (budget, runs, seed, k_features, epochs and the split
    sizes; missing ones take the engine's defaults). Raises :class:`StudyError` naming the
    field for a bad one, or when a run of this bundle is still going; a run that stopped
    showing progress is marked interrupted and no longer blocks.
    """
    from django.utils import timezone

    if (bundle.manifest or {}).get("request", {}).get("source") == "multiviz":
        raise StudyError("this bundle holds MultiViz's own precomputed results (import_multiviz): there is no model "
                         "here to debug")
    # a form sends "" for a field left empty: that is the default, not a number to check
    params = _validated(DebuggingParams, {k: v for k, v in data.items() if v not in ("", None)})
    with transaction.atomic():
        for going in DebuggingReport.objects.select_for_update().filter(
                bundle=bundle, status__in=(DebuggingReport.Status.QUEUED, DebuggingReport.Status.RUNNING)):
            if not report_is_stale(going):
                raise StudyError(f"a report of this bundle is already being computed ({100 * going.progress:.0f} % "
                                 "done); wait for it to finish")
            going.status, going.finished_at = DebuggingReport.Status.FAILED, timezone.now()
            minutes = REPORT_STALE_AFTER_SECONDS // 60
            going.error = (f"interrupted: no worker took it within {minutes} minutes"
                           if going.status == DebuggingReport.Status.QUEUED else
                           f"interrupted: no progress for {minutes} minutes (at {100 * going.progress:.0f} %, "
                           f"{going.stage}); the process running it stopped")
            going.save(update_fields=["status", "finished_at", "error", "updated_at"])
        report = DebuggingReport.objects.create(bundle=bundle, params=dict(params))
        transaction.on_commit(lambda: _dispatch_debugging_report(report.pk))
    return report


def _dispatch_debugging_report(report_id: int) -> None:
    """Hand the run to a worker by the task's name; without a broker, to a thread of this
    process (``EAGER_TASKS_IN_THREAD``), so the page answers at once and shows its progress."""
    import threading

    from django.conf import settings

    if workers.in_process() and settings.EAGER_TASKS_IN_THREAD:
        threading.Thread(target=_run_in_thread, args=(report_id,), daemon=True,
                         name=f"debugging-report-{report_id}").start()
    else:
        workers.run(workers.DEBUGGING_REPORT, report_id)


def _run_in_thread(report_id: int) -> None:
    from django.db import connection

    try:
        workers.run(workers.DEBUGGING_REPORT, report_id)
    finally:
        connection.close()  # the thread's own connection


# -- excluding annotators from the metrics --------------------------------------------------------
class ExclusionChange(serializers.Serializer):
    """The researcher excludes an annotator from the metrics, or includes them again: always
    with a reason, which the exports carry."""

    enrolment = serializers.IntegerField(min_value=1, help_text="the annotator's enrolment id")
    excluded = serializers.BooleanField(help_text="true: leave out of every metric; false: count again")
    reason = serializers.CharField(max_length=1000, help_text="why (shown on the study page and in every export)",
                                   error_messages={"blank": "say why (a reason is required)",
                                                   "required": "say why (a reason is required)"})


def set_exclusion(study, data, by):
    """Exclude an annotator of ``study`` from its metrics or include them again, as ``data``
    (:class:`ExclusionChange`) says; returns the enrolment. Their answers stay saved and
    exported (marked), only uncounted. Each change is recorded with who and when in
    ``exclusion_history``; repeating the current state with the same reason changes nothing.
    Raises :class:`StudyError` naming the field for bad input."""
    from django.utils import timezone

    change = _validated(ExclusionChange, data)
    with transaction.atomic():
        e = Enrolment.objects.select_for_update().filter(study=study, pk=change["enrolment"]).first()
        if e is None:
            raise StudyError(f"enrolment: no annotator of this study has the id {change['enrolment']}")
        if e.excluded == change["excluded"] and e.exclusion_reason == change["reason"]:
            return e  # a double click
        now = timezone.now()
        e.excluded, e.exclusion_reason = change["excluded"], change["reason"]
        e.exclusion_changed_by, e.exclusion_changed_at = by, now
        e.exclusion_history = [*e.exclusion_history, {"excluded": e.excluded, "reason": e.exclusion_reason,
                                                      "by": by.get_username() if by else "", "at": now.isoformat()}]
        e.save(update_fields=["excluded", "exclusion_reason", "exclusion_changed_by", "exclusion_changed_at",
                              "exclusion_history"])
        return e


# -- recruitment: Prolific's codes per outcome and the bonus rule ---------------------------------
class RecruitmentSettings(serializers.Serializer):
    """What the builder's recruitment form sets (every field optional: an absent one keeps
    its value)."""

    completion_url = serializers.URLField(required=False, allow_blank=True, max_length=200,
                                          help_text="e.g. https://app.prolific.com/submissions/complete")
    completion_code = serializers.CharField(required=False, allow_blank=True, max_length=64)
    returned_code = serializers.CharField(required=False, allow_blank=True, max_length=64)
    screened_out_code = serializers.CharField(required=False, allow_blank=True, max_length=64)
    bonus_per_correct = serializers.DecimalField(required=False, max_digits=8, decimal_places=2, min_value=0)
    bonus_threshold = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=100)
    bonus_threshold_amount = serializers.DecimalField(required=False, max_digits=8, decimal_places=2, min_value=0)


def update_recruitment(study, data: dict):
    """Set the study's completion URL, its code per outcome and its bonus rule from ``data``
    (a form: an empty number is no value). Raises :class:`StudyError` naming the field;
    nothing is saved then."""
    numbers = ("bonus_per_correct", "bonus_threshold", "bonus_threshold_amount")
    data = {k: (None if k == "bonus_threshold" else "0") if k in numbers and str(v).strip() == "" else v
            for k, v in data.items() if k in RecruitmentSettings().fields}
    clean = _validated(RecruitmentSettings, data)
    threshold = clean.get("bonus_threshold", study.bonus_threshold)
    if clean.get("bonus_threshold_amount", study.bonus_threshold_amount) and threshold is None:
        raise StudyError("bonus threshold: set the accuracy (%) from which the amount is paid")
    for name, value in clean.items():
        setattr(study, name, value.strip() if isinstance(value, str) else value)
    study.save(update_fields=list(clean))
    return study
