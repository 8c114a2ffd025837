from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    """Responses, concept categories, metrics and exports."""

    name = "annotations"
