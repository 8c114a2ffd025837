"""The one protocol every analysis method speaks: "a multimodal classifier we can explain".

A model is wrapped in a :class:`MultimodalClassifier`. Methods never call the raw
``nn.Module``; they call the adapter with a :class:`Batch`:

* ``adapter.modalities`` — named modalities, each a :class:`Modality` saying what its atoms
  are (tokens, pixels, patches, regions, time steps, static fields) and how to render them;
* ``adapter.logits(batch)`` — ``(B, C)`` logits from differentiable inputs (token
  *embeddings*, never ids, so gradients reach words);
* ``adapter.representation(batch, layer)`` — ``(B, d)`` features at any named layer
  (default: the input of the final linear layer, the "penultimate" features P uses);
* ``adapter.final_linear`` — the last ``nn.Linear`` (for P);
* optionally ``adapter.encode(name, x)`` / ``adapter.fuse(encodings)`` for late-fusion models,
  which lets EMAP and DIME encode each modality once instead of once per pair.

Atoms are described by an *atom map*: a long tensor with the shape of the modality's input
in which each element holds the index of the atom it belongs to (``-1``: not an atom, e.g.
padding). Per-atom scores are sums over an atom's elements; perturbing an atom replaces
its elements by the modality's baseline. The same idea as Captum's feature masks, so any
granularity (pixels for heatmaps, patches for LIME, words for text) is one tensor away.

The package, by concept (everything is imported from ``viz_engine.adapters``):

* ``errors``         — :class:`AdapterError`, ``check_finite``
* ``batch``          — :class:`Modality`, :class:`Batch`
* ``atoms``          — atom maps, per-atom sums, the one perturbation (``mask_atoms``)
* ``targets``        — :class:`Label`, :class:`LogitSum`, :class:`Feature` and their scalars
* ``representation`` — reading a layer: the one path of ``representation``,
  ``logits_and_representation`` and ``Feature`` targets
* ``classifier``     — :class:`MultimodalClassifier`, the base of every adapter
* ``torch_module``   — :class:`TorchModuleAdapter` for a plain ``nn.Module``
"""

from .atoms import (
    atoms_per_element,
    atoms_per_patch,
    atoms_per_pixel,
    atoms_per_position,
    mask_atoms,
    per_atom_sum,
    perturb_one_row,
)
from .batch import ATOM_KINDS, Batch, Modality
from .classifier import MultimodalClassifier
from .errors import AdapterError, check_finite
from .representation import read_layer
from .targets import (
    Feature,
    Label,
    LogitSum,
    Target,
    resolve_target,
    scalars_from_logits,
    select_target,
    target_scalars,
)
from .torch_module import TorchModuleAdapter

__all__ = [
    "Modality",
    "Batch",
    "Target",
    "Label",
    "LogitSum",
    "Feature",
    "MultimodalClassifier",
    "TorchModuleAdapter",
    "AdapterError",
    "read_layer",
    "target_scalars",
    "scalars_from_logits",
    "per_atom_sum",
    "check_finite",
    "mask_atoms",
    "perturb_one_row",
    "select_target",
    "resolve_target",
    "atoms_per_element",
    "atoms_per_position",
    "atoms_per_pixel",
    "atoms_per_patch",
    "ATOM_KINDS",
]
