"""Exports and the summary, for the study's owner only."""

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from studies.selectors import accessible_studies

from .exports import responses_csv, study_json, summary_latex


def owned_study(request, pk):
    """The study if the logged-in researcher owns it or it is shared with them (or they are a
    superuser); 404 otherwise, so a researcher cannot even learn that another's study exists."""
    return get_object_or_404(accessible_studies(request.user), pk=pk)


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
