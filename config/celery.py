"""The Celery app.

With ``CELERY_BROKER_URL`` set (e.g. ``redis://127.0.0.1:6379/0``) tasks go to real workers
(``celery -A config worker``); without it they run in-process, so a laptop needs no broker.
"""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("multiviz")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _one_torch_thread_per_worker_process(**_kwargs):
    """Worker processes share the machine's cores: one torch thread each unless told otherwise."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = int(os.environ.get("MULTIVIZ_TORCH_THREADS", "1"))
    torch.set_num_threads(threads)
    threadpool_limits(threads)  # numpy's BLAS (LIME's surrogate fits) as well
