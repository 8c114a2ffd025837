"""Celery tasks of the annotations app: suggesting clusters of a concept study's free texts
from sentence embeddings (a sentence-transformers model: torch). The web process starts it
by name (``services.SUGGEST_CLUSTERS``), so no page imports this module."""

from celery import shared_task

from .clustering import suggest_clusters as suggest


@shared_task
def suggest_clusters(texts: list[str]) -> list[str]:
    """A cluster name for each text (``clustering.suggest_clusters``)."""
    return suggest(texts)
