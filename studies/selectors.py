"""What an annotator may see: the one place that filters a bundle item by condition.

Everything an annotator's browser receives about an item (the HTML and the asset URLs)
is built from :func:`annotator_view`. It copies only the sections the condition allows,
and in a model-simulation study it never copies the model's prediction, its probabilities
or whether it was right. Asset paths are collected from what was copied, so an asset of a
hidden stage has no URL the annotator could be given.
"""

from __future__ import annotations

from .models import Bundle, Enrolment, Study, StudyItem

__all__ = ["annotator_view", "allowed_assets", "current_item", "enrolment_by_token", "accessible_studies",
           "accessible_bundles", "monitor", "FEATURE_STAGES", "OVERVIEW_STAGES"]

OVERVIEW_STAGES = ("U", "C")
FEATURE_STAGES = ("Rl", "Rg")
ASSET_KEYS = ("image", "overlay", "heatmap", "image_highlights")


def enrolment_by_token(token: str) -> Enrolment | None:
    """The enrolment with this token, its study and condition loaded; None for no such token,
    and for one with a NUL character, which no token has and PostgreSQL cannot compare."""
    if "\x00" in token:
        return None
    return Enrolment.objects.select_related("study", "condition").filter(token=token).first()


def current_item(enrolment: Enrolment) -> StudyItem | None:
    if enrolment.position >= len(enrolment.item_order):
        return None
    return enrolment.study.items.select_related("bundle_item").get(pk=enrolment.item_order[enrolment.position])


def _without_highlights(rg: dict) -> dict:
    """Rg datapoints as plain images and words (the "without highlights" variant)."""
    out = {**rg, "features": []}
    for f in rg.get("features", []):
        g = {"feature": f["feature"]}
        for side in ("max", "min"):
            g[side] = [{k: v for k, v in d.items() if k not in ("image_highlights", "text_highlights")}
                       for d in f.get(side, [])]
        out["features"].append(g)
    return out


def annotator_view(enrolment: Enrolment, item: StudyItem) -> dict:
    """The item as this annotator's condition shows it (a plain dict, safe to render)."""
    study, condition = enrolment.study, enrolment.condition
    record = item.bundle_item.record
    datapoint = record.get("datapoint", {})
    view = {
        "item": item.pk,
        "practice": item.is_practice,
        "datapoint": {"image": datapoint.get("image"), "question": datapoint.get("question", ""),
                      "tokens": datapoint.get("tokens", [])},
        "sections": {},
    }
    if study.task == Study.Task.SIMULATION:
        view["choices"] = list(item.choices)
    if study.task == Study.Task.ERROR:  # the annotator categorizes a known mistake
        view["label"] = record.get("label")
        view["prediction"] = record.get("prediction")
    if study.task == Study.Task.CONCEPT:
        view["feature"] = item.bundle_item.feature
    for stage in ("U", "C", "Rl", "Rg", "P", "T"):
        if condition.allows(stage) and stage in item.bundle_item.sections:
            section = item.bundle_item.sections[stage]
            if stage == "Rg" and not condition.rg_highlights:
                section = _without_highlights(section)
            view["sections"][stage] = section
    view["pages"] = {
        "overview": True,  # the datapoint is always there
        "features": any(s in view["sections"] for s in FEATURE_STAGES),
        "prediction": "P" in view["sections"],
        "transformer": "T" in view["sections"],
    }
    view["live_sog"] = bool(condition.live_sog and "tokens" in datapoint)
    view["ask_helpful_page"] = bool(condition.ask_helpful_page and not item.is_practice)
    return view


def _assets(obj) -> set[str]:
    found = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ASSET_KEYS and isinstance(v, str) and v.endswith(".png"):
                found.add(v)
            else:
                found |= _assets(v)
    elif isinstance(obj, list):
        for v in obj:
            found |= _assets(v)
    return found


def allowed_assets(enrolment: Enrolment, item: StudyItem) -> set[str]:
    """Bundle-relative asset paths the annotator may load for ``item``."""
    return _assets(annotator_view(enrolment, item))


def accessible_studies(user):
    """The studies a researcher may see: their own and those shared with them (all, for a
    superuser; none, for anyone not logged in)."""
    from django.db.models import Q

    qs = Study.objects.select_related("bundle", "owner")
    if not user or not user.is_authenticated:
        return qs.none()
    if user.is_superuser:
        return qs
    return qs.filter(Q(owner=user) | Q(shared_with=user)).distinct()


def accessible_bundles(user):
    """The bundles a researcher may see and build studies on: their own, those shared with
    them, and those of the studies they may see (whose items they see through the study
    anyway); all, for a superuser; none, for anyone not logged in. A bundle with no owner
    is thus a superuser's until someone is given it or a study over it."""
    from django.db.models import Q

    if not user or not user.is_authenticated:
        return Bundle.objects.none()
    if user.is_superuser:
        return Bundle.objects.all()
    mine = Q(owner=user) | Q(shared_with=user) | Q(studies__owner=user) | Q(studies__shared_with=user)
    # by id: the joins repeat a bundle once per study (and per collaborator) it reaches the user by
    return Bundle.objects.filter(pk__in=Bundle.objects.filter(mine).values("pk"))


def monitor(study: Study, now=None) -> dict:
    """Live figures of a running study: per condition enrolled / active / completed /
    dropped out (no activity for the active window and not finished), and per annotator
    their step, progress on counted items, minutes since last seen and median time per item."""
    from datetime import timedelta
    from statistics import median

    from django.utils import timezone

    from .services import ACTIVE_WINDOW_SECONDS

    now = now or timezone.now()
    window = timedelta(seconds=ACTIVE_WINDOW_SECONDS)
    practice = set(study.items.filter(is_practice=True).values_list("pk", flat=True))
    conditions, annotators = [], []
    for c in study.conditions.all():
        row = {"condition": c.name, "target": c.target_size, "paused": c.paused,
               "enrolled": 0, "active": 0, "completed": 0, "dropped": 0}
        for e in c.enrolments.prefetch_related("responses"):
            row["enrolled"] += 1
            if e.completed_at:
                state = "completed"
            elif now - e.last_seen_at <= window:
                state = "active"
            else:
                state = "dropped"
            row[state] += 1
            counted = [pk for pk in e.item_order if pk not in practice]
            done = sum(1 for r in e.responses.all() if not r.is_practice)
            times = [r.seconds_on_item for r in e.responses.all() if not r.is_practice and r.seconds_on_item]
            annotators.append({"annotator": e.pseudonym, "condition": c.name, "state": state, "step": e.step,
                               "done": done, "of": len(counted),
                               "minutes_since_seen": round((now - e.last_seen_at).total_seconds() / 60, 1),
                               "median_seconds_per_item": round(median(times), 1) if times else None})
        conditions.append(row)
    return {"conditions": conditions, "annotators": annotators, "at": now.isoformat()}
