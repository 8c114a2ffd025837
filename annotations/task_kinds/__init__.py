"""The built-in tasks, one module each, registered in the task registry
(:mod:`studies.task_registry`) when imported (by the annotations app when it is ready).
A new task is one more module here plus its import below (``docs/extending.md``)."""

from . import concept, error, simulation  # noqa: F401  (each registers its task)
