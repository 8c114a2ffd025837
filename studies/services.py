"""Business rules that write: importing bundles, caching live second-order gradients."""

from pathlib import Path

from django.db import IntegrityError, transaction

from viz_engine.bundles.format import BundleError, read_json, sha256_file

from .models import Bundle, BundleItem, LiveSOGResult


def import_bundle(path, name: str | None = None) -> Bundle:
    """Validate the bundle at ``path`` and record it with its items, all or nothing.

    Raises :class:`BundleError` (nothing written) for a partial, malformed or tampered
    bundle, or one already imported.
    """
    from viz_engine.bundles.precompute import validate_bundle  # torch: only where bundles are imported

    root = Path(path).resolve()
    manifest = validate_bundle(root)
    digest = sha256_file(root / "manifest.json")
    name = name or root.name
    if Bundle.objects.filter(manifest_sha256=digest).exists():
        raise BundleError(f"this bundle is already imported as {Bundle.objects.get(manifest_sha256=digest).name!r}")
    if Bundle.objects.filter(name=name).exists():
        raise BundleError(f"a bundle named {name!r} already exists; import under another name")
    stages = manifest["request"]["stages"]
    items = []
    for position, entry in enumerate(manifest["items"]):
        folder = root / "items" / entry["id"]
        record = read_json(folder / "item.json")
        if record.get("id") != entry["id"]:
            raise BundleError(f"items/{entry['id']}/item.json names item {record.get('id')!r}")
        items.append(BundleItem(
            item_id=entry["id"], position=position, label=str(record["label"]),
            prediction=str(record["prediction"]), correct=bool(record["correct"]), feature=entry.get("feature"),
            record=record, sections={s: read_json(folder / f"{s}.json") for s in stages},
        ))
    try:
        with transaction.atomic():
            bundle = Bundle.objects.create(
                name=name, path=str(root), manifest_sha256=digest, dataset=manifest["dataset"]["name"],
                model=manifest["model"]["name"], task=manifest["task"], stages=stages,
                class_names=manifest["class_names"], manifest=manifest,
            )
            for item in items:
                item.bundle = bundle
            BundleItem.objects.bulk_create(items)
    except IntegrityError as exc:
        raise BundleError(f"the bundle could not be recorded: {exc}") from None
    return bundle


def live_second_order_gradient(item: BundleItem, positions, timeout: float = 30.0) -> LiveSOGResult:
    """The SOG of the words at ``positions`` of ``item``'s question over its image, computed
    by a worker that keeps the model loaded (in-process without a broker), cached per words."""
    from .tasks import live_sog

    tokens = item.record["datapoint"].get("tokens", [])
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
        return cached
    bundle = item.bundle
    result = live_sog.delay(bundle.dataset, bundle.model, item.record["split"], item.record["index"], wanted)
    data = result.get(timeout=timeout)
    heat = bytes.fromhex(data.pop("heatmap_png"))
    obj, _ = LiveSOGResult.objects.get_or_create(item=item, positions=key,
                                                 defaults={"result": data, "heatmap_png": heat})
    return obj


# -- enrolment ----------------------------------------------------------------------------------
class StudyError(ValueError):
    """A request the study cannot take (closed, full, bad answer …); the message says why."""


# An enrolment counts towards its condition's size while completed or seen this recently.
ACTIVE_WINDOW_SECONDS = 30 * 60


def condition_fill(condition, now=None) -> int:
    """Completed enrolments plus those active within ``ACTIVE_WINDOW_SECONDS``."""
    from datetime import timedelta

    from django.db.models import Q
    from django.utils import timezone

    now = now or timezone.now()
    recent = now - timedelta(seconds=ACTIVE_WINDOW_SECONDS)
    return condition.enrolments.filter(Q(completed_at__isnull=False) | Q(last_seen_at__gte=recent)).count()


def conditions_with_fill(study, now=None):
    """The study's conditions, each with ``fill`` (as :func:`condition_fill`) in one query:
    a burst of joins waits on each other's lock, so each join must be short."""
    from datetime import timedelta

    from django.db.models import Count, Q
    from django.utils import timezone

    recent = (now or timezone.now()) - timedelta(seconds=ACTIVE_WINDOW_SECONDS)
    counted = Q(enrolments__completed_at__isnull=False) | Q(enrolments__last_seen_at__gte=recent)
    return study.conditions.annotate(fill=Count("enrolments", filter=counted))


def _item_order(study, token: str) -> list[int]:
    import random

    items = study.items.order_by("order", "pk").values_list("pk", "is_practice")
    practice, counted = [], []
    for pk, is_practice in items:
        (practice if is_practice else counted).append(pk)
    if study.item_order == study.Order.SHUFFLED:
        random.Random(token).shuffle(counted)
    return practice + counted


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
    """The annotator's enrolment: their existing one (same pseudonym) or a new one in the
    least-filled open condition. The condition is permanent."""
    import secrets

    from .models import Enrolment, Study

    pseudonym = (pseudonym or "").strip()[:100]
    enrolment = Enrolment(pseudonym=pseudonym or f"anon-{secrets.token_hex(6)}",
                          prolific_study_id=prolific_study_id[:100], prolific_session_id=prolific_session_id[:100])
    # before the lock: a burst of joins waits on it, so it covers only choosing the condition
    enrolment.item_order = _item_order(study, enrolment.token)
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)  # one join at a time per study
        if pseudonym:
            existing = study.enrolments.filter(pseudonym=pseudonym).first()
            if existing:
                return existing
        if study.status != Study.Status.OPEN:
            raise StudyError("this study is not open for new participants")
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
    from .models import Enrolment

    with transaction.atomic():
        e = Enrolment.objects.select_for_update().get(pk=enrolment.pk)
        if e.step == from_step:
            e.step = to_step
            e.save(update_fields=["step"])
        return e


def finish(enrolment, closing_answers: dict):
    """Record the closing questions and complete the enrolment (once)."""
    from django.utils import timezone

    from .models import Enrolment

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
# The paper's conditions (section 3, appendix D) as presets: (name, stages, options).
PRESETS = {
    "simulation": [
        ("U", ["U"], {}), ("U+C", ["U", "C"], {}), ("U+C+Rℓ", ["U", "C", "Rl"], {}),
        ("U+C+Rℓ+Rg", ["U", "C", "Rl", "Rg"], {}), ("MultiViz (U+C+Rℓ+Rg+P)", ALL_STAGES, {}),
        ("Rℓ+P", ["Rl", "P"], {}), ("Rg+P", ["Rg", "P"], {}),
    ],
    "concept": [
        ("Rℓ", ["Rl"], {}), ("Rℓ+Rg without highlights", ["Rl", "Rg"], {"rg_highlights": False}),
        ("Rℓ+Rg with highlights", ["Rl", "Rg"], {"rg_highlights": True}),
    ],
    "error": [("No-Viz", [], {}), ("MultiViz", ALL_STAGES, {"live_sog": True})],
}
DEFAULT_GROUP_SIZE = {"simulation": 3, "concept": 5, "error": 5}  # the paper's group sizes


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
    aliases = {"rℓ": "Rl", "rl": "Rl", "rg": "Rg", "u": "U", "c": "C", "p": "P", "t": "T"}
    parsed = []
    for token in stages.replace("+", " ").replace(",", " ").split():
        stage = aliases.get(token.lower())
        if stage is None:
            raise StudyError(f"{token!r} in {line!r} is not a stage (U, C, Rl, Rg, P, T)")
        if stage not in parsed:
            parsed.append(stage)
    return name, [s for s in [*ALL_STAGES, "T"] if s in parsed], {}


def create_study(owner, bundle, *, title: str, task: str | None = None, presets: list[str] | None = None,
                 custom: list[tuple[str, list[str], dict]] | None = None, practice: int = 1,
                 group_size: int | None = None, instructions: str = "", consent_text: str = "",
                 open_now: bool = False):
    """A study over every item of ``bundle`` with the paper's conditions for its task (all of
    them, or those named in ``presets``) and any ``custom`` conditions (name, stages,
    options); the first ``practice`` items are practice."""
    from .models import Condition, Study, StudyItem

    task = task or bundle.task
    if task not in PRESETS:
        raise StudyError(f"task {task!r} is unknown; tasks: {', '.join(PRESETS)}")
    if not title.strip():
        raise StudyError("the study needs a title")
    chosen = [p for p in PRESETS[task] if presets is None or p[0] in presets]
    if presets is not None and len(chosen) != len(presets):
        known = [p[0] for p in PRESETS[task]]
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
    size = DEFAULT_GROUP_SIZE[task] if group_size is None else group_size
    with transaction.atomic():
        study = Study.objects.create(owner=owner, bundle=bundle, title=title, task=task, instructions=instructions,
                                     consent_text=consent_text,
                                     status=Study.Status.OPEN if open_now else Study.Status.DRAFT)
        for name, stages, options in chosen:
            both_pages = bool({"U", "C"} & set(stages)) and bool({"Rl", "Rg"} & set(stages))
            Condition.objects.create(study=study, name=name, stages=stages, target_size=size,
                                     ask_helpful_page=task == "simulation" and both_pages, **options)
        for k, bi in enumerate(bundle.items.order_by("position")):
            StudyItem.objects.create(study=study, bundle_item=bi, order=k, is_practice=k < practice,
                                     choices=simulation_choices(bi, bundle=bundle) if task == "simulation" else [])
    return study


def update_items(study, rows: dict[int, dict]) -> None:
    """``{study item id: {"choices": [...], "is_practice": bool, "include": bool}}``. Only
    before anyone enrols: answers must never refer to items that changed under them."""
    from .models import StudyItem

    if study.enrolments.exists():
        raise StudyError("annotators have started this study; its items can no longer change")
    classes = set(study.bundle.class_names)
    items = {i.pk: i for i in study.items.all()}
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
                choices = [c.strip() for c in row["choices"] if c.strip()]
                bad = [c for c in choices if c not in classes]
                if study.task == "simulation" and (len(choices) < 2 or bad or len(set(choices)) != len(choices)):
                    raise StudyError(f"item {item.bundle_item.item_id}: choices must be two or more distinct "
                                     f"classes of the model" + (f" ({', '.join(bad)} are not)" if bad else ""))
                item.choices = choices
            item.is_practice = bool(row.get("is_practice", item.is_practice))
            item.save()
        if not StudyItem.objects.filter(study=study, is_practice=False).exists():
            raise StudyError("keep at least one counted (non-practice) item")


def update_conditions(study, rows: dict[int, dict]) -> None:
    """Target sizes, pausing and the variants of each condition."""
    conditions = {c.pk: c for c in study.conditions.all()}
    with transaction.atomic():
        for pk, row in rows.items():
            if pk not in conditions:
                raise StudyError(f"condition {pk} is not in this study")
            c = conditions[pk]
            try:
                c.target_size = int(row.get("target_size", c.target_size))
            except (TypeError, ValueError):
                raise StudyError(f"{c.name}: the target size must be a whole number") from None
            if c.target_size < 0:
                raise StudyError(f"{c.name}: the target size cannot be negative")
            for flag in ("paused", "rg_highlights", "live_sog", "ask_helpful_page", "global_feature_ids"):
                setattr(c, flag, bool(row.get(flag, False)))
            c.save()


def set_status(study, status: str):
    from .models import Study

    if status not in Study.Status.values:
        raise StudyError(f"status must be one of {', '.join(Study.Status.values)}")
    if status == Study.Status.OPEN and not study.conditions.filter(paused=False).exists():
        raise StudyError("open at least one condition before opening the study")
    study.status = status
    study.save(update_fields=["status"])
    return study
