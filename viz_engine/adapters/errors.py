"""The engine's one error type, and the input check every entry point shares."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["AdapterError", "check_finite"]


class AdapterError(ValueError):
    """Bad input to the engine: the message names the argument at fault."""


def check_finite(x: Tensor, what: str) -> None:
    if torch.is_floating_point(x) and not torch.isfinite(x).all():
        raise AdapterError(f"{what} contains NaN or infinite values")
