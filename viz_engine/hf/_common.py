"""What the Hugging Face adapters share: checking a batch's images and token ids."""

from __future__ import annotations

import torch
from torch import Tensor

from ..adapters import AdapterError, check_finite


def checked_inputs(adapter, pixel_values, input_ids: Tensor, attention_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """``(pixel_values float32, mask bool)`` after checking shapes and values against the adapter."""
    pixel_values = torch.as_tensor(pixel_values, dtype=torch.float32)
    b = pixel_values.shape[0]
    expected = (b, *adapter.modalities[0].input_shape)
    if tuple(pixel_values.shape) != expected:
        raise AdapterError(f"pixel_values has shape {tuple(pixel_values.shape)}; expected {expected}")
    check_finite(pixel_values, "pixel_values")
    if input_ids.ndim != 2 or input_ids.shape[0] != b:
        raise AdapterError(f"input_ids must be ({b}, L); got {tuple(input_ids.shape)}")
    mask = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    if mask.shape != input_ids.shape:
        raise AdapterError(f"attention_mask {tuple(mask.shape)} must match input_ids {tuple(input_ids.shape)}")
    return pixel_values, mask


def token_atom_map(mask: Tensor, embeddings: Tensor) -> Tensor:
    """One atom per real token (its position), −1 for padding, shaped like ``embeddings``."""
    positions = torch.arange(mask.shape[1])[None, :].expand_as(mask)
    atoms = torch.where(mask, positions, torch.full_like(positions, -1))
    return atoms[:, :, None].expand_as(embeddings).clone()


def load_local(hf_class, directory: str, label: str):
    """``hf_class.from_pretrained`` from a local directory only, with eager attention (whose
    second derivative exists); a clear error when the directory holds no such model."""
    try:
        return hf_class.from_pretrained(directory, local_files_only=True, attn_implementation="eager")
    except OSError as exc:
        raise AdapterError(f"no {label} model could be read from {directory!r}: {exc}") from None


class SingleStreamViews:
    """Attention maps and hidden states of a single-stream model with a ``_forward``."""

    @torch.no_grad()
    def attentions(self, batch) -> list[Tensor]:
        return [a.detach() for a in self._forward(batch, output_attentions=True).attentions]

    @torch.no_grad()
    def hidden_states(self, batch) -> list[Tensor]:
        return [h.detach() for h in self._forward(batch, output_hidden_states=True).hidden_states]
