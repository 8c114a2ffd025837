from django.urls import path

from . import analysis_views, views

app_name = "annotations"

urlpatterns = [
    path("studies/<int:pk>/export.csv", views.export_csv, name="export-csv"),
    path("studies/<int:pk>/annotators.csv", views.export_annotators_csv, name="export-annotators-csv"),
    path("studies/<int:pk>/bonuses.csv", views.export_bonuses_csv, name="export-bonuses-csv"),
    path("studies/<int:pk>/export.json", views.export_json, name="export-json"),
    path("studies/<int:pk>/analysis.csv", analysis_views.export_analysis_csv, name="export-analysis-csv"),
    path("studies/table/", views.results_table, name="results-table"),
    path("studies/<int:pk>/summary.tex", views.export_latex, name="export-latex"),
    path("studies/<int:pk>/concepts/", views.concept_workspace, name="concepts"),
]
