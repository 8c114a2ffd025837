"""The platform side of the stage registry: how a condition filters a stage and how the
annotator's page draws it.

The engine's registry (:mod:`viz_engine.bundles.registry`) says what a stage is and how it
is computed; this one says, per stage, which page of the item it belongs to, the template
partial that draws it, what of its section reaches the annotator, and which of the model's
features it names (those get per-item names). :func:`studies.selectors.annotator_view`, the
single gate of what an annotator receives, runs every allowed section through its
``to_annotator``, so a stage with no view registered here never reaches an annotator.

Adding a stage is one module that registers a ``StageSpec`` (engine) and a
:class:`StageView` (here); ``docs/extending.md`` walks through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from viz_engine.bundles.registry import get_stage, stage_names
from viz_engine.registries import Registry

from .stage_figures import prediction_graph
from .transformer_figures import transformer_figures

__all__ = ["PAGES", "CARD_FIELDS", "StageView", "TrainingCard", "AnnotatorContext", "register_stage_view",
           "unregister_stage_view", "stage_view", "platform_stage_names", "stage_label", "training_card",
           "filter_sections", "section_feature_ids", "pages_of", "page_context", "parse_stage"]

# The pages of an item, in tab order: name → title. The overview (the datapoint) is always there.
PAGES = {"overview": "Overview", "features": "Features", "prediction": "Prediction", "transformer": "Transformer"}


# The texts of a training card, each with how a researcher reads its name (the builder, refusals).
CARD_FIELDS = {"title": "title", "shows": "what it shows", "colours": "how to read its colours",
               "example": "worked example"}


@dataclass(frozen=True)
class TrainingCard:
    """The annotator's short lesson on one stage's visualization, read with the instructions
    of every condition that shows the stage (``studies.training``), each field a text of
    :data:`CARD_FIELDS`: its heading, what it shows, how to read its colours, and what to
    look at in the worked example drawn under it on the study's first practice item. These
    are the defaults; a study may rewrite any of them (``Study.training_cards``)."""

    title: str
    shows: str
    colours: str
    example: str = ""


@dataclass
class AnnotatorContext:
    """What a stage's ``to_annotator`` may read: the condition (its variants), the per-item
    feature names (global id → "A", "B" … or "z17") and the sections filtered before it."""

    condition: object
    names: dict[int, str]
    done: dict = field(default_factory=dict)


def _as_is(section: dict, ctx: AnnotatorContext) -> dict:
    return section


def _no_features(section: dict) -> list[int]:
    return []


@dataclass(frozen=True)
class StageView:
    """name: the engine stage it draws. page: one of :data:`PAGES`. template: the partial
    (rendered with the page's context: ``view``, ``study``, ``feature_blocks`` …; several
    stages may share one, drawn once per page). to_annotator: section → what the annotator
    gets (only what the partial draws: no ids, values or paths it does not need).
    feature_ids: the model feature ids a section names, so they are named per item.
    context: section → extra template context (e.g. figures drawn on the server).
    aliases: what a researcher may type for it in a custom condition (lower case).
    card: the default :class:`TrainingCard` of its visualization (without one, a card is
    made of the engine's label and description: :func:`training_card`)."""

    name: str
    page: str
    template: str
    to_annotator: Callable[[dict, AnnotatorContext], dict] = _as_is
    feature_ids: Callable[[dict], list[int]] = _no_features
    context: Callable[[dict], dict] | None = None
    aliases: tuple[str, ...] = ()
    card: TrainingCard | None = None


_VIEWS: Registry[StageView] = Registry("stage view")


def register_stage_view(view: StageView, *, replace: bool = False) -> StageView:
    get_stage(view.name)  # the engine must know the stage first
    if view.page not in PAGES:
        raise ValueError(f"page {view.page!r} is unknown; pages: {', '.join(PAGES)}")
    return _VIEWS.add(view.name, view, replace=replace)


def unregister_stage_view(name: str) -> None:
    _VIEWS.remove(name)


def stage_view(name: str) -> StageView:
    return _VIEWS.get(name)


def platform_stage_names() -> tuple[str, ...]:
    """The stages a condition may show: registered in the engine and here, in canonical order."""
    return tuple(s for s in stage_names() if s in _VIEWS)


def stage_label(name: str) -> str:
    return get_stage(name).label


def training_card(name: str) -> TrainingCard:
    """The default training card of a stage: its registered one, or for a stage registered
    without one, its label and the engine's description."""
    card = _VIEWS.get(name).card
    if card is not None:
        return card
    spec = get_stage(name)
    what = spec.description or spec.label
    return TrainingCard(title=spec.label, shows=f"{what[:1].upper()}{what[1:]}.",
                        colours="The legend under each picture says what its colours mean.")


def parse_stage(token: str) -> str | None:
    """The stage a researcher means by ``token`` (``"rℓ"``, ``"Rl"``, ``"u"`` …), or None."""
    low = token.lower()
    for name in platform_stage_names():
        if low in (name.lower(), stage_label(name).lower(), *_VIEWS.get(name).aliases):
            return name
    return None


# -- what reaches the annotator ------------------------------------------------------------------
def section_feature_ids(sections: dict) -> list[int]:
    return [j for s, section in sections.items() if s in _VIEWS for j in _VIEWS.get(s).feature_ids(section)]


def filter_sections(sections: dict, ctx: AnnotatorContext) -> dict:
    """Each allowed section (``sections``: stage → bundle section, already limited to what
    the condition allows) as the annotator gets it, in canonical order."""
    for s in platform_stage_names():
        if s in sections:
            ctx.done[s] = _VIEWS.get(s).to_annotator(sections[s], ctx)
    return dict(ctx.done)


def pages_of(sections: dict) -> dict[str, bool]:
    """Which pages an item's view has (the overview always)."""
    used = {_VIEWS.get(s).page for s in sections if s in _VIEWS}
    return {p: p == "overview" or p in used for p in PAGES}


def page_context(view: dict) -> dict:
    """The template context that draws a view's stages: ``overview_partials`` (the stage
    partials of the overview, in order), ``stage_pages`` (the other pages present, each with
    its title and partials) and what each stage's ``context`` adds."""
    partials: dict[str, list[str]] = {p: [] for p in PAGES}
    extra: dict = {}
    for s in platform_stage_names():
        if s not in view["sections"]:
            continue
        v = _VIEWS.get(s)
        if v.template not in partials[v.page]:
            partials[v.page].append(v.template)
        if v.context is not None:
            extra.update(v.context(view["sections"][s]))
    pages = [{"name": p, "title": title, "partials": partials[p]} for p, title in PAGES.items()
             if p != "overview" and partials[p]]
    return {"overview_partials": partials["overview"], "stage_pages": pages, **extra}


# -- the built-in stages ---------------------------------------------------------------------------
def _by_name(rows):
    return sorted(rows, key=lambda r: (len(r["feature"]), r["feature"]))


def _features_of(section: dict) -> list[int]:
    return [f["feature"] for f in section.get("features", [])]


def _local(section: dict, ctx: AnnotatorContext) -> dict:
    """Rℓ: per feature (by its per-item name) what the page draws; no ids or activations."""
    return {"features": _by_name([{"feature": ctx.names[f["feature"]],
                                   **{k: f[k] for k in ("image", "text", "views") if k in f}}
                                  for f in section["features"]])}


def _global(section: dict, ctx: AnnotatorContext) -> dict:
    """Rg: per feature its most and least activating datapoints, as pictures and words only
    (no dataset indices or values); their highlights only when the condition shows them."""
    lit = ctx.condition.rg_highlights  # views are the highlights of a modality-generic datapoint
    keep = (("question", "image", "image_highlights", "text_highlights", "modalities", "views") if lit
            else ("question", "image", "modalities"))
    return {"features": _by_name([{"feature": ctx.names[f["feature"]],
                                   **{side: [{k: d[k] for k in keep if k in d} for d in f.get(side, [])]
                                      for side in ("max", "min")}}
                                  for f in section["features"]])}


def _prediction(section: dict, ctx: AnnotatorContext) -> dict:
    """P: the predicted class's top features by per-item name, weight first; ``linked`` when
    the Features page has the feature."""
    paged = {f["feature"] for s in ("Rl", "Rg") for f in ctx.done.get(s, {}).get("features", [])}
    return {"features": [{"feature": ctx.names[f["feature"]], "weight": f["weight"],
                          "contribution": f.get("contribution"), "linked": ctx.names[f["feature"]] in paged}
                         for f in section.get("features", [])]}


# The default training cards: what each visualization shows and how to read its colours, in the
# words of the viewers' legends (studies/viewers.py: orange toward, blue against; pictures dimmed
# where a part matters little, outlined where it matters most).
U_CARD = TrainingCard(
    title="U · what matters on its own",
    shows="How much each part of the example matters to the model's answer on its own: each part of the picture "
          "and each word of the question, one at a time.",
    colours="Orange pushes toward the model's answer, blue pushes against it; the stronger the colour, the more. "
            "On the picture, the parts that matter little are dimmed and those that matter most are outlined, so "
            "the objects keep their own colours. Where a legend says “strength only”, orange shows how "
            "much a part matters, not in which direction.",
    example="Look for the outlined parts of the picture and the most strongly coloured words: they are what the "
            "model leaned on.")
C_CARD = TrainingCard(
    title="C · where the parts act together",
    shows="Where the words and the picture act together: for a word of the question (underlined), the parts of "
          "the picture whose effect on the answer changes with that word. A model that read the picture and the "
          "words separately would show nothing here.",
    colours="The stronger the orange, the more that part of the picture works together with the underlined word; "
            "dimmed parts barely do. When there is one map per word, the buttons above the maps pick the word.",
    example="Pick a word and see which part of the picture lights up with it: that is where the model connects the "
            "word to the picture.")
RL_CARD = TrainingCard(
    title="Rℓ · a feature, in this example",
    shows="Before answering, the model turns the example into features: numbers it computes inside. Features are "
          "named by letters (A, B, C …) that are given anew on every item. Rℓ shows, for one feature, which parts "
          "of this example drive it.",
    colours="Orange raises the feature, blue lowers it; the stronger the colour, the more. On the picture, dimmed "
            "parts matter little to the feature and outlined parts matter most.",
    example="This is what makes one feature rise in the first practice item.")
RG_CARD = TrainingCard(
    title="Rg · what a feature responds to",
    shows="For each feature, the examples of the model's data that activate it most, and those that activate it "
          "least. What the first group shares and the second lacks (a colour, a shape, a word) is what the feature "
          "responds to.",
    colours="Where the examples are highlighted, they are bright and outlined in orange where they matter most to "
            "the feature and dimmed where they matter little; words in orange raise the feature, in blue lower it.",
    example="Compare the examples that activate this feature most with those that activate it least: what do the "
            "first ones share?")
P_CARD = TrainingCard(
    title="P · how the features add up to the answer",
    shows="The features the model weighs most for its answer, largest weight first. A feature's contribution here "
          "is its weight × its value in this example: the larger it is, the more the feature pushes toward the "
          "answer in this example. What those features respond to (their Features page) tells you the answer.",
    colours="In the graph each line joins a feature to the model's answer: the thicker the line, the larger the "
            "weight, which is written on it. In the table, a positive contribution pushes toward the answer, a "
            "negative one against it.",
    example="Find the features with the largest contributions, then see what they respond to.")
T_CARD = TrainingCard(
    title="Transformer · where the attention goes",
    shows="How the model's attention heads spread over the words and the picture, layer by layer; where each word "
          "looks in the picture; and a map of the model's inner states of words and picture parts.",
    colours="In the grids, the darker the blue, the more attention. On the map, blue dots are parts of the picture "
            "and green dots are words; dots close together are represented alike by the model.",
    example="Look at where the words of the question look in the picture.")

register_stage_view(StageView("U", "overview", "annotate/stages/U.html", card=U_CARD))
register_stage_view(StageView("C", "overview", "annotate/stages/C.html", card=C_CARD))
register_stage_view(StageView("Rl", "features", "annotate/stages/features.html", _local, _features_of,
                              aliases=("rℓ", "rl"), card=RL_CARD))
register_stage_view(StageView("Rg", "features", "annotate/stages/features.html", _global, _features_of, card=RG_CARD))
register_stage_view(StageView("P", "prediction", "annotate/stages/P.html", _prediction, _features_of,
                              context=lambda section: {"p_graph": prediction_graph(section.get("features", []))},
                              card=P_CARD))
register_stage_view(StageView("T", "transformer", "annotate/stages/T.html",
                              context=lambda section: {"transformer": transformer_figures(section)}, card=T_CARD))
