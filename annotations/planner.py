"""The builder's sample-size planner: how many annotators per condition give 80 % power to
the accuracy test of :func:`annotations.analysis.accuracy_model`, by simulating studies with
that model (:func:`annotations.analysis.plan_annotators`). It answers within
``PLANNER_SECONDS``: the simulations stop there, and the page says how many ran."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from studies.selectors import accessible_studies

from .analysis import plan_annotators

__all__ = ["PLANNER_SECONDS", "PLANNER_SIMULATIONS", "parse_plan", "plan_view"]

PLANNER_SECONDS = 4.0  # all group sizes together
PLANNER_SIMULATIONS = 200  # per group size, at most
PLANNER_MAX_ITEMS = 500
PLANNER_MAX_CONDITIONS = 12


class PlanError(ValueError):
    """What the planner's form got wrong, in words for the page."""


def _share(text: str, name: str) -> float:
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise PlanError(f"{name}: '{text.strip()}' is not a number") from None
    return value / 100 if value > 1 or text.strip().endswith("%") else value


def parse_plan(params) -> dict:
    """The planner's form (a QueryDict or dict of strings) → the arguments of
    :func:`plan_annotators`. Accuracies and the spread may be written as shares (0.6) or in
    percent (60, 60 %)."""
    raw = [t for t in params.get("accuracies", "").replace(";", ",").split(",") if t.strip()]
    if not 2 <= len(raw) <= PLANNER_MAX_CONDITIONS:
        raise PlanError(f"accuracies: give one per condition, 2 to {PLANNER_MAX_CONDITIONS} of them, e.g. 60, 60, 80")
    accuracies = [_share(t, "accuracies") for t in raw]
    if any(not 0 < a < 1 for a in accuracies):
        raise PlanError("accuracies: each must lie strictly between 0 and 100 %")
    spread = _share(params.get("spread", "") or "10", "spread")
    if not 0 <= spread < 0.5:
        raise PlanError("spread: the SD of annotators' accuracies within a condition, between 0 and 50 points")
    try:
        items = int(params.get("items", "") or 20)
        power = _share(params.get("power", "") or "80", "power")
    except ValueError:
        raise PlanError("items: a whole number") from None
    if not 2 <= items <= PLANNER_MAX_ITEMS:
        raise PlanError(f"items: between 2 and {PLANNER_MAX_ITEMS}")
    if not 0.5 <= power < 1:
        raise PlanError("power: between 50 and 99 %")
    return {"accuracies": accuracies, "annotator_sd_points": spread, "items": items, "target_power": power}


@login_required
@require_GET
def plan_view(request):
    """``?accuracies=60,60,80&spread=10&items=20``: the annotators per condition for 80 %
    power; ``?study=<id>`` fills in a study's conditions and counted items."""
    form = {"accuracies": "", "spread": "10", "items": "20", "power": "80"}
    study = None
    if request.GET.get("study", "").isdigit():
        study = accessible_studies(request.user).filter(pk=int(request.GET["study"])).first()
        if study is not None:
            form["items"] = str(study.items.filter(is_practice=False).count() or 20)
            form["conditions"] = ", ".join(study.conditions.values_list("name", flat=True))
    form.update({k: v for k, v in request.GET.items() if k in ("accuracies", "spread", "items", "power")})
    result, error = None, None
    if request.GET.get("accuracies"):
        try:
            result = plan_annotators(**parse_plan(request.GET), sims=PLANNER_SIMULATIONS,
                                     time_budget=PLANNER_SECONDS)
        except PlanError as exc:
            error = str(exc)
    return render(request, "annotations/planner.html", {"form": form, "study": study, "result": result,
                                                        "error": error}, status=400 if error else 200)
