"""``{% export_links study as links %}``: one download per registered export format
(annotations.export_formats), so a new format shows on the study page by its registration."""

from django import template
from django.urls import reverse

from annotations.export_formats import export_formats

register = template.Library()


@register.simple_tag
def export_links(study):
    return [{"name": f.name, "label": f.label,
             "url": reverse(f.legacy_url, args=[study.pk]) if f.legacy_url
             else reverse("annotations:export", args=[study.pk, f.name])} for f in export_formats()]
