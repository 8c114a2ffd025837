"""The shape of a bundle's ``manifest.json``, ``item.json`` and sections, checked on import
before anything reads them.

JSON Schema through the ``jsonschema`` library: declarative, pure Python and free of
Django (the engine runs on workers without the platform, so the platform's DRF serializers
are not available here). The bounds keep a bundle within what the platform stores and
shows: names fit its 200-character columns, a question has at most ``MAX_TOKENS`` words
(live second-order gradients are per word set), and every list is of bounded length.
docs/bundles.md lists them.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from .format import ASSET_PATH, ITEM_ID, STAGES, BundleError
from .selection import TASKS

__all__ = ["MAX_NAME", "MAX_ITEMS", "MAX_CLASSES", "MAX_TOKENS", "MAX_FILES", "MAX_QUESTION", "check_manifest",
           "check_item_record", "check_section"]

MAX_NAME = 200  # dataset, model, class and label names: the platform's columns
MAX_ITEMS = 10_000  # items in a bundle
MAX_CLASSES = 1_000  # classes of the model
MAX_TOKENS = 1_024  # words of an item's text: beyond any model's sequence length here
MAX_TOKEN = 100  # characters of one word
MAX_QUESTION = 20_000  # characters of the question (or text) as shown
MAX_FILES = 500_000  # files listed in the manifest

_NO_NUL = "^[^\x00]*$"
_NAME = {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": _NO_NUL}
_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_FEATURE = {"type": ["integer", "null"], "minimum": 0, "maximum": 2**31 - 1}

# keywords in the order they are checked: bounds before the per-element checks, so a list
# of two million entries is refused at once
MANIFEST = {
    "type": "object",
    "required": ["files", "items", "stages", "class_names", "dataset", "model", "task", "request"],
    "properties": {
        "files": {"type": "object", "maxProperties": MAX_FILES,
                  "propertyNames": {"pattern": ASSET_PATH.pattern}, "additionalProperties": _SHA256},
        "items": {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": {
            "type": "object", "required": ["id"],
            "properties": {"id": {"type": "string", "pattern": ITEM_ID.pattern},
                           "index": {"type": "integer", "minimum": 0}, "feature": _FEATURE}}},
        "request": {"type": "object", "required": ["stages"], "properties": {
            "stages": {"type": "array", "minItems": 1, "maxItems": len(STAGES), "uniqueItems": True,
                       "items": {"enum": list(STAGES)}}}},
        "stages": {"type": "object"},
        "class_names": {"type": "array", "minItems": 1, "maxItems": MAX_CLASSES, "items": _NAME, "uniqueItems": True},
        "dataset": {"type": "object", "required": ["name"], "properties": {"name": _NAME}},
        "model": {"type": "object", "required": ["name"], "properties": {"name": _NAME}},
        "task": {"enum": list(TASKS)},
    },
}

MAX_MODALITIES = 32  # modalities of one datapoint
MODALITY_KINDS = ("image", "text", "timeseries", "tabular", "audio", "video")

ITEM_RECORD = {
    "type": "object",
    # a datapoint: the old image + question, or modalities of any kind (docs/bundles.md)
    "required": ["id", "label", "prediction", "correct"],
    "anyOf": [{"required": ["datapoint"]}, {"required": ["modalities"]}],
    "properties": {
        "id": {"type": "string"},
        "label": _NAME,
        "prediction": _NAME,
        "correct": {"type": "boolean"},
        "feature": _FEATURE,
        "datapoint": {"type": "object", "properties": {
            "question": {"type": "string", "maxLength": MAX_QUESTION},
            "tokens": {"type": "array", "maxItems": MAX_TOKENS,
                       "items": {"type": "string", "maxLength": MAX_TOKEN, "pattern": _NO_NUL}}}},
        "modalities": {"type": "array", "minItems": 1, "maxItems": MAX_MODALITIES, "items": {
            "type": "object", "required": ["name", "kind"],
            "properties": {"name": _NAME, "kind": {"enum": list(MODALITY_KINDS)},
                           "tokens": {"type": "array", "maxItems": MAX_TOKENS,
                                      "items": {"type": "string", "maxLength": MAX_TOKEN, "pattern": _NO_NUL}}}}},
        "probabilities": {"type": "array", "maxItems": MAX_CLASSES, "items": {
            "type": "array", "minItems": 2, "maxItems": 2, "prefixItems": [_NAME, {"type": "number"}]}},
    },
}

SECTION = {"type": "object"}
_VALIDATORS = {name: Draft202012Validator(schema) for name, schema in
               (("manifest", MANIFEST), ("item", ITEM_RECORD), ("section", SECTION))}

_TYPES = {"object": "an object", "array": "a list", "string": "text", "integer": "a whole number",
          "number": "a number", "boolean": "true or false", "null": "null"}


def _path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def _message(error) -> tuple[list, str]:
    """(where, what) of one jsonschema error, in the words of the other bundle errors."""
    where, kind, bound = list(error.absolute_path), error.validator, error.validator_value
    instance = error.instance
    if kind == "required":
        missing = next(key for key in bound if key not in instance)
        return where + [missing], "missing"
    if kind == "type":
        wanted = " or ".join(_TYPES[t] for t in ([bound] if isinstance(bound, str) else bound))
        return where, f"must be {wanted}"
    if kind in ("maxItems", "maxProperties", "maxLength"):
        return where, f"at most {bound} {'characters' if kind == 'maxLength' else 'entries'}; got {len(instance)}"
    if kind in ("minItems", "minLength"):
        return where, f"at least {bound} {'characters' if kind == 'minLength' else 'entries'}"
    if kind == "pattern":
        what = "must not contain a NUL character" if "\x00" in instance else "is not a valid name or path here"
        return where, f"{instance[:80]!r} {what}"
    if kind == "uniqueItems":
        return where, "has repeated entries"
    if kind == "enum":
        return where, f"{str(instance)[:60]!r} is not one of {', '.join(map(str, bound))}"
    if kind == "anyOf" and bound == ITEM_RECORD["anyOf"]:
        return where, "needs a datapoint or modalities"
    return where, error.message[:200]


def _check(document: Any, validator: Draft202012Validator, what: str) -> None:
    error = next(validator.iter_errors(document), None)
    if error is not None:
        where, message = _message(error)
        raise BundleError(f"{what}: {_path(where)}: {message}" if where else f"{what}: {message}")


def check_manifest(manifest: Any) -> None:
    """A :class:`BundleError` naming the field (``manifest.json: items[3].id: missing``)
    unless ``manifest`` has the shape of a manifest, within bounds."""
    _check(manifest, _VALIDATORS["manifest"], "manifest.json")


def check_item_record(record: Any, rel: str) -> None:
    _check(record, _VALIDATORS["item"], rel)


def check_section(section: Any, rel: str) -> None:
    _check(section, _VALIDATORS["section"], rel)
