from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    """Responses, concept categories, metrics and exports."""

    name = "annotations"

    def ready(self):
        from . import task_kinds  # noqa: F401  (registers the built-in tasks in studies.task_registry)
