"""Adapters for Hugging Face vision-language models that read detector *region features*:
LXMERT (features + boxes) and VisualBERT (features).

Modalities: ``regions`` — ``(R, feature_dim)`` region features, one atom per region,
baseline zeros (a removed region carries no feature); ``question`` — word embeddings, one
atom per token, baseline the ``[PAD]`` embedding. LXMERT's boxes ``(R, 4)`` (normalised
x0, y0, x1, y1) are an extra of ``regions``: they travel with their regions when EMAP or
DIME pair one datapoint's regions with another's question. The detector itself is outside
the model: features come precomputed, as in the paper's VQA setup.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..adapters import AdapterError, Batch, Modality, MultimodalClassifier, check_finite
from ._common import SingleStreamViews, load_local, token_atom_map

__all__ = ["LxmertAdapter", "VisualBertAdapter"]


class _RegionAdapter(MultimodalClassifier):
    needs_boxes = False

    def __init__(self, model: nn.Module, feature_dim: int, class_names: Sequence[str] | None = None):
        cfg = model.config
        n_labels = getattr(cfg, "num_qa_labels", None) or cfg.num_labels
        self.module = model.eval()
        self.class_names = tuple(class_names or [cfg.id2label.get(i, str(i)) for i in range(n_labels)])
        if len(self.class_names) != n_labels:
            raise AdapterError(f"class_names has {len(self.class_names)} names; the model has {n_labels} labels")
        self.modalities = (
            Modality("regions", "region", (None, feature_dim), "image_heatmap"),
            Modality("question", "token", (None, cfg.hidden_size), "token_highlight"),
        )

    def _word_table(self) -> nn.Embedding:
        raise NotImplementedError

    def make_batch(self, region_features: Tensor, input_ids: Tensor, attention_mask: Tensor | None = None,
                   boxes: Tensor | None = None, words: list[list[str]] | None = None) -> Batch:
        feats = torch.as_tensor(region_features, dtype=torch.float32)
        if feats.ndim != 3 or feats.shape[2] != self.modalities[0].input_shape[1]:
            raise AdapterError(f"region_features must be (B, R, {self.modalities[0].input_shape[1]}); "
                               f"got {tuple(feats.shape)}")
        check_finite(feats, "region_features")
        b, r = feats.shape[:2]
        if input_ids.ndim != 2 or input_ids.shape[0] != b:
            raise AdapterError(f"input_ids must be ({b}, L); got {tuple(input_ids.shape)}")
        extras: dict = {}
        if self.needs_boxes:
            if boxes is None:
                raise AdapterError("boxes are required: LXMERT reads each region's box (B, R, 4)")
            boxes = torch.as_tensor(boxes, dtype=torch.float32)
            if boxes.shape != (b, r, 4):
                raise AdapterError(f"boxes must be ({b}, {r}, 4); got {tuple(boxes.shape)}")
            check_finite(boxes, "boxes")
            extras["regions"] = {"boxes": boxes}
        mask = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        with torch.no_grad():
            emb = self._word_table()(input_ids)
            pad = self._word_table().weight[self.module.config.pad_token_id or 0]
        extras["question"] = {"mask": mask, "ids": input_ids}
        region_atoms = torch.arange(r)[None, :, None].expand_as(feats).clone()
        return Batch(
            inputs={"regions": feats, "question": emb},
            atoms={"regions": region_atoms, "question": token_atom_map(mask, emb)},
            extras=extras,
            atom_labels={"regions": [[f"region{i}" for i in range(r)]] * b,
                         "question": words or [[f"token{j}" for j in range(int(m.sum()))] for m in mask]},
            baselines={"question": pad.expand_as(emb).clone()},
        )

    def _mask(self, batch: Batch) -> Tensor:
        mask = batch.extras.get("question", {}).get("mask")
        if mask is None:
            raise AdapterError('batch.extras["question"]["mask"] is missing (the token attention mask)')
        return mask.long()


class LxmertAdapter(_RegionAdapter):
    """``LxmertForQuestionAnswering``: two single-modality streams, then a cross encoder."""

    needs_boxes = True

    def __init__(self, model: nn.Module, class_names: Sequence[str] | None = None):
        super().__init__(model, model.config.visual_feat_dim, class_names)

    @classmethod
    def from_pretrained(cls, directory: str, class_names: Sequence[str] | None = None) -> "LxmertAdapter":
        from transformers import LxmertForQuestionAnswering

        return cls(load_local(LxmertForQuestionAnswering, directory, "LXMERT"), class_names)

    def _word_table(self) -> nn.Embedding:
        return self.module.lxmert.embeddings.word_embeddings

    def _forward(self, batch: Batch, **kwargs):
        boxes = batch.extras.get("regions", {}).get("boxes")
        if boxes is None:
            raise AdapterError('batch.extras["regions"]["boxes"] is missing: LXMERT needs the regions\' boxes')
        return self.module(inputs_embeds=batch.inputs["question"], attention_mask=self._mask(batch),
                           visual_feats=batch.inputs["regions"], visual_pos=boxes, **kwargs)

    def logits(self, batch: Batch) -> Tensor:
        return self._forward(batch).question_answering_score

    @property
    def final_linear(self) -> nn.Linear:
        return [m for m in self.module.answer_head.modules() if isinstance(m, nn.Linear)][-1]

    def layers(self) -> dict[str, nn.Module]:
        enc = self.module.lxmert.encoder
        out = {f"cross{i}": layer for i, layer in enumerate(enc.x_layers)}
        out["pooler"] = self.module.lxmert.pooler
        return out

    @torch.no_grad()
    def cross_attentions(self, batch: Batch) -> list[Tensor]:
        """Per cross-encoder layer, ``(B, heads, L, R)``: words attending to regions (the
        two-stream model has no single token sequence, so no joint attention map)."""
        return [a.detach() for a in self._forward(batch, output_attentions=True).cross_encoder_attentions]


class VisualBertAdapter(SingleStreamViews, _RegionAdapter):
    """``VisualBertForQuestionAnswering``: one stream, the words then the regions."""

    def __init__(self, model: nn.Module, class_names: Sequence[str] | None = None):
        super().__init__(model, model.config.visual_embedding_dim, class_names)

    @classmethod
    def from_pretrained(cls, directory: str, class_names: Sequence[str] | None = None) -> "VisualBertAdapter":
        from transformers import VisualBertForQuestionAnswering

        return cls(load_local(VisualBertForQuestionAnswering, directory, "VisualBERT"), class_names)

    def _word_table(self) -> nn.Embedding:
        return self.module.visual_bert.embeddings.word_embeddings

    def _forward(self, batch: Batch, **kwargs):
        regions = batch.inputs["regions"]
        return self.module(inputs_embeds=batch.inputs["question"], attention_mask=self._mask(batch),
                           visual_embeds=regions,
                           visual_attention_mask=torch.ones(regions.shape[:2], dtype=torch.long),
                           **kwargs)

    def logits(self, batch: Batch) -> Tensor:
        return self._forward(batch).logits

    @property
    def final_linear(self) -> nn.Linear:
        return self.module.cls

    def layers(self) -> dict[str, nn.Module]:
        return {f"layer{i}": layer for i, layer in enumerate(self.module.visual_bert.encoder.layer)}

    def token_segments(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """``(segments, valid)``: 2 for the words, 1 for the regions."""
        mask = batch.extras["question"]["mask"].bool()
        b, n_words = mask.shape
        r = batch.inputs["regions"].shape[1]
        seg = torch.tensor([2] * n_words + [1] * r).expand(b, -1)
        return seg, torch.cat([mask, torch.ones(b, r, dtype=torch.bool)], 1)
