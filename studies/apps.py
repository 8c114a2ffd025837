from django.apps import AppConfig


class StudiesConfig(AppConfig):
    """Studies, conditions, items, enrolment and the annotator's pages."""

    name = "studies"
