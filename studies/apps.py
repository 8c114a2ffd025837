from django.apps import AppConfig


class StudiesConfig(AppConfig):
    """Studies, conditions, items, enrolment and the annotator's pages."""

    name = "studies"

    def ready(self):
        from . import asset_keys  # noqa: F401  (deleting an enrolment or changing a condition revokes asset keys)
