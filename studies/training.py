"""Training cards: before the first item, the annotator reads one short card per
visualization their condition shows — what it shows, how to read its colours — each with a
worked example drawn on the study's first practice item by the same partials the item page
uses, so the example looks exactly like what comes next.

The default texts are registered with each stage (``studies.stage_views``: ``StageView.card``);
a study may rewrite any of them (``Study.training_cards``, checked by
``studies.services.clean_training_cards``). A condition with no stages (No-Viz) has no cards.

The example is a practice item only, shown through ``annotator_view`` like the item itself:
its answer is shown in the practice feedback anyway, and nothing of a counted item is drawn.
A study without practice items gets its cards without examples.
"""

from __future__ import annotations

from dataclasses import asdict

from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from .models import Enrolment, Study, StudyItem
from .selectors import feature_blocks
from .services import CARD_TEXT_LIMITS
from .stage_views import CARD_FIELDS, page_context, platform_stage_names, stage_label, training_card

__all__ = ["card_stages", "card_texts", "condition_cards", "worked_example", "first_practice_item", "card_rows"]


def card_stages(stages) -> list[str]:
    """The stages of ``stages`` that get a card: those a condition may show, in canonical order."""
    return [s for s in platform_stage_names() if s in stages]


def card_texts(study: Study, stage: str) -> dict[str, str]:
    """The card of ``stage`` as ``study`` shows it: each text the study's own, else the default."""
    own = (study.training_cards or {}).get(stage) or {}
    default = asdict(training_card(stage))
    return {field: own.get(field) or default[field] for field in CARD_FIELDS}


def first_practice_item(enrolment: Enrolment) -> StudyItem | None:
    """The first practice item in the annotator's order (never an attention check, never a
    counted item): the one the worked examples are drawn on; None when the study has none."""
    practice = {i.pk: i for i in enrolment.study.items.filter(pk__in=enrolment.item_order, is_practice=True,
                                                               attention_check=False).select_related("bundle_item")}
    return next((practice[pk] for pk in enrolment.item_order if pk in practice), None)


def _only(view: dict, stage: str) -> dict:
    """``view`` with only ``stage``'s section and views; a link to a part of the item not
    drawn with it (P's features on the Features page) is dropped."""
    section = view["sections"][stage]
    if isinstance(section.get("features"), list):
        section = {**section, "features": [{**f, "linked": False} if "linked" in f else f
                                           for f in section["features"]]}
    views = {stage: view["views"][stage]} if stage in view.get("views", {}) else {}
    return {**view, "sections": {stage: section}, "views": views}


def worked_example(view: dict, stage: str) -> str:
    """``stage`` drawn on ``view`` (the practice item as the annotator's condition shows it,
    asset URLs already theirs) by the item page's own partials, a feature's stage on its
    first feature only; "" if the item lacks the stage."""
    if stage not in view.get("sections", {}):
        return ""
    one = _only(view, stage)
    context = {**page_context(one), "view": one, "feature_blocks": feature_blocks(one)[:1], "worked_example": True}
    partials = [*context["overview_partials"], *(p for page in context["stage_pages"] for p in page["partials"])]
    return mark_safe("".join(render_to_string(partial, context) for partial in partials))


def condition_cards(study: Study, stages, example: dict | None = None) -> list[dict]:
    """The cards of a condition showing ``stages``, in canonical order: ``stage``, ``label``,
    the texts of :data:`~studies.stage_views.CARD_FIELDS` and ``drawn``, the worked example
    on ``example`` (the first practice item's view, or None: no examples)."""
    return [{"stage": s, "label": stage_label(s), **card_texts(study, s),
             "drawn": worked_example(example, s) if example else ""} for s in card_stages(stages)]


def card_rows(study: Study, posted=None) -> list[dict]:
    """The builder's card editor: a row per stage some condition of ``study`` shows, with the
    conditions that show it and per text its form input's name, its value (as ``posted``
    sent it, when a refused form is shown again), its default and whether the study rewrote it."""
    conditions = list(study.conditions.all())
    rows = []
    for s in card_stages({stage for c in conditions for stage in c.stages}):
        texts, default = card_texts(study, s), asdict(training_card(s))
        rows.append({"stage": s, "label": stage_label(s), "conditions": [c.name for c in conditions if s in c.stages],
                     "fields": [{"name": f, "input": f"card-{s}-{f}", "what": what, "default": default[f],
                                 "rewritten": texts[f] != default[f], "long": f != "title",
                                 "limit": CARD_TEXT_LIMITS[f],
                                 "value": (posted or {}).get(f"card-{s}-{f}", texts[f])}
                                for f, what in CARD_FIELDS.items()]})
    return rows
