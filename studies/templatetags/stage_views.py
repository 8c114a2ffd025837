"""Drawing a section's ``views`` (docs/bundles.md) on the annotator's page until every kind
has its viewer: a text view's scores become per-word weight classes (``w-10`` … ``w10``)."""

from django import template

register = template.Library()


@register.filter
def token_weights(scores, tokens) -> list[dict]:
    """``[{"token", "weight"}]``: each word with its score scaled by the largest magnitude."""
    values = []
    for s in scores if isinstance(scores, list) else []:
        try:
            values.append(float(s))
        except (TypeError, ValueError):
            values.append(0.0)
    peak = max((abs(v) for v in values), default=0.0)
    return [{"token": t, "weight": (values[k] / peak if peak and k < len(values) else 0.0)}
            for k, t in enumerate(tokens or [])]
