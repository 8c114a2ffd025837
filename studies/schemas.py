"""Schemas of what the importers read (DRF serializers) and the field types they are made
of (``annotations/schemas.py`` builds the whole-study document's from them): every value's type, its bounds
(text that fits its database column, lists of bounded length, finite times) and text
without NUL characters. Serializers only shape data: the rules between values (an
enrolment's condition is one of the study's …) are the importers' own.

:func:`first_error` names the field of the first refusal, e.g. ``items[3].id: missing``.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from .models import Bundle, BundleItem


def column(model, name: str) -> int:
    """The length of a text column: what a value must fit."""
    return model._meta.get_field(name).max_length


def _strict(field_class, types: tuple, kind: str):
    """``field_class`` that takes only JSON values of ``types``: ``"3"`` is not a number and
    ``1`` is not ``true`` (a document written by the exporter never needs either)."""

    class Strict(field_class):
        def to_internal_value(self, data):
            if not isinstance(data, types) or (isinstance(data, bool) and bool not in types):
                raise serializers.ValidationError(f"must be {kind}; got {type(data).__name__}")
            return super().to_internal_value(data)

    Strict.__name__ = f"Strict{field_class.__name__}"
    return Strict


_Text = _strict(serializers.CharField, (str,), "text")
_Choice = _strict(serializers.ChoiceField, (str,), "text")
Url = _strict(serializers.URLField, (str,), "text")
Flag = _strict(serializers.BooleanField, (bool,), "true or false")
WholeNumber = _strict(serializers.IntegerField, (int,), "a whole number")
Number = _strict(serializers.FloatField, (int, float), "a number")  # finite: DRF refuses inf and nan


def Text(**kwargs):
    """Text kept exactly as written (no trimming), without NUL (DRF's validator)."""
    return _Text(trim_whitespace=False, **kwargs)


def Amount(**kwargs):
    """Money as text (``"1.50"``): exact, 2 decimals, not negative."""
    return _strict(serializers.DecimalField, (str,), "an amount as text")(max_digits=8, decimal_places=2, min_value=0,
                                                                          **kwargs)


def Choice(choices, **kwargs):
    return _Choice(choices=choices, **kwargs)


class Moment(serializers.Field):
    """An ISO 8601 time with its UTC offset (a time without one is ambiguous)."""

    def to_internal_value(self, data):
        try:
            moment = parse_datetime(data) if isinstance(data, str) else None
        except ValueError:
            moment = None
        if moment is None or timezone.is_naive(moment):
            raise serializers.ValidationError("must be an ISO 8601 time with its UTC offset")
        return moment


def first_error(errors, where: str = "") -> str:
    """``path: message`` of the first error of ``serializer.errors`` (``missing`` for a
    required field)."""
    if isinstance(errors, dict):
        for key, sub in errors.items():
            if sub:
                if key == serializers.api_settings.NON_FIELD_ERRORS_KEY:
                    return first_error(sub, where)
                path = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key)
                return first_error(sub, path)
    if isinstance(errors, list):
        for k, sub in enumerate(errors):
            if isinstance(sub, str):
                message = "missing" if getattr(sub, "code", None) == "required" else str(sub)
                return f"{where or 'document'}: {message}"
            if sub:
                return first_error(sub, f"{where}[{k}]")
    return f"{where or 'document'}: {errors}"


# -- the rows of an imported bundle (studies/services.py::import_bundle) -----------------------------------
class BundleRowSchema(serializers.Serializer):
    """What the Bundle row keeps of a validated bundle: must fit its columns."""

    name = Text(max_length=column(Bundle, "name"))
    path = Text(max_length=column(Bundle, "path"))
    dataset = Text(max_length=column(Bundle, "dataset"))
    model = Text(max_length=column(Bundle, "model"))


class BundleItemRowSchema(serializers.Serializer):
    item_id = Text(max_length=column(BundleItem, "item_id"))
    label = Text(max_length=column(BundleItem, "label"))
    prediction = Text(max_length=column(BundleItem, "prediction"))


# -- what a researcher sets: the parameters of a model debugging report (services) --------------------
class DebuggingParams(serializers.Serializer):
    """The parameters of a debugging report a researcher may set (the engine defaults the rest)."""

    budget = serializers.IntegerField(min_value=1, max_value=1_000_000, default=100)
    runs = serializers.IntegerField(min_value=2, max_value=50, default=10,
                                    help_text="fine-tuning runs (seeds) per selection")
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
    k_features = serializers.IntegerField(min_value=1, max_value=50, default=5)
    epochs = serializers.IntegerField(min_value=1, max_value=50, default=1)
    labelled_size = serializers.IntegerField(min_value=20, max_value=1_000_000, required=False)
    pool_size = serializers.IntegerField(min_value=20, max_value=1_000_000, required=False)
    held_out_size = serializers.IntegerField(min_value=20, max_value=1_000_000, required=False)
