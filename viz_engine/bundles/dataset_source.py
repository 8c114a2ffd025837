"""The dataset source protocol: what a dataset gives ``precompute`` so it can be bundled.

A bundle is computed from a *source* (the dataset) and an adapter (the model, a
:class:`~viz_engine.adapters.MultimodalClassifier`). Any object with the members of
:class:`DatasetSource` is a source; name it to ``precompute --dataset`` as
``package.module:callable`` (the callable returns the source) or register it in
``viz_engine.bundles.sources.DATASETS``. Nothing is downloaded: a source reads local files
or generates its data. ``docs/datasets.md`` has a complete example (audio features + text).

What a source gives:

``name``
    a short name (recorded in the bundle).
``splits``
    the split names. Items come from ``--split`` (default ``"test"``); P is fitted on
    ``--p-split`` (default ``"train"``), which must be another split.
``class_names``
    the classes, the same set as the model's ``adapter.class_names``.
``modalities``
    one :class:`SourceModality` per model input, in the order people see them: its
    ``name`` (the key of ``Batch.inputs`` and of the item's modality), its ``kind`` (one of
    :data:`KINDS`), what one atom is in words (``"hour × vital sign"``, ``"field"``,
    ``"word"``), and ``row`` — how many atoms make one row of the score array (the
    features of one time step for ``timeseries`` and ``audio``, the patches of one row for
    ``image``); ``None`` for a flat list (``text``, ``tabular``, ``video``, ``audio``
    with one atom per frame).
``examples(split, n=None)``
    the datapoints of ``split`` as a sequence (any objects the source understands);
    with ``n``, a random sample of ``n`` of them (P uses it to spare loading a large split).
``label(example)``
    the correct class name of one datapoint.
``make_batch(adapter, examples)``
    the model inputs: a :class:`~viz_engine.adapters.Batch` whose ``inputs`` has one
    tensor per modality and whose ``atoms`` say what the atoms of each modality are — the
    parts every attribution is summed over (one per element of a time step × feature
    grid, one per word, one per field). ``atom_labels`` name them (C's views are titled
    with the query atom's label).
``datapoint(example)``
    the datapoint as people see it: the list written to ``item.json`` as ``"modalities"``,
    one entry per modality, ``{"name", "kind", ...payload}`` as the modality contract
    (``docs/bundles.md``) says — ``text``: ``tokens``; ``timeseries``: ``values`` (T × F),
    ``feature_names``, optional ``times``; ``tabular``: ``fields`` ``[{name, value}]``;
    ``audio``: ``features`` (T × F), ``feature_names``.

Optional members: ``query_modality`` (the modality whose atoms C queries; default: the
one with the fewest atoms), ``is_yes_no(example)`` (left out of simulation items; default
never), ``answer_types()`` (``{type: [classes]}``: a simulation item offers only choices
of the prediction's type).

What precompute makes of it (``viz_engine/bundles/modality_stages.py``), for the class the
model predicts and every modality, as ``views`` whose ``scores`` have the atoms' shape
(:func:`atom_scores`): U the per-atom gradient; C, for the ``C.queries`` atoms of the query
modality with the largest |U|, the per-atom second-order gradient over each other modality
(one view per query atom); Rℓ the per-atom attribution of each shown feature; Rg the
most and least activating datapoints of each feature, each with its modalities and views;
P the sparse linear model's top features.

shapes-VQA keeps its own, older interface (``ShapesVQASource``: image + question, rendered
overlays); a source is read through this protocol when it has the members above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from .format import BundleError

__all__ = ["KINDS", "SourceModality", "DatasetSource", "is_protocol_source", "check_source", "atom_scores",
           "query_modality"]

KINDS = ("image", "text", "timeseries", "tabular", "audio", "video")


@dataclass(frozen=True)
class SourceModality:
    """One modality of a source: the model input ``name``, its ``kind``, what an atom is,
    and how many atoms make one row of the score array (``None``: a flat list)."""

    name: str
    kind: str
    atoms: str
    row: int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise BundleError(f"modality {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.row is not None and (isinstance(self.row, bool) or not isinstance(self.row, int) or self.row < 1):
            raise BundleError(f"modality {self.name!r}: row must be a positive integer or None; got {self.row!r}")
        if self.kind in ("timeseries", "image") and self.row is None:
            raise BundleError(f"modality {self.name!r}: a {self.kind} modality needs row (atoms per "
                              f"{'time step' if self.kind == 'timeseries' else 'row of patches'})")


@runtime_checkable
class DatasetSource(Protocol):
    """A dataset as ``precompute`` reads it; the module docstring says what each member gives."""

    name: str
    splits: Sequence[str]
    class_names: Sequence[str]
    modalities: Sequence[SourceModality]

    def examples(self, split: str, n: int | None = None) -> Sequence[Any]: ...

    def label(self, example: Any) -> str: ...

    def make_batch(self, adapter: Any, examples: Sequence[Any]) -> Any: ...

    def datapoint(self, example: Any) -> list[dict]: ...


_MEMBERS = ("name", "splits", "class_names", "modalities", "examples", "label", "make_batch", "datapoint")


def is_protocol_source(source: Any) -> bool:
    """Whether ``source`` is read through :class:`DatasetSource` (not the shapes-VQA interface)."""
    return isinstance(source, DatasetSource) and not hasattr(source, "image_modality")


def check_source(source: Any, adapter: Any = None) -> None:
    """A :class:`BundleError` saying what ``source`` lacks (or how it disagrees with the
    model's ``adapter``) unless it can be bundled."""
    missing = [m for m in _MEMBERS if not hasattr(source, m)]
    if missing:
        raise BundleError(f"dataset source {type(source).__name__} lacks {', '.join(missing)} "
                          "(see viz_engine.bundles.dataset_source.DatasetSource)")
    mods = list(source.modalities)
    if not mods or not all(isinstance(m, SourceModality) for m in mods):
        raise BundleError("dataset source: modalities must be a non-empty list of SourceModality")
    names = [m.name for m in mods]
    if len(set(names)) != len(names):
        raise BundleError(f"dataset source: modality names repeat: {names}")
    if adapter is not None:
        model = set(adapter.modality_names)
        if set(names) != model:
            raise BundleError(f"dataset source modalities {sorted(names)} are not the model's {sorted(model)}")
        if set(source.class_names) != set(adapter.class_names):
            raise BundleError(f"dataset classes {sorted(source.class_names)} are not the model's "
                              f"{sorted(adapter.class_names)}")
    q = getattr(source, "query_modality", None)
    if q is not None and q not in names:
        raise BundleError(f"dataset source: query_modality {q!r} is not one of its modalities {names}")


def query_modality(source: Any, batch: Any) -> str | None:
    """The modality C queries: the source's ``query_modality``, else the one with the fewest
    atoms (fields before a series, words before audio frames); None with one modality."""
    names = [m.name for m in source.modalities]
    if len(names) < 2:
        return None
    q = getattr(source, "query_modality", None)
    return q if q is not None else min(names, key=lambda n: (batch.max_atoms(n), names.index(n)))


def _round(values: np.ndarray, digits: int = 5):
    out = []
    for v in np.asarray(values, dtype=float).ravel():
        out.append(None if not np.isfinite(v) else float(f"{v:.{digits}g}"))
    return out


def atom_scores(spec: SourceModality, values) -> list | dict:
    """Per-atom scores of one datapoint (``(n_atoms,)``, NaN for padding, which is dropped)
    in the shape the modality contract gives its kind: ``timeseries``/``audio`` with
    ``row`` → ``[[float] * row] * T``; ``image`` → ``{"grid": rows × row}``; else a flat list."""
    v = np.asarray(values, dtype=float).ravel()
    keep = np.flatnonzero(np.isfinite(v))
    v = v[: keep[-1] + 1] if keep.size else v[:0]
    flat = _round(v)
    if spec.row is None:
        return flat
    if len(flat) % spec.row:
        raise BundleError(f"modality {spec.name!r}: {len(flat)} atoms do not fill rows of {spec.row}")
    rows = [flat[i:i + spec.row] for i in range(0, len(flat), spec.row)]
    return {"grid": rows} if spec.kind == "image" else rows
