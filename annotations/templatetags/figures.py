"""``{{ value|figure:2 }}``: a figure as every page and export writes it (annotations.figures)."""

from django import template

from annotations.figures import figure as format_figure

register = template.Library()


@register.filter
def figure(value, digits=2):
    return format_figure(value, int(digits))
