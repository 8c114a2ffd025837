"""The built-in tasks, one module each, registered in the task registry
(:mod:`studies.task_registry`) when imported (by the annotations app when it is ready).
A new task is one more module here plus its import below (``docs/extending.md``); the
order of the imports is the order the builder offers the tasks in."""

from . import simulation  # noqa: F401, I001  (each registers its task; the paper's order)
from . import concept  # noqa: F401
from . import error  # noqa: F401
