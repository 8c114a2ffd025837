"""The tests between conditions as a CSV download at its own address (the registered export
format ``analysis-csv``; the page and the API show the same
:func:`annotations.analysis.study_analysis`)."""

from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_GET

from .export_formats import get_export_format
from .views import download_response, owned_study


@login_required
@require_GET
def export_analysis_csv(request, pk):
    study = owned_study(request, pk)
    fmt = get_export_format("analysis-csv")
    return download_response(fmt.write(study), fmt.content_type, fmt.filename.format(pk=pk))
