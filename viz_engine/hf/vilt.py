"""Adapter for Hugging Face ViLT classifiers (``ViltForQuestionAnswering``).

Modalities: ``image`` — ``pixel_values`` ``(3, H, W)`` as the processor makes them, one atom
per ViLT patch; ``question`` — word *embeddings* ``(L, hidden)`` (``inputs_embeds``), one atom
per token, padding −1, baseline the ``[PAD]`` embedding. Extras: the token attention mask.

The trap this adapter handles: ViLT's ``visual_embed`` draws the image patches it keeps with
``torch.multinomial`` in every forward pass — even when it keeps all of them, their order is a
fresh random permutation — so two identical calls give differently ordered attention maps and
hidden states. Every forward here runs with that draw pinned to row-major order, which makes
the model deterministic and puts token ``1 + L + p`` at patch ``p``.

Token layout (attentions, hidden states): the L text tokens, then the image ``[CLS]``, then
the patches row-major (:meth:`ViltAdapter.token_segments`).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Sequence

import torch
from torch import Tensor, nn

from ..adapters import AdapterError, Batch, Modality, MultimodalClassifier, atoms_per_patch
from ._common import SingleStreamViews, checked_inputs, load_local, token_atom_map

__all__ = ["ViltAdapter", "patches_in_order"]

_LOCK = threading.Lock()


@contextlib.contextmanager
def patches_in_order():
    """During the block, a uniform draw without replacement (ViLT's patch selection) returns
    the first indices in order; any other use of ``torch.multinomial`` is untouched."""
    original = torch.multinomial

    def in_order(input, num_samples, replacement=False, *, generator=None, out=None):
        if not replacement and input.ndim == 1 and bool((input == input[0]).all()):
            return torch.arange(num_samples, device=input.device)
        return original(input, num_samples, replacement, generator=generator)

    with _LOCK:  # the patch is process-wide: one forward at a time sets it
        torch.multinomial = in_order
        try:
            yield
        finally:
            torch.multinomial = original


class ViltAdapter(SingleStreamViews, MultimodalClassifier):
    def __init__(self, model: nn.Module, class_names: Sequence[str] | None = None):
        cfg = model.config
        self.module = model.eval()
        self.class_names = tuple(class_names or [cfg.id2label.get(i, str(i)) for i in range(cfg.num_labels)])
        if len(self.class_names) != cfg.num_labels:
            raise AdapterError(f"class_names has {len(self.class_names)} names; the model has {cfg.num_labels} labels")
        self.patch = cfg.patch_size
        self.modalities = (
            Modality("image", "patch", (3, cfg.image_size, cfg.image_size), "image_heatmap"),
            Modality("question", "token", (None, cfg.hidden_size), "token_highlight"),
        )

    @classmethod
    def from_pretrained(cls, directory: str, class_names: Sequence[str] | None = None) -> "ViltAdapter":
        """Load a fine-tuned ViLT from a local directory (eager attention, twice differentiable)."""
        from transformers import ViltForQuestionAnswering

        return cls(load_local(ViltForQuestionAnswering, directory, "ViLT"), class_names)

    # -- batches ------------------------------------------------------------------------------
    def make_batch(self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor | None = None,
                   words: list[list[str]] | None = None) -> Batch:
        pixel_values, mask = checked_inputs(self, pixel_values, input_ids, attention_mask)
        b = pixel_values.shape[0]
        table = self.module.vilt.embeddings.text_embeddings.word_embeddings
        with torch.no_grad():
            emb = table(input_ids)
            pad = table.weight[self.module.config.pad_token_id or 0]
        labels = words or [[f"token{j}" for j in range(int(m.sum()))] for m in mask]
        n_patches = (pixel_values.shape[-1] // self.patch) ** 2
        return Batch(
            inputs={"image": pixel_values, "question": emb},
            atoms={"image": atoms_per_patch(pixel_values, self.patch),
                   "question": token_atom_map(mask, emb)},
            extras={"question": {"mask": mask, "ids": input_ids}},
            atom_labels={"image": [[f"patch{p}" for p in range(n_patches)]] * b, "question": labels},
            baselines={"question": pad.expand_as(emb).clone()},
        )

    def _forward(self, batch: Batch, **kwargs):
        for name in ("image", "question"):
            if name not in batch.inputs:
                raise AdapterError(f"batch has no input for modality {name!r}")
        mask = batch.extras.get("question", {}).get("mask")
        if mask is None:
            raise AdapterError('batch.extras["question"]["mask"] is missing (the token attention mask)')
        with patches_in_order():
            return self.module(inputs_embeds=batch.inputs["question"], attention_mask=mask.long(),
                               pixel_values=batch.inputs["image"], **kwargs)

    # -- protocol -----------------------------------------------------------------------------
    def logits(self, batch: Batch) -> Tensor:
        return self._forward(batch).logits

    @property
    def final_linear(self) -> nn.Linear:
        return [m for m in self.module.classifier.modules() if isinstance(m, nn.Linear)][-1]

    def layers(self) -> dict[str, nn.Module]:
        out = {f"layer{i}": layer for i, layer in enumerate(self.module.vilt.encoder.layer)}
        out["pooler"] = self.module.vilt.pooler
        return out

    # -- transformer views (attentions, hidden_states: SingleStreamViews) ----------------------------
    def token_segments(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """``(segments, valid)`` ``(B, T)``: 2 for words, 0 for the image ``[CLS]``, 1 for patches."""
        mask = batch.extras["question"]["mask"].bool()
        b, n_words = mask.shape
        n_patches = (batch.inputs["image"].shape[-1] // self.patch) ** 2
        seg = torch.tensor([2] * n_words + [0] + [1] * n_patches).expand(b, -1)
        return seg, torch.cat([mask, torch.ones(b, 1 + n_patches, dtype=torch.bool)], 1)
