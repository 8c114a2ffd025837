"""Exports and the summary, for the study's owner only."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from studies.selectors import accessible_studies

from .export_formats import get_export_format
from .exports import bonuses_csv


def owned_study(request, pk):
    """The study if the logged-in researcher owns it or it is shared with them (or they are a
    superuser); 404 otherwise, so a researcher cannot even learn that another's study exists."""
    return get_object_or_404(accessible_studies(request.user), pk=pk)


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
    from studies.services import StudyError

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
    from django.shortcuts import render

    from studies.services import StudyError

    from .exports import results_table as build_table
    from .exports import results_table_cells, results_table_csv, results_table_latex, table_studies

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
    from django.shortcuts import redirect, render

    from studies.services import StudyError

    from .selectors import condition_metrics
    from .services import (
        apply_suggested_clusters,
        assign_concept_clusters,
        concept_responses,
        rename_concept_cluster,
    )

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
    from .clustering import blind_labels, blinded_order

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
