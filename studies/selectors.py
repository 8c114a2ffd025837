"""What an annotator may see: the one place that filters a bundle item by condition.

Everything an annotator's browser receives about an item (the HTML and the asset URLs)
is built from :func:`annotator_view`. It copies only the sections the condition allows,
and in a model-simulation study it never copies the model's prediction, its probabilities
or whether it was right. Asset paths are collected from what was copied, so an asset of a
hidden stage has no URL the annotator could be given.
"""

from __future__ import annotations

from rest_framework.fields import empty

from viz_engine.bundles.format import ASSET_KEYS, asset_suffix
from viz_engine.bundles.report_figures import SLICES, points

from .models import Bundle, DebuggingReport, Enrolment, Study, StudyItem
from .schemas import DebuggingParams
from .stage_views import PAGES, AnnotatorContext, filter_sections, pages_of, platform_stage_names, section_feature_ids
from .task_registry import task_spec
from .viewers import clean_modalities

__all__ = ["annotator_view", "allowed_assets", "asset_name", "choices_shown", "feature_blocks", "item_asset_paths",
           "map_assets", "current_item", "enrolment_by_token", "accessible_studies", "accessible_bundles",
           "feature_name", "modalities_and_views", "helpful_page_choices"]

# the stages drawn as views on the datapoint (the Overview), and per feature (the Features page)
OVERVIEW_STAGES = ("U", "C")
FEATURE_STAGES = ("Rl", "Rg")


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


def choices_shown(enrolment: Enrolment, item: StudyItem) -> list[str]:
    """The item's answer choices in this annotator's order: a shuffle seeded by the
    enrolment (its token) and the item, so no place holds the prediction more often for
    everyone. ``StudyItem.choices`` stays the stored, canonical list."""
    import random

    order = list(item.choices)
    random.Random(f"{enrolment.token}:choices:{item.pk}").shuffle(order)
    return order


def asset_name(item_pk: int, path: str) -> str:
    """The opaque name an asset has on one study item's pages: nothing of the bundle's path
    (feature ids, dataset indices, shared files) reaches the annotator, and the same image
    has another name on another item."""
    from django.utils.crypto import salted_hmac

    digest = salted_hmac("studies.asset-name", f"{item_pk}/{path}", algorithm="sha256").hexdigest()[:24]
    return digest + (asset_suffix(path) or ".png")  # the real type (a video must play), nothing else of the path


def _feature_labels(item: StudyItem, ids, global_ids: bool) -> dict[int, str]:
    """Per-item names of the features an item shows: letters A, B, C … given in a random
    order seeded by the item, so a letter names no global feature and no rank (or the
    global ``z<j>`` when the condition asks for the revealing variant)."""
    import random
    from string import ascii_uppercase

    ids = list(dict.fromkeys(ids))
    if global_ids:
        return {j: f"z{j}" for j in ids}
    shuffled = sorted(ids)
    random.Random(f"features:{item.bundle_item_id}").shuffle(shuffled)
    letters = [ascii_uppercase[k % 26] * (k // 26 + 1) for k in range(len(shuffled))]
    return dict(zip(shuffled, letters))


def feature_name(enrolment: Enrolment, item: StudyItem, names: dict[int, str], j: int | None) -> str | None:
    """The per-item name of feature ``j`` (``names``: those of the view's sections), or None."""
    if j is None:
        return None
    return names.get(j) or _feature_labels(item, [j], enrolment.condition.global_feature_ids)[j]



# -- modalities and views: every item in the shared contract's form (docs/bundles.md) ---------
def _old_modalities(datapoint: dict, sections: dict) -> list[dict]:
    """An old record's image + question as modalities: ``image`` and ``question``."""
    out = []
    if isinstance(datapoint.get("image"), str):
        out.append({"name": "image", "kind": "image", "asset": datapoint["image"]})
    tokens = list(datapoint.get("tokens") or [])
    if not tokens and datapoint.get("question"):
        tokens = str(datapoint["question"]).split()
    if not tokens:  # a record without its words: those its U highlights name
        tokens = [h.get("token", "") for h in sections.get("U", {}).get("text", {}).get("highlights", [])]
    if tokens:
        out.append({"name": "question", "kind": "text", "tokens": tokens})
    return out


def _highlight_view(highlights: list, title: str, method=None) -> dict:
    """Old word highlights (token, score, weight in [-1, 1]) as a text view drawn as they are."""
    return {"modality": "question", "title": title, "method": method,
            "scores": [h.get("weight", 0) for h in highlights], "normalised": True}


def _old_views(stage: str, section: dict) -> list[dict]:
    """An old U or C section, or one feature of an old Rℓ, as views."""
    views = []
    if stage == "U":
        image, text = section.get("image") or {}, section.get("text") or {}
        if image:
            view = {"modality": "image", "title": "U · parts of the image that matter", "method": image.get("method"),
                    "alt": "image importance", "signed": True}
            grid, scores = image.get("grid"), image.get("scores")
            if grid and scores and len(grid) == 2 and grid[0] * grid[1] == len(scores):
                view["scores"] = {"grid": [scores[r * grid[1]:(r + 1) * grid[1]] for r in range(grid[0])]}
            if isinstance(image.get("overlay"), str):
                view["asset"] = image["overlay"]
            if "scores" in view or "asset" in view:
                views.append(view)
        if text.get("highlights"):
            views.append(_highlight_view(text["highlights"], "U · words that matter", text.get("method")))
    elif stage == "C":
        phrase = section.get("phrase") or {}
        if isinstance(phrase.get("heatmap"), str):
            views.append({"modality": "image", "title": f"C · where “{phrase.get('text', '')}” interacts with the image",
                          "method": section.get("method"), "asset": phrase["heatmap"], "alt": "interaction heatmap",
                          "query": list(phrase.get("positions") or []), "query_modality": "question", "signed": False})
    elif stage == "Rl":
        if isinstance(section.get("image"), str):
            views.append({"modality": "image", "title": "Rℓ · what drives the feature in this example",
                          "asset": section["image"], "alt": "what drives the feature here", "signed": False})
        if section.get("text"):
            views.append(_highlight_view(section["text"], "Rℓ · words that drive the feature"))
    return views


def _old_datapoint(d: dict) -> dict:
    """One old Rg datapoint (question, plain image, highlights) as modalities and views."""
    tokens = [h.get("token", "") for h in d.get("text_highlights") or []] or str(d.get("question", "")).split()
    modalities = ([{"name": "image", "kind": "image", "asset": d["image"]}] if isinstance(d.get("image"), str) else [])
    modalities += [{"name": "question", "kind": "text", "tokens": tokens}] if tokens else []
    views = []
    if isinstance(d.get("image_highlights"), str):
        views.append({"modality": "image", "title": "what drives the feature here", "asset": d["image_highlights"],
                      "alt": "", "signed": False})
    if d.get("text_highlights"):
        views.append(_highlight_view(d["text_highlights"], "words that drive the feature"))
    return {"modalities": modalities, "views": views}


def modalities_and_views(record: dict, sections: dict) -> tuple[list[dict], dict]:
    """An item's datapoint and sections in the shared contract's form: ``modalities`` and,
    per stage, ``views`` (U, C: a list; Rl: features with views; Rg: features whose max/min
    datapoints have modalities and views). A bundle that has them is read as it is; an old
    one (an image + question record, U/C/Rl/Rg as the engine writes them) is converted here,
    so every bundle is drawn by the same viewers. P and T are left as they are."""
    modalities = (clean_modalities(record["modalities"]) if isinstance(record.get("modalities"), list)
                  else _old_modalities(record.get("datapoint") or {}, sections))
    views = {}
    for stage in OVERVIEW_STAGES:
        if stage in sections:
            section = sections[stage]
            views[stage] = list(section["views"]) if isinstance(section.get("views"), list) else _old_views(stage, section)
    if "Rl" in sections:
        views["Rl"] = [{"feature": f["feature"],
                        "views": list(f["views"]) if isinstance(f.get("views"), list) else _old_views("Rl", f)}
                       for f in sections["Rl"].get("features", [])]
    if "Rg" in sections:
        views["Rg"] = [{"feature": f["feature"], **{
            side: [{"modalities": clean_modalities(d["modalities"]), "views": list(d.get("views") or [])}
                   if isinstance(d.get("modalities"), list) else _old_datapoint(d) for d in f.get(side, [])]
            for side in ("max", "min")}} for f in sections["Rg"].get("features", [])]
    return modalities, views


def _named_views(views: dict, names: dict, condition) -> dict:
    """The views of the allowed stages with features by their per-item names (in the names'
    order) and, unless the condition highlights them, Rg's datapoints without their views."""
    out = {s: views[s] for s in OVERVIEW_STAGES if s in views}
    order = lambda rows: sorted(rows, key=lambda r: (len(r["feature"]), r["feature"]))  # noqa: E731
    if "Rl" in views:
        out["Rl"] = order([{**f, "feature": names[f["feature"]]} for f in views["Rl"]])
    if "Rg" in views:
        lit = condition.rg_highlights
        out["Rg"] = order([{"feature": names[f["feature"]],
                            **{side: [{"modalities": d["modalities"], "views": d["views"] if lit else []}
                                      for d in f[side]] for side in ("max", "min")}} for f in views["Rg"]])
    return out


def _shown_stages(condition, item: StudyItem) -> list[str]:
    """The stages the condition shows that the item has, in canonical order."""
    sections = item.bundle_item.sections
    return [s for s in platform_stage_names() if condition.allows(s) and s in sections]


def helpful_page_choices(condition, item: StudyItem) -> list[str]:
    """The pages the question "which page helped you more?" offers on ``item``: exactly the
    pages the item has in this condition (the overview, then those of its stages, in tab
    order). None, so the question is not asked, on a practice item, where the condition does
    not ask it, or where the item has one page only. The item page and the answer's
    validation both ask this."""
    if not condition.ask_helpful_page or item.is_practice:
        return []
    pages = [p for p, there in pages_of(dict.fromkeys(_shown_stages(condition, item))).items() if there]
    return pages if len(pages) > 1 else []


def _view(enrolment: Enrolment, item: StudyItem) -> dict:
    """The annotator's view with bundle-relative asset paths (see :func:`annotator_view`)."""
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
    allowed = {s: item.bundle_item.sections[s] for s in _shown_stages(condition, item)}
    names = _feature_labels(item, section_feature_ids(allowed), condition.global_feature_ids)
    view["sections"] = filter_sections(allowed, AnnotatorContext(condition, names))
    modalities, views = modalities_and_views(record, allowed)
    view["modalities"] = modalities
    view["views"] = _named_views(views, names, condition)
    view.update(task_spec(study.task).annotator_fields(enrolment, item, names))
    view["pages"] = pages_of(view["sections"])
    view["instruction"] = item.instruction
    view["live_sog"] = bool(condition.live_sog and "tokens" in datapoint)
    view["helpful_pages"] = [{"name": p, "title": PAGES[p]} for p in helpful_page_choices(condition, item)]
    view["ask_helpful_page"] = bool(view["helpful_pages"])
    return view


def map_assets(obj, fn):
    """``obj`` (a view or a section) with every asset reference ``v`` replaced by ``fn(v)``."""
    if isinstance(obj, dict):
        return {k: (fn(v) if k in ASSET_KEYS and isinstance(v, str) and asset_suffix(v) else map_assets(v, fn))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [map_assets(v, fn) for v in obj]
    return obj


def annotator_view(enrolment: Enrolment, item: StudyItem) -> dict:
    """The item as this annotator's condition shows it (a plain dict, safe to render and to
    send as JSON): only the allowed sections, never the prediction in a simulation task,
    features by per-item names, the choices in this annotator's order, and every asset by
    its opaque per-item name (:func:`asset_name`)."""
    return map_assets(_view(enrolment, item), lambda path: asset_name(item.pk, path))


def feature_blocks(view: dict) -> list[dict]:
    """The Features page of a view: one block per feature name, its Rℓ and Rg parts (as views)."""
    local = {f["feature"]: f for f in view["views"].get("Rl", [])}
    glob = {f["feature"]: f for f in view["views"].get("Rg", [])}
    names = sorted({*local, *glob}, key=lambda n: (len(n), n))
    return [{"feature": n, "local": local.get(n), "global": glob.get(n),
             "lit": any(isinstance(v, dict) for side in ("max", "min")
                        for d in (glob.get(n) or {}).get(side, []) for v in d["views"])}
            for n in names]


def _assets(obj) -> set[str]:
    found = set()
    map_assets(obj, found.add)
    return found


def allowed_assets(enrolment: Enrolment, item: StudyItem) -> set[str]:
    """The asset names the annotator may load for ``item``."""
    return _assets(annotator_view(enrolment, item))


def item_asset_paths(item: StudyItem) -> dict[str, str]:
    """Every asset name of a study item (any condition's) → its bundle-relative path."""
    bi = item.bundle_item
    return {asset_name(item.pk, p): p for p in _assets([bi.record, bi.sections])}


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


# -- model debugging reports ------------------------------------------------------------------
__all__ += ["debugging_state", "debugging_page", "report_is_stale", "REPORT_STALE_AFTER_SECONDS"]

# A queued or running report that has shown no progress for this long was interrupted (its
# worker or web process stopped): the page says so and a new run may start.
REPORT_STALE_AFTER_SECONDS = 5 * 60


def report_is_stale(report, now=None) -> bool:
    from django.utils import timezone

    return (report.status in (DebuggingReport.Status.QUEUED, DebuggingReport.Status.RUNNING)
            and ((now or timezone.now()) - report.updated_at).total_seconds() > REPORT_STALE_AFTER_SECONDS)


def debugging_state(report) -> dict:
    """The state of one run of a debugging report, as the page polls it: ``status`` (none,
    queued, running, done, failed, or interrupted when it stopped showing progress),
    ``progress`` in whole per cent, what it is doing and why it failed."""
    if report is None:
        return {"status": "none", "progress": 0}
    return {"id": report.pk, "status": "interrupted" if report_is_stale(report) else report.status,
            "progress": int(100 * report.progress), "stage": report.stage, "error": report.error,
            "updated_at": report.updated_at.isoformat()}


def _by_count(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _fine_tuning_tables(result: dict) -> list[dict]:
    """Per slice of the held-out split: each selection's accuracy change in points with its
    interval, and each paired difference with the first selection (targeted)."""
    ft = result["fine_tuning"]
    order = [ft["first"], *ft["differences"]]  # targeted first (a JSON file's keys come sorted)
    tables = []
    for name in [s for s in SLICES if s in ft["base"]]:
        rows = [{"selection": s, "mean": points(r["summary"][name]["mean"]), "low": points(r["summary"][name]["low"]),
                 "high": points(r["summary"][name]["high"]), "learning_rate": r["learning_rate"],
                 "helped": r["summary"][name]["low"] > 0, "hurt": r["summary"][name]["high"] < 0}
                for s, r in sorted(ft["runs"].items(), key=lambda kv: order.index(kv[0]))]
        described = result["slices"].get(name, {})
        tables.append({"key": name, "name": SLICES[name], "size": ft["sizes"][name],
                       "accuracy": f"{100 * ft['base'][name]:.1f}", "rows": rows,
                       "kinds": _by_count(described.get("kinds", {})),
                       "error_kinds": _by_count(described.get("error_kinds", {})),
                       "lines": result["verdict"]["slices"].get(name, [])})
    return tables


def debugging_page(bundle) -> dict:
    """What the debugging page shows: the latest run's state and the latest finished report
    (kept on show while a new run computes), with its tables in points; the form holds the
    latest run's parameters (the defaults before any)."""
    runs = bundle.debugging_reports.all()
    latest = runs.first()
    finished = runs.filter(status=DebuggingReport.Status.DONE).first()
    report = finished.result if finished else None
    form = {name: field.default for name, field in DebuggingParams().fields.items() if field.default is not empty}
    return {"run": latest, "state": debugging_state(latest), "finished": finished, "report": report,
            "tables": _fine_tuning_tables(report) if report else [], "form": {**form, **(latest.params if latest else {})},
            "stale_minutes": REPORT_STALE_AFTER_SECONDS // 60}


# -- recruitment: where an annotator goes at the end ------------------------------------------
__all__ += ["OUTCOMES", "outcome_code", "outcome_url"]

# each outcome and the study field holding Prolific's code for it
OUTCOMES = {"completed": "completion_code", "returned": "returned_code", "screened_out": "screened_out_code"}


def outcome_code(study: Study, outcome: str) -> str:
    """The code the study gives for ``outcome`` (completed, returned, screened_out)."""
    return getattr(study, OUTCOMES[outcome])


def outcome_url(study: Study, outcome: str) -> str:
    """Where to send an annotator with ``outcome``: the study's completion URL with the
    outcome's code as its ``cc`` parameter (Prolific's form, e.g.
    ``https://app.prolific.com/submissions/complete?cc=C1234``), any other parameter kept;
    the URL as it is when the outcome has no code; "" without a completion URL."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    if not study.completion_url:
        return ""
    code = outcome_code(study, outcome)
    if not code:
        return study.completion_url
    parts = urlsplit(study.completion_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "cc"] + [("cc", code)]
    return urlunsplit(parts._replace(query=urlencode(query)))
