"""What a bundle is computed from: a dataset source and a model, named in the manifest.

Built-in names: datasets ``shapes_vqa``, ``shapes_vqa_grounded`` (its version-2 questions,
which need each phrase grounded in its own object), ``fusion``; models ``shapes_vqa_early``,
``shapes_vqa_late`` (on shapes-VQA), ``shapes_vqa_grounded`` (on its version-2 questions),
``fusion_late``, ``fusion_interaction`` (on fusion).
Your own: ``"package.module:callable"`` for either. A model callable returns a
:class:`~viz_engine.adapters.MultimodalClassifier`; a dataset callable returns a
:class:`~viz_engine.bundles.dataset_source.DatasetSource` (its docstring and
docs/datasets.md say what it gives). shapes-VQA keeps its older image + question interface
(:class:`ShapesVQASource`: ``splits``, ``examples(split, n)``, ``make_batch``, ``label``,
``describe``, ``render``, ``text_modality``, ``image_modality``, ``boxes``, ``is_yes_no``,
``answer_types``), read by the original sections with rendered overlays. Nothing is
downloaded: a loader reads local files only.
"""

from __future__ import annotations

import functools
import importlib
from typing import Callable

import numpy as np

from ..adapters import MultimodalClassifier
from ..data import fusion as fusion_data
from ..data import shapes_vqa as vqa_data
from ..render import image_png
from .dataset_source import SourceModality
from .format import BundleError

__all__ = ["ShapesVQASource", "ShapesVQAGroundedSource", "FusionSource", "DATASETS", "MODELS", "load_dataset", "load_model", "resolve_callable"]


class ShapesVQASource:
    """shapes-VQA as bundles see it: the question and the scene, shown as an image and words."""

    name = "shapes_vqa"
    splits = ("train", "val", "test", "unlabelled")
    text_modality = "question"
    image_modality = "image"
    image_scale = 4  # the 48×48 scene is shown at 192×192
    version = 1  # the question set (viz_engine.data.shapes_vqa, VERSIONS)

    def examples(self, split: str, n: int | None = None) -> list:
        """The split, or its first ``n`` datapoints: each is drawn independently, so they are
        a random sample of it (and generating them is quicker than the whole split)."""
        if split not in self.splits:
            raise BundleError(f"split {split!r} is unknown for {self.name}; splits: {', '.join(self.splits)}")
        size = vqa_data.SPLIT_SIZES[split]
        return vqa_data.load_split(split, size if n is None else min(n, size), version=self.version)

    def make_batch(self, adapter: MultimodalClassifier, examples):
        return adapter.make_batch(examples)

    def label(self, example) -> str:
        return example.answer

    def is_yes_no(self, example) -> bool:
        return example.answer in ("yes", "no")

    def describe(self, example) -> dict:
        """What people are shown of the datapoint, besides its image."""
        return {"question": example.question, "tokens": list(example.tokens), "question_type": example.question_type}

    def render(self, example) -> bytes:
        return image_png(example.image, self.image_scale)

    def answer_types(self) -> dict[str, list[str]]:
        """The answers each kind of question can have: a model simulation item offers only
        choices of the prediction's type, so none is ruled out by the question alone."""
        return {"colour": list(vqa_data.COLOURS), "shape": list(vqa_data.SHAPES), "size": list(vqa_data.SIZES),
                "count": list(vqa_data.COUNTS), "yes/no": ["yes", "no"]}

    def boxes(self, example) -> list[tuple[int, int, int, int]]:
        return [o.box for o in example.objects]

    def image_size(self) -> tuple[int, int]:
        return vqa_data.IMAGE_SIZE, vqa_data.IMAGE_SIZE

    def thumbnail(self, example, scores: np.ndarray | None = None) -> bytes:
        from ..render import heatmap_overlay_png

        if scores is None:
            return image_png(example.image, 2)
        return heatmap_overlay_png(example.image, scores, 2)


class ShapesVQAGroundedSource(ShapesVQASource):
    """shapes-VQA's version-2 questions (position questions naming two objects, scenes whose
    objects share attributes): the data ``shapes_vqa_grounded`` was trained on."""

    name = "shapes_vqa_grounded"
    version = 2


class FusionSource:
    """The fusion dataset (24 hourly vital signs × 5 channels + 8 static fields, like MIMIC)
    as a :class:`~viz_engine.bundles.dataset_source.DatasetSource`: a time series shown as
    hours × vital signs (one atom per hour and sign) and a table of fields (one atom each)."""

    name = "fusion"
    splits = tuple(fusion_data.SPLITS)
    class_names = fusion_data.CLASS_NAMES
    modalities = (
        SourceModality("series", "timeseries", "hour × vital sign", row=len(fusion_data.CHANNEL_NAMES)),
        SourceModality("static", "tabular", "field"),
    )
    query_modality = "static"  # C: from the fields with the largest gradient, over the series

    def examples(self, split: str, n: int | None = None) -> list[dict]:
        """The split's datapoints (``{"series" (24, 5), "static" (8,), "label"}``), or its
        first ``n``: every datapoint is drawn independently, so they are a random sample."""
        if split not in self.splits:
            raise BundleError(f"split {split!r} is unknown for {self.name}; splits: {', '.join(self.splits)}")
        data = _fusion_split(split)
        size = len(data) if n is None else min(n, len(data))
        return [{"series": data.series[i], "static": data.static[i], "label": int(data.labels[i])}
                for i in range(size)]

    def label(self, example) -> str:
        return self.class_names[int(example["label"])]

    def make_batch(self, adapter, examples):
        return adapter.make_batch(list(examples), series_atoms="element")

    def datapoint(self, example) -> list[dict]:
        binary = set(fusion_data.BINARY_FIELDS)
        fields = [{"name": name, "value": int(round(float(v))) if name in binary else round(float(v), 2)}
                  for name, v in zip(fusion_data.FIELD_NAMES, example["static"])]
        return [
            {"name": "series", "kind": "timeseries",
             "values": [[round(float(v), 3) for v in row] for row in example["series"]],
             "feature_names": list(fusion_data.CHANNEL_NAMES), "times": list(range(fusion_data.N_STEPS))},
            {"name": "static", "kind": "tabular", "fields": fields},
        ]


@functools.lru_cache(maxsize=4)
def _fusion_split(split: str):
    return fusion_data.load_split(split)


def _fusion_model(kind: str) -> Callable[[], MultimodalClassifier]:
    def load() -> MultimodalClassifier:
        from ..models import fusion

        return fusion.load_pretrained(kind)

    return load


def _shapes_model(kind: str) -> Callable[[], MultimodalClassifier]:
    def load() -> MultimodalClassifier:
        from ..models import shapes_vqa

        return shapes_vqa.load_pretrained(kind)

    return load


DATASETS: dict[str, Callable[[], object]] = {"shapes_vqa": ShapesVQASource,
                                             "shapes_vqa_grounded": ShapesVQAGroundedSource, "fusion": FusionSource}
MODELS: dict[str, tuple[str, Callable[[], MultimodalClassifier]]] = {
    "shapes_vqa_early": ("shapes_vqa", _shapes_model("early")),
    "shapes_vqa_late": ("shapes_vqa", _shapes_model("late")),
    "shapes_vqa_grounded": ("shapes_vqa_grounded", _shapes_model("grounded")),
    "fusion_late": ("fusion", _fusion_model("late")),
    "fusion_interaction": ("fusion", _fusion_model("interaction")),
}


def resolve_callable(spec: str, what: str) -> Callable:
    """``"package.module:callable"`` → the callable, or a :class:`BundleError` saying why not."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise BundleError(f"{what} {spec!r} is neither a built-in name nor 'package.module:callable'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to see
        raise BundleError(f"{what} {spec!r}: cannot import {module_name!r}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise BundleError(f"{what} {spec!r}: {module_name!r} has no callable {attr!r}")
    return fn


def load_dataset(name: str):
    if name in DATASETS:
        return DATASETS[name]()
    if ":" not in name:
        raise BundleError(f"dataset {name!r} is unknown; built-in: {', '.join(DATASETS)} (or 'package.module:callable')")
    return resolve_callable(name, "dataset")()


def load_model(name: str) -> MultimodalClassifier:
    """The adapter of a built-in or user model, in eval mode; a clear error if it fails to load."""
    if name in MODELS:
        loader = MODELS[name][1]
    elif ":" in name:
        loader = resolve_callable(name, "model")
    else:
        raise BundleError(f"model {name!r} is unknown; built-in: {', '.join(MODELS)} (or 'package.module:callable')")
    try:
        adapter = loader()
    except BundleError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing loader must not look like our bug
        raise BundleError(f"model {name!r} failed to load: {type(exc).__name__}: {exc}") from None
    if not isinstance(adapter, MultimodalClassifier):
        raise BundleError(f"model {name!r}: the loader returned {type(adapter).__name__}, not a MultimodalClassifier")
    return adapter.eval()
