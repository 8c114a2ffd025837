"""Exports and the summary, for the study's owner only."""

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from studies.models import Study

from .exports import responses_csv, study_json, summary_latex


def owned_study(request, pk) -> Study:
    """The study if the logged-in researcher owns it (or is a superuser); 404 otherwise, so
    a researcher cannot even learn that another's study exists."""
    study = get_object_or_404(Study.objects.select_related("bundle"), pk=pk)
    if study.owner_id != request.user.pk and not request.user.is_superuser:
        raise Http404("no such study")
    return study


def _download(body, content_type, filename):
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_GET
def export_csv(request, pk):
    return _download(responses_csv(owned_study(request, pk)), "text/csv; charset=utf-8", f"study-{pk}-responses.csv")


@login_required
@require_GET
def export_json(request, pk):
    body = json.dumps(study_json(owned_study(request, pk)), indent=1, default=str)
    return _download(body, "application/json", f"study-{pk}.json")


@login_required
@require_GET
def export_latex(request, pk):
    return _download(summary_latex(owned_study(request, pk)), "application/x-tex", f"study-{pk}-summary.tex")
