"""Filters of the analysis section: ``{{ share|points }}`` (0.625 → "62.5"), ``{{ p|p_value }}``
(below 0.001 → "< 0.001"), both by :func:`annotations.figures.figure`'s rounding."""

from django import template

from annotations.figures import figure

register = template.Library()


@register.filter
def points(value, digits=1):
    """A share as percentage points; a signed one keeps its sign ("+12.5")."""
    return "–" if value is None else figure(100 * value, int(digits))


@register.filter
def p_value(value):
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else figure(value, 3)
