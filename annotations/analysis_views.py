"""The tests between conditions as a CSV download (the page and the API show the same
:func:`annotations.analysis.study_analysis`)."""

from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_GET

from .analysis import ANALYSIS_COLUMNS, analysis_rows, study_analysis
from .exports import _csv_text
from .views import download_response, owned_study


@login_required
@require_GET
def export_analysis_csv(request, pk):
    study = owned_study(request, pk)
    return download_response(_csv_text(ANALYSIS_COLUMNS, analysis_rows(study_analysis(study))),
                             "text/csv; charset=utf-8", f"study-{pk}-analysis.csv")
