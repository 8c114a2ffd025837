from django.urls import path

from annotations import planner

from . import builder

app_name = "builder"

urlpatterns = [
    path("studies/new/", builder.new_study, name="new"),
    path("studies/<int:pk>/edit/", builder.edit_study, name="edit"),
    path("studies/<int:pk>/preview/<int:condition_pk>/", builder.preview, name="preview"),
    path("studies/plan/", planner.plan_view, name="plan"),  # the sample-size planner
]
