"""Celery tasks: precompute bundle items, compute a live second-order gradient, compute a
model debugging report.

The first two only compute and write files or return results; the debugging report fills
its own database row (progress, result or the reason it failed), which the page polls.
A worker process keeps what it loaded (a bundle's context, a model) for the tasks after.
"""

from pathlib import Path

from celery import shared_task

from viz_engine.bundles.precompute import compute_chunk, load_context
from viz_engine.bundles.sources import load_dataset, load_model
from viz_engine.bundles.stages import live_second_order_gradient

_CONTEXTS: dict = {}
_MODELS: dict = {}


def bundle_context(path: str):
    """The bundle's context, loaded once per worker process."""
    key = str(Path(path).resolve())
    if key not in _CONTEXTS:
        _CONTEXTS[key] = load_context(key)
    return _CONTEXTS[key]


def loaded_model(name: str):
    if name not in _MODELS:
        _MODELS[name] = load_model(name)
    return _MODELS[name]


@shared_task(acks_late=True)
def precompute_chunk(path: str, item_ids: list[str]) -> int:
    """Compute the missing sections of ``item_ids``; safe to run twice (it skips what exists)."""
    return compute_chunk(bundle_context(path), item_ids)


@shared_task
def live_sog(dataset: str, model: str, split: str, index: int, positions: list[int]) -> dict:
    """The second-order gradient of the words at ``positions`` of datapoint ``index``."""
    source = load_dataset(dataset)
    example = source.examples(split)[index]
    result = live_second_order_gradient(loaded_model(model), source, example, positions)
    result["heatmap_png"] = result["heatmap_png"].hex()  # JSON-safe
    return result


@shared_task(acks_late=True)
def debugging_report(report_id: int) -> int:
    """Compute the model debugging report of row ``report_id`` and store it there."""
    from .services import run_debugging_report

    run_debugging_report(report_id)
    return report_id
