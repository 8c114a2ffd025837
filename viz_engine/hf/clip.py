"""Adapter for Hugging Face CLIP as a scorer of image–text pairs (the paper's retrieval
setting): one logit, ``match`` = logit_scale · cos(image embedding, text embedding).

Loaded with eager attention: the default (SDPA) attention has no second derivative, which
second-order gradients need. CLIP's text tower accepts only token ids, so the adapter feeds
the differentiable word embeddings through a forward hook on the token-embedding table (the
ids still give the sequence its length and its end-of-text position for pooling).

CLIP has no classifier layer, so there is no P stage; Rℓ reads ``image_embeds`` /
``text_embeds`` (the projections' outputs) or any encoder layer.
"""

from __future__ import annotations


import torch
from torch import Tensor, nn

from ..adapters import AdapterError, Batch, Modality, MultimodalClassifier, atoms_per_patch
from ._common import checked_inputs, load_local, token_atom_map

__all__ = ["ClipAdapter"]


class ClipAdapter(MultimodalClassifier):
    class_names = ("match",)
    default_layer = "image_embeds"

    def __init__(self, model: nn.Module):
        self.module = model.eval()
        vcfg, tcfg = model.config.vision_config, model.config.text_config
        self.patch = vcfg.patch_size
        self.modalities = (
            Modality("image", "patch", (3, vcfg.image_size, vcfg.image_size), "image_heatmap"),
            Modality("text", "token", (None, tcfg.hidden_size), "token_highlight"),
        )

    @classmethod
    def from_pretrained(cls, directory: str) -> "ClipAdapter":
        from transformers import CLIPModel

        return cls(load_local(CLIPModel, directory, "CLIP"))

    def make_batch(self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor | None = None,
                   words: list[list[str]] | None = None) -> Batch:
        pixel_values, mask = checked_inputs(self, pixel_values, input_ids, attention_mask)
        b = pixel_values.shape[0]
        with torch.no_grad():
            emb = self.module.text_model.embeddings.token_embedding(input_ids)
        n_patches = (pixel_values.shape[-1] // self.patch) ** 2
        return Batch(
            inputs={"image": pixel_values, "text": emb},
            atoms={"image": atoms_per_patch(pixel_values, self.patch),
                   "text": token_atom_map(mask, emb)},
            extras={"text": {"mask": mask, "ids": input_ids}},
            atom_labels={"image": [[f"patch{p}" for p in range(n_patches)]] * b,
                         "text": words or [[f"token{j}" for j in range(int(m.sum()))] for m in mask]},
        )

    def _embeddings(self, batch: Batch) -> tuple[Tensor, Tensor]:
        extras = batch.extras.get("text", {})
        if "ids" not in extras or "mask" not in extras:
            raise AdapterError('batch.extras["text"] needs "ids" and "mask"')
        table = self.module.text_model.embeddings.token_embedding
        words = batch.inputs["text"]
        handle = table.register_forward_hook(lambda _m, _a, _out: words)  # our embeddings, not the lookup
        try:
            text = self.module.get_text_features(input_ids=extras["ids"], attention_mask=extras["mask"].long())
        finally:
            handle.remove()
        image = self.module.get_image_features(pixel_values=batch.inputs["image"])
        if not isinstance(text, Tensor):
            text = text.pooler_output
        if not isinstance(image, Tensor):
            image = image.pooler_output
        return image, text

    def logits(self, batch: Batch) -> Tensor:
        image, text = self._embeddings(batch)
        image = image / image.norm(dim=-1, keepdim=True)
        text = text / text.norm(dim=-1, keepdim=True)
        return (self.module.logit_scale.exp() * (image * text).sum(-1))[:, None]

    @property
    def final_linear(self) -> nn.Linear:
        raise AdapterError("CLIP has no classifier layer (no P stage); use layer='image_embeds' or 'text_embeds'")

    def layers(self) -> dict[str, nn.Module]:
        out = {"image_embeds": self.module.visual_projection, "text_embeds": self.module.text_projection}
        out.update({f"vision_layer{i}": l for i, l in enumerate(self.module.vision_model.encoder.layers)})
        out.update({f"text_layer{i}": l for i, l in enumerate(self.module.text_model.encoder.layers)})
        return out

    def layer_module(self, layer: str | None = None) -> tuple[str, nn.Module, bool]:
        """Every layer, the default ``image_embeds`` included, is the output of ``layers()[layer]``
        (CLIP has no final linear layer whose input would be the representation)."""
        layer = layer or self.default_layer
        known = self.layers()
        if layer not in known:
            raise AdapterError(f"layer={layer!r} is unknown; layers: {list(known)}")
        return layer, known[layer], False

    def layer_names(self) -> list[str]:
        return list(self.layers())
