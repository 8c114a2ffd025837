"""The Celery app.

With ``CELERY_BROKER_URL`` set (e.g. ``redis://127.0.0.1:6379/0``) tasks go to real workers
(``celery -A config worker``); without it they run in-process, so a laptop needs no broker.
The web process imports this module but no task module (those load torch): it starts tasks
by name (``studies/workers.py``). A worker process sets its torch threads in ``studies/tasks.py``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("multiviz")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
