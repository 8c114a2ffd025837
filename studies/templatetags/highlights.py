"""Word highlights without inline styles, which the Content-Security-Policy refuses: a
weight in [-1, 1] becomes one of 21 classes, ``w-10`` … ``w10`` (tenths), that app.css colours."""

from django import template

register = template.Library()


@register.filter
def weight_class(weight) -> str:
    try:
        tenths = round(float(weight) * 10)
    except (TypeError, ValueError, OverflowError):  # missing, not a number, infinite
        tenths = 0
    return f"w{max(-10, min(10, tenths))}"
