"""``{% draw_modality m %}`` and ``{% draw_view view modalities stage %}``: the viewers
(``studies/viewers.py``) in a template."""

from django import template
from django.utils.safestring import mark_safe

from .. import viewers

register = template.Library()


@register.simple_tag
def draw_modality(modality, alt=""):
    return mark_safe(viewers.draw_modality(modality, alt))  # noqa: S308 - rendered by our templates, escaped there


@register.simple_tag
def draw_view(view, modalities, stage="U", with_legend=True):
    return mark_safe(viewers.draw_view(view, modalities, stage, with_legend))  # noqa: S308 - escaped in our templates


@register.simple_tag
def c_choices(view):
    """The C views with the words each is of; ``picker`` when there are several to pick from."""
    return viewers.c_choices(view)


@register.simple_tag
def rg_legend():
    """One legend for a feature's highlighted examples (the engine's pre-rendered maps)."""
    return viewers.group_legend()
