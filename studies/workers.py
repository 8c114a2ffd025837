"""How the web process hands work to the Celery workers: by task name. The task module
(``tasks.py``) imports the engine and torch; a task's name needs neither, so no page, API
view or service imports them (``.importlinter`` holds the web code to that).

Without a broker (``CELERY_TASK_ALWAYS_EAGER``, the demo's default) the named task runs in
this process: Celery's own autodiscovery registers the installed apps' task modules, as a
worker's start does, and the task is taken from that registry by its name."""

from celery import current_app

# the names of the tasks in tasks.py (Celery names a task by its module and function)
LIVE_SOG = "studies.tasks.live_sog"
DEBUGGING_REPORT = "studies.tasks.debugging_report"


def in_process() -> bool:
    """Whether tasks run in this process (no broker) rather than on workers."""
    return bool(current_app.conf.task_always_eager)


def run(name: str, *args):
    """Start the task named ``name`` with ``args``; its result handle (``.get()`` waits for
    the value; in process, the task has already run)."""
    if in_process():
        if name not in current_app.tasks:
            current_app.autodiscover_tasks(force=True)
        return current_app.tasks[name].apply(args=args)
    return current_app.send_task(name, args=args)
