"""Error categorization (paper 3.3): the annotator sees a misclassified datapoint with its
correct and predicted labels and names the kind of error; α over the three categories."""

from __future__ import annotations

from studies.models import Study
from studies.services import ALL_STAGES, StudyError
from studies.task_registry import TaskSpec, register_task

from ..figures import plus_minus
from ..models import Response

CATEGORIES = [c for c in Response.Category.choices if c[0]]


def clean(answer: dict, item) -> dict:
    category = str(answer.get("category") or "")
    if category not in Response.Category.values or not category:
        raise StudyError(f"{category!r} is not an error category ({', '.join(v for v, _ in CATEGORIES)})")
    return {"category": category}


def annotator_fields(enrolment, item, names) -> dict:
    """The annotator categorizes a known mistake: its correct and predicted labels."""
    record = item.bundle_item.record
    return {"label": record.get("label"), "prediction": record.get("prediction")}


def metrics(rows, answers, clusters) -> tuple[dict, dict]:
    figures = {"categories": {c: sum(r.category == c for r in rows) for c, _ in CATEGORIES}}
    return figures, {(r.annotator, r.item): r.category for r in rows}


def summary_row(m: dict, alpha: str) -> dict:
    return {"confidence": plus_minus(m["confidence"], 1, 2), "agreement α": alpha,
            "errors (unimodal / cross-modal / prediction)": " / ".join(str(v) for v in m["categories"].values())}


ERROR = register_task(TaskSpec(
    Study.Task.ERROR, "error categorization", answer_fields=("category",), clean=clean,
    form_template="annotate/answers/error.html", context_template="annotate/answers/error_context.html",
    annotator_fields=annotator_fields, value=lambda r: r.category, metrics=metrics,
    alpha_over="the three error categories", summary_row=summary_row,
    presets=(("No-Viz", [], {}), ("MultiViz", ALL_STAGES, {"live_sog": True})),
    group_size=5, extra={"categories": CATEGORIES}))
