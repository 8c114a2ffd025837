"""Model simulation (paper 3.1): which of the item's choices did the model predict?

Scored against the model's prediction; α over the answer's position in the item's stored
choice list (raw labels pooled across items would make chance answering look like
agreement), the raw-label α beside it."""

from __future__ import annotations

from studies.models import Study
from studies.selectors import choices_shown
from studies.services import ALL_STAGES, StudyError, simulation_choices
from studies.task_registry import TaskSpec, register_task

from ..figures import plus_minus
from ..selectors import agreement


def clean(answer: dict, item) -> dict:
    choice = str(answer.get("choice") or "")
    if choice not in item.choices:
        raise StudyError(f"{choice!r} is not one of this item's choices ({', '.join(item.choices)})")
    return {"choice": choice}


def annotator_fields(enrolment, item, names) -> dict:
    """The choices in this annotator's order; never the prediction."""
    return {"choices": choices_shown(enrolment, item)}


def score(answer, prediction: str) -> bool:
    return answer.choice == prediction


def metrics(rows, answers, clusters) -> tuple[dict, dict]:
    out = {}
    raw = {(r.annotator, r.item): r.choice for r in rows}
    out["alpha_raw_labels"] = agreement(raw, interval=False)["alpha"]
    positions = {pk: {c: k for k, c in reversed(list(enumerate(choices)))} for pk, choices in answers.choices.items()}
    values = {(r.annotator, r.item): positions[r.study_item][r.choice]
              for r in rows if r.choice in positions.get(r.study_item, ())}
    out["answers_outside_choices"] = len(raw) - len(values)
    return out, values


def export_row(response, enrolment, bundle_item) -> dict:
    return {"choices_shown": " | ".join(choices_shown(enrolment, response.item))}


def summary_row(m: dict, alpha: str) -> dict:
    share = m["features_helped_more"]
    return {"accuracy (%)": plus_minus(m["accuracy"], 100), "agreement α": alpha,
            "raw-label α": "undefined" if m["alpha_raw_labels"] is None else f"{m['alpha_raw_labels']:.2f}",
            "Features helped more (%)": "–" if share is None else f"{100 * share:.1f}"}


SIMULATION = register_task(TaskSpec(
    Study.Task.SIMULATION, "model simulation", answer_fields=("choice",), clean=clean,
    form_template="annotate/answers/simulation.html", feedback_template="annotate/feedback/simulation.html",
    asks_confidence=False, annotator_fields=annotator_fields, value=lambda r: r.choice,
    score=score, metrics=metrics,
    alpha_over="position of the answer in the item's stored choice list",
    export_row=export_row, summary_row=summary_row, measure="accuracy",
    presets=(("U", ["U"], {}), ("U+C", ["U", "C"], {}), ("U+C+Rℓ", ["U", "C", "Rl"], {}),
             ("U+C+Rℓ+Rg", ["U", "C", "Rl", "Rg"], {}), ("MultiViz (U+C+Rℓ+Rg+P)", ALL_STAGES, {}),
             ("Rℓ+P", ["Rl", "P"], {}), ("Rg+P", ["Rg", "P"], {})),
    group_size=3, item_choices=lambda bundle_item, bundle: simulation_choices(bundle_item, bundle=bundle),
    checks_choices=True, ask_helpful_page=True))
