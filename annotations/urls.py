from django.urls import path

from . import analysis_views, planner, views

app_name = "annotations"

urlpatterns = [
    path("studies/<int:pk>/export.csv", views.export_csv, name="export-csv"),
    path("studies/<int:pk>/annotators.csv", views.export_annotators_csv, name="export-annotators-csv"),
    path("studies/<int:pk>/bonuses.csv", views.export_bonuses_csv, name="export-bonuses-csv"),
    path("studies/<int:pk>/export.json", views.export_json, name="export-json"),
    path("studies/<int:pk>/export/<slug:name>/", views.export, name="export"),
    path("studies/<int:pk>/analysis.csv", analysis_views.export_analysis_csv, name="export-analysis-csv"),
    path("studies/table/", views.results_table, name="results-table"),
    path("studies/<int:pk>/summary.tex", views.export_latex, name="export-latex"),
    path("studies/<int:pk>/concepts/", views.concept_workspace, name="concepts"),
]

# a study's results pages, under the names they have always had ("studies:study-detail" …):
# config/urls.py serves them in the "studies" namespace, next to studies.urls
# the builder's sample-size planner (it simulates with the analysis's model), served in the
# builder's namespace by config/urls.py
planner_pages = [
    path("studies/plan/", planner.plan_view, name="plan"),
]

study_pages = [
    path("studies/<int:pk>/", views.study_detail, name="study-detail"),
    path("studies/<int:pk>/exclusions/", views.study_exclusion, name="study-exclusion"),
    path("studies/<int:pk>/monitor.json", views.study_monitor, name="study-monitor"),
    path("studies/<int:pk>/compare.json", views.study_compare, name="study-compare"),
    path("studies/<int:pk>/whole-study.json", views.study_transfer, name="study-transfer"),
]
