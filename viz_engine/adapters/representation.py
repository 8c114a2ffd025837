"""Reading a layer: the one path by which every adapter gets "the representation".

``representation``, ``logits_and_representation`` and every ``Feature`` target (Rℓ) go
through :func:`read_layer`: a forward hook on the layer's module, one forward pass, and an
:class:`AdapterError` that names the layer when the forward pass never runs that module (a
branch the model does not take, a module built but unused), never an ``IndexError`` deep
inside a method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor, nn

from .errors import AdapterError

if TYPE_CHECKING:
    from .batch import Batch
    from .classifier import MultimodalClassifier

__all__ = ["read_layer", "pool_features"]


def read_layer(adapter: "MultimodalClassifier", batch: "Batch", layer: str, module: nn.Module,
               read_input: bool) -> tuple[Tensor, Tensor]:
    """Logits ``(B, C)`` and the features ``(B, d)`` at ``layer``, in one forward pass.

    module:     the module that holds the layer: its output is read, or with ``read_input``
                its first positional input (the default layer is the input of the final
                linear layer).
    The last call of the module in the forward pass is the one read; a tuple output is read
    at its first element; see :func:`pool_features` for outputs with more than two axes.
    """
    captured: list = []

    def hook(_module, args, output):
        captured.append((args[0] if args else None) if read_input else output)

    handle = module.register_forward_hook(hook)
    try:
        logits = adapter.logits(batch)
    finally:
        handle.remove()
    if not captured:
        raise AdapterError(
            f"layer={layer!r} was not reached by the forward pass: the model never ran its "
            f"{type(module).__name__} on this batch, so it has no representation there; "
            f"read a layer the forward pass goes through"
        )
    out = captured[-1]
    if isinstance(out, tuple):
        out = out[0] if out else None
    if not isinstance(out, Tensor):
        what = "input" if read_input else "output"
        raise AdapterError(f"layer={layer!r} has no tensor {what} to read (got {type(out).__name__})")
    return logits, pool_features(out)


def pool_features(out: Tensor) -> Tensor:
    """``(B, d)`` from a layer's output: axes between the batch and the last (a transformer
    block's token axis, a feature map's positions) are mean-pooled."""
    if out.ndim > 2:
        out = out.mean(dim=tuple(range(1, out.ndim - 1)))
    return out
