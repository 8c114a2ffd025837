"""A study's results, for its researchers only: the study page (figures, agreement,
exclusions, live monitor, comparisons), exports, the cross-study table, the whole-study
document and the concept workspace."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from studies.models import Condition
from studies.selectors import accessible_studies
from studies.services import StudyError, set_exclusion
from studies.views import owned_study

from .analysis_plots import analysis_section
from .blinding import blind_labels, blinded_order
from .export_formats import get_export_format
from .exports import (
    bonuses_csv,
    results_table_cells,
    results_table_csv,
    results_table_latex,
    summary_rows,
    table_studies,
)
from .exports import results_table as build_table
from .plots import interval_plot
from .selectors import bonus_rows, compare_conditions, condition_metrics, conditions_answers, item_agreement, monitor
from .services import apply_suggested_clusters, assign_concept_clusters, concept_responses, rename_concept_cluster
from .transfer import export_study_json


def download_response(body, content_type, filename):
    """``body`` as a download; a text iterator (not str or bytes) is streamed a chunk at a time."""
    if isinstance(body, (str, bytes)):
        response = HttpResponse(body, content_type=content_type)
    else:
        response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _export(request, pk, name):
    fmt = get_export_format(name)
    if fmt is None:
        raise Http404("no such export format")
    study = owned_study(request, pk)
    return download_response(fmt.write(study), fmt.content_type, fmt.filename.format(pk=study.pk))


@login_required
@require_GET
def export(request, pk, name):
    """The study as a file in any registered format (``annotations.export_formats``)."""
    return _export(request, pk, name)


@login_required
@require_GET
def export_csv(request, pk):
    return _export(request, pk, "csv")


@login_required
@require_GET
def export_annotators_csv(request, pk):
    return _export(request, pk, "annotators-csv")


@login_required
@require_GET
def export_bonuses_csv(request, pk):
    """Prolific's bulk bonus file (``participant_id,amount`` lines)."""
    study = owned_study(request, pk)
    try:
        body = bonuses_csv(study)
    except StudyError as exc:
        return HttpResponse(f"No bonus file: {exc}.", status=400, content_type="text/plain; charset=utf-8")
    return download_response(body, "text/csv; charset=utf-8", f"study-{pk}-bonuses.csv")


@login_required
@require_GET
def export_json(request, pk):
    return _export(request, pk, "json")


@login_required
@require_GET
def export_latex(request, pk):
    return _export(request, pk, "latex")


@login_required
@require_GET
def results_table(request):
    """The paper's Table 2 across the studies picked (``?study=ID&study=ID…``): a page with the
    table, or with ``format=latex`` / ``format=csv`` the file. A study the researcher cannot
    see is reported as no study, like one that does not exist."""
    fmt = request.GET.get("format", "html")
    picked = request.GET.getlist("study")
    mine = accessible_studies(request.user)
    context = {"studies": mine.order_by("-pk"), "picked": picked, "format": fmt}
    if not request.GET:  # opened from the navigation: the studies to pick from, not an error
        return render(request, "annotations/results_table.html", context)
    try:
        if fmt not in ("html", "latex", "csv"):
            raise StudyError("format: choose html, latex or csv")
        table = build_table(table_studies(mine, picked))
    except StudyError as exc:
        return render(request, "annotations/results_table.html", {**context, "error": str(exc)}, status=400)
    name = "results-table-" + "-".join(str(g["study"].pk) for g in table["groups"])
    if fmt == "latex":
        return download_response(results_table_latex(table), "application/x-tex", f"{name}.tex")
    if fmt == "csv":
        return download_response(results_table_csv(table), "text/csv; charset=utf-8", f"{name}.csv")
    heads, body = results_table_cells(table)
    return render(request, "annotations/results_table.html", {
        **context, "table": table, "heads": heads, "body": body,
        "query": "&".join(f"study={g['study'].pk}" for g in table["groups"])})


REVEAL_SESSION_KEY = "concepts_revealed"  # the study ids whose workspace shows conditions


def _blinding_seed(study) -> str:
    return f"study-{study.pk}-{study.invite_token}"


@login_required
def concept_workspace(request, pk):
    """Cluster a concept study's free texts: suggest, merge/rename, move (split), with alpha
    and the full-agreement count recomputed on every change.

    Blinded by default: answers come in a seeded order per study and conditions are named
    "group A", "group B" … until the researcher reveals them (action ``reveal``, remembered
    in their session for this study; ``hide`` blinds again)."""
    study = owned_study(request, pk)
    error = None
    if request.method == "POST":
        try:
            action = request.POST.get("action")
            if action in ("reveal", "hide"):
                revealed = set(request.session.get(REVEAL_SESSION_KEY, [])) - {study.pk}
                request.session[REVEAL_SESSION_KEY] = sorted(revealed | ({study.pk} if action == "reveal" else set()))
            elif action == "suggest":
                apply_suggested_clusters(study, only_unclustered=request.POST.get("keep") == "yes")
            elif action == "rename":
                rename_concept_cluster(study, request.POST.get("old", ""), request.POST.get("new", ""))
            elif action == "move":
                ids = [int(i) for i in request.POST.getlist("response")]
                if not ids:
                    raise StudyError("select the answers to move")
                name = request.POST.get("to", "").strip()
                if not name:
                    raise StudyError("name the cluster to move them to")
                assign_concept_clusters(study, {i: name for i in ids})
            else:
                raise StudyError("unknown action")
            return redirect("annotations:concepts", pk=study.pk)
        except (StudyError, ValueError) as exc:
            error = str(exc)
    revealed = study.pk in request.session.get(REVEAL_SESSION_KEY, [])
    seed = _blinding_seed(study)
    responses = {r.pk: r for r in concept_responses(study)}
    clusters: dict[str, list] = {}
    for pk in blinded_order(seed, list(responses)):
        clusters.setdefault(responses[pk].concept_cluster or "", []).append(responses[pk])
    unclustered = clusters.pop("", [])
    metrics = [condition_metrics(c) for c in study.conditions.all()]
    if not revealed:
        labels = blind_labels(seed, [m["condition"] for m in metrics])
        metrics = sorted(({**m, "condition": labels[m["condition"]]} for m in metrics), key=lambda m: m["condition"])
    return render(request, "annotations/concepts.html", {
        "study": study, "clusters": sorted(clusters.items(), key=lambda kv: (-len(kv[1]), kv[0])),
        "unclustered": unclustered, "metrics": metrics, "error": error, "revealed": revealed,
    }, status=400 if error else 200)


# -- the study page: figures, agreement, exclusions, the live monitor, comparisons -------------------
def _dashboard_plots(study, metrics: list[dict]) -> list[str]:
    plots = []
    if study.task_spec.scored:
        rows = [{"label": m["condition"], "value": m["accuracy"]["mean"],
                 "low": None if m["accuracy"]["mean"] is None else m["accuracy"]["mean"] - m["accuracy"]["std"],
                 "high": None if m["accuracy"]["mean"] is None else m["accuracy"]["mean"] + m["accuracy"]["std"]}
                for m in metrics]
        plots.append(interval_plot(rows, title="Accuracy against the model (mean ± std over annotators)",
                                   lo=0, hi=1, ticks=[0, .25, .5, .75, 1], fmt="{:.0%}"))
    else:
        rows = [{"label": m["condition"], "value": m["confidence"]["mean"],
                 "low": None if m["confidence"]["mean"] is None else m["confidence"]["mean"] - m["confidence"]["std"],
                 "high": None if m["confidence"]["mean"] is None else m["confidence"]["mean"] + m["confidence"]["std"]}
                for m in metrics]
        plots.append(interval_plot(rows, title="Confidence (mean ± std)", lo=1, hi=5, ticks=[1, 2, 3, 4, 5],
                                   fmt="{:.0f}"))
    rows = [{"label": m["condition"], "value": m["alpha"],
             "low": m["alpha_interval"][0] if m["alpha_interval"] else None,
             "high": m["alpha_interval"][1] if m["alpha_interval"] else None} for m in metrics]
    plots.append(interval_plot(rows, title="Krippendorff's α (bootstrap 95 % interval over items)", lo=-0.5, hi=1,
                               ticks=[-.5, 0, .5, 1]))
    return plots


@login_required
@require_GET
def study_detail(request, pk: int):
    return _study_page(request, owned_study(request, pk))


def _study_page(request, study, error: str | None = None, status: int = 200):
    conditions = list(study.conditions.select_related("study"))
    answers = conditions_answers(conditions)  # read once; the figures come from the cache
    metrics = [condition_metrics(c, answers=a) for c, a in zip(conditions, answers)]
    rows = [{"c": c, "enrolled": m["enrolled"], "completed": m["completed"]} for c, m in zip(conditions, metrics)]
    invite = request.build_absolute_uri(reverse("annotate:join", args=[study.invite_token]))
    return render(request, "studies/study_detail.html", {
        "study": study, "conditions": rows, "invite": invite, "summary": summary_rows(study, metrics=metrics),
        "plots": _dashboard_plots(study, metrics),
        "agreement": [(c.name, item_agreement(c, answers=a)) for c, a in zip(conditions, answers)],
        "same_task_studies": accessible_studies(request.user).filter(task=study.task).order_by("-pk"),
        "enrolments": study.enrolments.select_related("condition", "exclusion_changed_by").order_by("pseudonym"),
        "error": error, "form": request.POST if error else {},
        "bonuses": bonus_rows(study, answers) if study.task_spec.scored else None,
        **analysis_section(study, conditions, answers),  # the tests between conditions: the API's and the exports' numbers
    }, status=status)


@login_required
@require_POST
def study_exclusion(request, pk: int):
    """The study page's form: exclude an annotator from the metrics (or include them again),
    with a reason; a refusal is shown on the page with what was typed."""
    study = owned_study(request, pk)
    try:
        set_exclusion(study, request.POST.dict(), request.user)
    except StudyError as exc:
        return _study_page(request, study, error=str(exc), status=400)
    return redirect(reverse("studies:study-detail", args=[study.pk]) + "#exclusions")


@login_required
@require_GET
def study_monitor(request, pk: int):
    """Live figures (polled by the study page)."""
    return JsonResponse(monitor(owned_study(request, pk)))


@login_required
@require_GET
def study_compare(request, pk: int):
    """``?a=<condition id>&b=<condition id>``: permutation test of their accuracies."""
    study = owned_study(request, pk)
    try:
        a = study.conditions.get(pk=int(request.GET.get("a", "")))
        b = study.conditions.get(pk=int(request.GET.get("b", "")))
    except (ValueError, Condition.DoesNotExist):
        return JsonResponse({"error": "choose two conditions of this study"}, status=400)
    if not study.task_spec.scored:
        return JsonResponse({"error": "accuracy comparisons are for model-simulation studies"}, status=400)
    return JsonResponse(compare_conditions(a, b))


@login_required
@require_GET
def study_transfer(request, pk: int):
    """The whole study as one JSON document, to move it to another installation
    (``manage.py import_study``)."""
    study = owned_study(request, pk)
    try:
        body = export_study_json(study)
    except StudyError as exc:
        return HttpResponse(f"The study cannot be exported: {exc}", status=409,
                            content_type="text/plain; charset=utf-8")
    return download_response(body, "application/json; charset=utf-8", f"study-{pk}-whole.json")
