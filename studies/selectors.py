"""What an annotator may see: the one place that filters a bundle item by condition.

Everything an annotator's browser receives about an item (the HTML and the asset URLs)
is built from :func:`annotator_view`. It copies only the sections the condition allows,
and in a model-simulation study it never copies the model's prediction, its probabilities
or whether it was right. Asset paths are collected from what was copied, so an asset of a
hidden stage has no URL the annotator could be given.
"""

from __future__ import annotations

from .models import Enrolment, Study, StudyItem

__all__ = ["annotator_view", "allowed_assets", "current_item", "FEATURE_STAGES", "OVERVIEW_STAGES"]

OVERVIEW_STAGES = ("U", "C")
FEATURE_STAGES = ("Rl", "Rg")
ASSET_KEYS = ("image", "overlay", "heatmap", "image_highlights")


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
    for stage in ("U", "C", "Rl", "Rg", "P"):
        if condition.allows(stage) and stage in item.bundle_item.sections:
            section = item.bundle_item.sections[stage]
            if stage == "Rg" and not condition.rg_highlights:
                section = _without_highlights(section)
            view["sections"][stage] = section
    view["pages"] = {
        "overview": True,  # the datapoint is always there
        "features": any(s in view["sections"] for s in FEATURE_STAGES),
        "prediction": "P" in view["sections"],
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
