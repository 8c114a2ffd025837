"""The researcher's study builder: create a study from a bundle, edit it, preview it as an
annotator of any condition, open, pause and close it. Thin views over services."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from .models import Enrolment
from .selectors import accessible_bundles, annotator_view, feature_blocks, item_asset_paths, map_assets
from .services import (
    CONDITION_FLAGS,
    StudyError,
    create_study,
    parse_condition,
    presets_by_task,
    set_status,
    update_conditions,
    update_details,
    update_items,
    update_quality_controls,
    update_recruitment,
)
from .stage_views import page_context
from .task_registry import task_specs
from .training import card_rows, condition_cards, first_practice_item
from .views import owned_study


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
    return render(request, "studies/builder_new.html", {"bundles": bundles, "presets": presets_by_task(),
                                                        "tasks": task_specs(), "error": error,
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
                                     "is_practice": request.POST.get(f"practice-{item.pk}") == "on",
                                     "attention_check": request.POST.get(f"attention-{item.pk}") == "on"}
                    for name in ("expected_answer", "instruction"):
                        if f"{name}-{item.pk}" in request.POST:
                            rows[item.pk][name] = request.POST[f"{name}-{item.pk}"]
                    if f"choices-{item.pk}" in request.POST:  # change only what the form sent
                        rows[item.pk]["choices"] = request.POST[f"choices-{item.pk}"].split(",")
                update_items(study, rows)
            elif action == "conditions":
                # an unticked box is not sent: every flag is set from the form, on or off
                update_conditions(study, {c.pk: {"target_size": request.POST.get(f"size-{c.pk}", c.target_size),
                                                 **{f: request.POST.get(f"{f}-{c.pk}") == "on" for f in CONDITION_FLAGS}}
                                          for c in study.conditions.all()})
            elif action == "cards":
                update_details(study, {"training_cards": _cards_from_form(study, request.POST)})
            elif action == "texts":
                update_details(study, {name: request.POST[name] for name in ("title", "instructions", "consent_text")
                                       if name in request.POST})
            elif action == "recruitment":
                update_recruitment(study, request.POST.dict())
            elif action == "quality":
                update_quality_controls(study, request.POST.dict())
            elif action in ("open", "paused", "closed"):
                set_status(study, action)
            else:
                raise StudyError("unknown action")
            return redirect("builder:edit", pk=study.pk)
        except StudyError as exc:
            error = str(exc)
    conditions = list(study.conditions.all())
    return render(request, "studies/builder_edit.html", {
        "study": study, "items": study.items.select_related("bundle_item"), "conditions": conditions,
        # a refused card editor shows what was sent, to correct it
        "cards": card_rows(study, request.POST if error and request.POST.get("action") == "cards" else None),
        "card_conditions": [c for c in conditions if c.stages],
        "locked": study.enrolments.exists(), "error": error}, status=400 if error else 200)


def _cards_from_form(study, posted) -> dict:
    """The study's own card texts with those the card editor's form sent put in (an emptied
    box included: the default again); the service keeps what differs from the defaults."""
    cards = {stage: dict(texts) for stage, texts in (study.training_cards or {}).items()}
    for row in card_rows(study):
        sent = {f["name"]: posted[f["input"]] for f in row["fields"] if f["input"] in posted}
        if sent:
            cards[row["stage"]] = {**cards.get(row["stage"], {}), **sent}
    return cards


def _researcher_asset_urls(obj, bundle_pk, paths):
    """The view with each asset name (``paths``: name → bundle path) as the researcher's URL."""
    return map_assets(obj, lambda name: reverse("studies:bundle-asset", args=[bundle_pk, paths[name]]))


def _preview_enrolment(study, condition, items) -> Enrolment:
    """An unsaved annotator of ``condition`` with every item in the study's order (practice first)."""
    return Enrolment(study=study, condition=condition, pseudonym="preview", item_order=[i.pk for i in items])


@login_required
def preview_instructions(request, pk, condition_pk):
    """The instructions an annotator of this condition reads, with its training cards and
    their worked examples on the first practice item (nothing saved)."""
    study = owned_study(request, pk)
    condition = get_object_or_404(study.conditions, pk=condition_pk)
    items = list(study.items.select_related("bundle_item"))
    fake = _preview_enrolment(study, condition, items)
    practice = first_practice_item(fake)
    example = (_researcher_asset_urls(annotator_view(fake, practice), study.bundle_id, item_asset_paths(practice))
               if practice else None)
    return render(request, "annotate/instructions.html", {
        "e": fake, "study": study, "cards": condition_cards(study, condition.stages, example), "preview": True,
        "preview_condition": condition})


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
    fake = _preview_enrolment(study, condition, items)
    view = _researcher_asset_urls(annotator_view(fake, items[index]), study.bundle_id, item_asset_paths(items[index]))
    return render(request, "annotate/item.html", {
        **page_context(view),  # the stages' partials per page (studies.stage_views)
        "e": fake, "study": study, "view": view, "feature_blocks": feature_blocks(view), "preview": True,
        "preview_nav": {"condition": condition, "index": index, "count": len(items),
                        "prev": max(index - 1, 0), "next": min(index + 1, len(items) - 1),
                        "live_sog_url": reverse("studies:live-sog", args=[study.bundle_id, items[index].bundle_item.item_id])},
        "progress": {"counted_done": index, "counted_total": len(items)},
        "posted": {},
    })
