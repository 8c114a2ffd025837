from django.urls import path

from . import builder

app_name = "builder"

urlpatterns = [
    path("studies/new/", builder.new_study, name="new"),
    path("studies/<int:pk>/edit/", builder.edit_study, name="edit"),
    path("studies/<int:pk>/preview/<int:condition_pk>/", builder.preview, name="preview"),
    path("studies/<int:pk>/preview/<int:condition_pk>/instructions/", builder.preview_instructions,
         name="preview-instructions"),
]
