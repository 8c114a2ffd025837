"""The researcher's study builder: create a study from a bundle, edit it, preview it as an
annotator of any condition, open, pause and close it. Thin views over services."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from annotations.views import owned_study

from .models import Enrolment
from .selectors import accessible_bundles, annotator_view, feature_blocks, item_asset_paths, map_assets
from .services import (
    PRESETS,
    StudyError,
    create_study,
    parse_condition,
    set_status,
    update_conditions,
    update_items,
    update_recruitment,
)


@login_required
def new_study(request):
    bundles = accessible_bundles(request.user)
    error, posted = None, request.POST
    if request.method == "POST":
        try:
            bundle = get_object_or_404(bundles, pk=int(posted.get("bundle") or 0))
            task = posted.get("task") or bundle.task
            custom = [parse_condition(line) for line in posted.get("custom", "").splitlines() if line.strip()]
            study = create_study(
                request.user, bundle, title=posted.get("title", ""), task=task,
                presets=posted.getlist("preset"), custom=custom, practice=int(posted.get("practice") or 0),
                group_size=int(posted.get("group_size")) if posted.get("group_size") else None,
                instructions=posted.get("instructions", ""), consent_text=posted.get("consent_text", ""))
            return redirect("builder:edit", pk=study.pk)
        except (StudyError, ValueError) as exc:
            error = str(exc)
    return render(request, "studies/builder_new.html", {"bundles": bundles, "presets": PRESETS, "error": error,
                                                        "posted": posted}, status=400 if error else 200)


@login_required
def edit_study(request, pk):
    study = owned_study(request, pk)
    error = None
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "items":
                rows = {}
                for item in study.items.all():
                    rows[item.pk] = {"include": request.POST.get(f"include-{item.pk}") == "on",
                                     "is_practice": request.POST.get(f"practice-{item.pk}") == "on"}
                    if f"choices-{item.pk}" in request.POST:  # change only what the form sent
                        rows[item.pk]["choices"] = request.POST[f"choices-{item.pk}"].split(",")
                update_items(study, rows)
            elif action == "conditions":
                update_conditions(study, {c.pk: {"target_size": request.POST.get(f"size-{c.pk}", c.target_size),
                                                 **{f: request.POST.get(f"{f}-{c.pk}") == "on"
                                                    for f in ("paused", "rg_highlights", "live_sog", "ask_helpful_page",
                                                              "global_feature_ids")}}
                                          for c in study.conditions.all()})
            elif action == "texts":
                study.title = request.POST.get("title", study.title).strip() or study.title
                study.instructions = request.POST.get("instructions", "")
                study.consent_text = request.POST.get("consent_text", "")
                study.save()
            elif action == "recruitment":
                update_recruitment(study, request.POST.dict())
            elif action in ("open", "paused", "closed"):
                set_status(study, action)
            else:
                raise StudyError("unknown action")
            return redirect("builder:edit", pk=study.pk)
        except StudyError as exc:
            error = str(exc)
    return render(request, "studies/builder_edit.html", {
        "study": study, "items": study.items.select_related("bundle_item"), "conditions": study.conditions.all(),
        "locked": study.enrolments.exists(), "error": error}, status=400 if error else 200)


def _researcher_asset_urls(obj, bundle_pk, paths):
    """The view with each asset name (``paths``: name → bundle path) as the researcher's URL."""
    return map_assets(obj, lambda name: reverse("studies:bundle-asset", args=[bundle_pk, paths[name]]))


@login_required
def preview(request, pk, condition_pk):
    """Exactly what an annotator of this condition would see for an item (nothing saved)."""
    study = owned_study(request, pk)
    condition = get_object_or_404(study.conditions, pk=condition_pk)
    items = list(study.items.select_related("bundle_item"))
    try:
        index = min(max(int(request.GET.get("item", 0)), 0), len(items) - 1)
    except ValueError:
        index = 0
    fake = Enrolment(study=study, condition=condition, pseudonym="preview", item_order=[i.pk for i in items])
    view = _researcher_asset_urls(annotator_view(fake, items[index]), study.bundle_id, item_asset_paths(items[index]))
    blocks = feature_blocks(view)
    from annotations.models import Response

    from .stage_figures import prediction_graph
    from .transformer_figures import transformer_figures

    return render(request, "annotate/item.html", {
        "transformer": transformer_figures(view["sections"]["T"]) if "T" in view["sections"] else None,
        "p_graph": prediction_graph(view["sections"].get("P", {}).get("features", [])),
        "e": fake, "study": study, "view": view, "feature_blocks": blocks, "preview": True,
        "preview_nav": {"condition": condition, "index": index, "count": len(items),
                        "prev": max(index - 1, 0), "next": min(index + 1, len(items) - 1),
                        "live_sog_url": reverse("studies:live-sog", args=[study.bundle_id, items[index].bundle_item.item_id])},
        "progress": {"counted_done": index, "counted_total": len(items)},
        "categories": [c for c in Response.Category.choices if c[0]], "posted": {},
    })
