"""Celery tasks: precompute bundle items, compute a live second-order gradient, compute a
model debugging report. Only workers (and the commands) import this module: it loads the
engine and torch. The web process starts these tasks by name (``workers.py``).

The first two only compute and write files or return results; the debugging report fills
its own database row (progress, result or the reason it failed), which the page polls.
A worker process keeps what it loaded (a bundle's context, a model) for the tasks after.
"""

import logging
import os
from pathlib import Path

import torch
from celery import shared_task
from celery.signals import worker_process_init
from django.utils import timezone
from threadpoolctl import threadpool_limits

from viz_engine.adapters import AdapterError
from viz_engine.bundles.debugging_report import build_debugging_report
from viz_engine.bundles.format import BundleError
from viz_engine.bundles.precompute import compute_chunk, load_context
from viz_engine.bundles.sources import load_dataset, load_model
from viz_engine.bundles.stages import live_second_order_gradient

from .models import DebuggingReport


@worker_process_init.connect
def _one_torch_thread_per_worker_process(**_kwargs):
    """Worker processes share the machine's cores: one torch thread each unless told otherwise."""
    threads = int(os.environ.get("MULTIVIZ_TORCH_THREADS", "1"))
    torch.set_num_threads(threads)
    threadpool_limits(threads)  # numpy's BLAS (LIME's surrogate fits) as well


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
    run_debugging_report(report_id)
    return report_id


def run_debugging_report(report_id: int) -> None:
    """Compute the report of row ``report_id`` into it, with its progress as it goes. A
    failure is stored with its reason (and logged), never raised: the page shows it."""
    report = DebuggingReport.objects.select_related("bundle").filter(pk=report_id).first()
    if report is None or report.status in (DebuggingReport.Status.DONE, DebuggingReport.Status.FAILED):
        return  # deleted, or a redelivered task of a run already over
    rows = DebuggingReport.objects.filter(pk=report_id)
    rows.update(status=DebuggingReport.Status.RUNNING, progress=0.0, stage="starting", updated_at=timezone.now())
    shown = {"progress": 0.0, "stage": "starting"}

    def progress(fraction: float, stage: str) -> None:
        if fraction - shown["progress"] >= 0.01 or stage != shown["stage"]:  # at most ~100 writes
            shown.update(progress=fraction, stage=stage)
            rows.update(progress=fraction, stage=stage[:200], updated_at=timezone.now())

    bundle = report.bundle
    try:
        result = build_debugging_report(report.folder, dataset=bundle.dataset, model=bundle.model,
                                        progress=progress, **report.params)
    except (BundleError, AdapterError) as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the page must say it, not hang
        logging.getLogger(__name__).exception("debugging report %s failed", report_id)
        error = f"{type(exc).__name__}: {exc}"
    else:
        rows.update(status=DebuggingReport.Status.DONE, progress=1.0, stage="done", result=result,
                    finished_at=timezone.now(), updated_at=timezone.now())
        return
    rows.update(status=DebuggingReport.Status.FAILED, error=error or "failed without a message",
                finished_at=timezone.now(), updated_at=timezone.now())
