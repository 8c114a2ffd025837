"""The task registry: one :class:`TaskSpec` per kind of study (model simulation, concept
assignment, error categorization …), holding everything that differs between tasks — what
the annotator is shown besides the stages, the answer's fields and their validation, the
scoring against the model, what agreement is computed over, the export columns, the
presets and the page partials.

Everything that used to branch on ``study.task`` asks :func:`task_spec` instead, so adding
a task is one module that registers a spec (``docs/extending.md``). The built-in tasks are
in ``annotations/task_kinds/`` and are registered when the annotations app is ready; the
choices of ``Study.task`` are read from here (:func:`task_choices`), so a new task needs no
migration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from viz_engine.registries import Registry

__all__ = ["TaskSpec", "register_task", "unregister_task", "task_spec", "task_specs", "task_choices", "TaskError"]


class TaskError(KeyError):
    """No task of that name is registered."""


def _nothing(*_args, **_kwargs) -> dict:
    return {}


@dataclass(frozen=True)
class TaskSpec:
    """name: stored in ``Study.task`` (at most 20 characters). label: how people read it.

    answer_fields: the ``Response`` fields the task's form posts and ``clean`` fills (besides
    ``confidence``, ``helpful_page`` and ``seconds_on_item``, which every task shares).
    asks_confidence: the form asks a confidence 1–5 and an answer needs one.
    clean(answer, item): the task's own fields validated (raise ``StudyError`` with a
    sentence for the annotator), as ``{field: value}``.
    annotator_fields(enrolment, item, names): what the annotator is shown besides the
    stages (``names``: the per-item feature names); goes through the one gate,
    ``studies.selectors.annotator_view``: never anything that leads to the prediction
    unless the task is about a known prediction.
    value(answer): an answer row's value for the per-item table ("most common").
    score(answer, prediction): whether an answer (a ``Response`` or a metrics row) matched the
    model's prediction (True/False), None when the task has no right answer. A task with
    ``measure="accuracy"`` is scored: accuracy per annotator, the exports' ``matched_model``,
    the per-item table, bonuses and the permutation test use it.
    metrics(rows, answers, clusters): the task's own figures of a condition and the values
    Krippendorff's α is computed over: ``(figures, {(annotator, item): value})``.
    alpha_over: what α is computed over, in words.
    export_columns / export_row(response, enrolment, bundle_item): columns the responses CSV
    has for this task (added after the shared ones) and their values for one response.
    summary_row(metrics): the task's columns of the paper's summary table.
    measure: the results table's measure, ``"accuracy"`` or ``"confidence"``.
    form_template / context_template / feedback_template: the answer form of the item page,
    what the overview shows of the task (optional), and the practice feedback.
    presets: the paper's conditions for the task: ``(name, stages, options)``.
    group_size: annotators per condition by default.
    item_choices(bundle_item, bundle): the choices a study item is built with ([] for none).
    checks_choices: whether the builder refuses items with fewer than two valid choices.
    ask_helpful_page: conditions that show both pages ask which helped more.
    clusters: its free-text answers are clustered by the researcher (the concepts page).
    extra: anything the task's templates need (``task.extra`` in them).
    """

    name: str
    label: str
    answer_fields: tuple[str, ...]
    clean: Callable
    form_template: str
    asks_confidence: bool = True
    annotator_fields: Callable = _nothing
    value: Callable = lambda r: r.choice or r.category or r.concept_cluster or r.free_text  # noqa: E731
    score: Callable = lambda r, prediction: None  # noqa: E731
    metrics: Callable = lambda rows, answers, clusters: ({}, {})  # noqa: E731
    alpha_over: str = ""
    export_columns: tuple[str, ...] = ()
    export_row: Callable = _nothing
    summary_row: Callable = _nothing
    measure: str = "confidence"
    context_template: str = ""
    feedback_template: str = "annotate/feedback/recorded.html"
    presets: tuple = ()
    group_size: int = 5
    item_choices: Callable = lambda bundle_item, bundle: []  # noqa: E731
    checks_choices: bool = False
    ask_helpful_page: bool = False
    clusters: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        """Whether answers are right or wrong against the model (accuracy, bonuses, comparisons)."""
        return self.measure == "accuracy"


_TASKS: Registry[TaskSpec] = Registry("task", error=TaskError)


def register_task(spec: TaskSpec, *, replace: bool = False) -> TaskSpec:
    if not spec.name or len(spec.name) > 20:
        raise ValueError(f"task name {spec.name!r}: 1 to 20 characters (Study.task)")
    return _TASKS.add(spec.name, spec, replace=replace)


def unregister_task(name: str) -> None:
    _TASKS.remove(name)


def task_spec(name: str) -> TaskSpec:
    return _TASKS.get(name)


def task_specs() -> tuple[TaskSpec, ...]:
    return _TASKS.entries()


def task_choices() -> list[tuple[str, str]]:
    """``Study.task``'s choices: every registered task (a callable, so it is read when used)."""
    return [(t.name, t.label) for t in _TASKS.entries()]
