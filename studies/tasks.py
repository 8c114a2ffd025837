"""Celery tasks: precompute bundle items, compute a live second-order gradient.

Both only compute and write files or return results; the web process owns the database.
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


@shared_task
def debugging_report(out_dir: str, dataset: str, model: str) -> str:
    """Build the model debugging report of a bundle's (dataset, model) into ``out_dir``."""
    from viz_engine.bundles.debugging_report import build_debugging_report

    build_debugging_report(out_dir, dataset=dataset, model=model)
    return out_dir
