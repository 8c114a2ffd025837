"""Two reference models for Shapes-VQA and their adapters.

* **Early fusion** (:class:`EarlyFusionVQA`): one small transformer with joint self-attention
  over ``[CLS]`` + 9 image patches (16 × 16 pixels, one per grid cell) + the question's words,
  with learned position and type embeddings; the answer is read from the ``[CLS]`` output
  through an MLP (the penultimate features) and a final ``nn.Linear``.
* **Late fusion** (:class:`LateFusionVQA`), like the paper's CNN + LSTM baseline: a small CNN
  whose feature map is globally pooled (so it keeps *what* is in the image but not *where*)
  and an LSTM over the words, encoded separately, concatenated, then an MLP and a final
  ``nn.Linear``.

Both use GELU / sigmoid / tanh / softmax only, so logits are twice differentiable with
non-zero second derivatives (second-order gradients of C need that). Both take the question
as *word embeddings* ``(B, L, D)`` so gradients reach words; ids never pass through ``logits``.

``load_pretrained("early" | "late")`` returns an adapter with the shipped weights (CPU, eval
mode); :mod:`viz_engine.training.shapes_vqa` retrains one from scratch with fixed seeds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from viz_engine.adapters import (
    AdapterError,
    Batch,
    Modality,
    MultimodalClassifier,
    atoms_per_pixel,
    check_finite,
)
from viz_engine.data import shapes_vqa as data

__all__ = [
    "EARLY_CONFIG",
    "LATE_CONFIG",
    "EarlyFusionVQA",
    "LateFusionVQA",
    "ShapesVQAAdapter",
    "EarlyFusionShapesVQAAdapter",
    "LateFusionShapesVQAAdapter",
    "build_adapter",
    "load_pretrained",
    "weights_path",
    "metrics_path",
    "KINDS",
    "DATA_VERSION",
]

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MAX_TOKENS = 16

EARLY_CONFIG = dict(dim=64, heads=4, depth=3, mlp_dim=128, patch=16, patch_hidden=128)
LATE_CONFIG = dict(word_dim=32, lstm_dim=64, cnn_channels=(32, 64), hidden=128, penultimate=64)

# -- the two networks -----------------------------------------------------------------------


class SelfAttention(nn.Module):
    """Multi-head softmax self-attention with a key padding mask (twice differentiable).

    The last forward's attention weights ``(B, heads, T, T)`` are kept in ``last_attention``
    when ``keep_attention`` is set (for the transformer views)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise AdapterError(f"dim={dim} is not divisible by heads={heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.keep_attention = False
        self.last_attention: Tensor | None = None

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if not torch.is_grad_enabled() and not self.keep_attention:
            # scoring only (EMAP, LIME, features): PyTorch's fused kernel, same numbers; the
            # explicit path below stays for gradients, which C needs twice.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
            return self.out(out.transpose(1, 2).reshape(b, t, d))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        attn = torch.softmax(scores, dim=-1)
        if self.keep_attention:
            self.last_attention = attn.detach()
        return self.out((attn @ v).transpose(1, 2).reshape(b, t, d))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: x + attn(LN x), then x + MLP(LN x) with GELU."""

    def __init__(self, dim: int, heads: int, mlp_dim: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        x = x + self.attention(self.norm1(x), key_mask)
        return x + self.mlp(self.norm2(x))


class EarlyFusionVQA(nn.Module):
    """Joint transformer over ``[CLS]`` + image patches + words.

    forward(image ``(B, 3, 48, 48)`` in [0, 1], words ``(B, L, D)`` embeddings, mask ``(B, L)``
    bool, True = real token) -> logits ``(B, n_classes)``.
    """

    def __init__(self, n_classes: int = len(data.CLASS_NAMES), vocab_size: int = len(data.VOCAB),
                 dim: int = 64, heads: int = 4, depth: int = 3, mlp_dim: int = 128,
                 patch: int = 16, patch_hidden: int = 128, image_size: int = data.IMAGE_SIZE,
                 max_tokens: int = MAX_TOKENS):
        super().__init__()
        self.patch, self.image_size, self.max_tokens = patch, image_size, max_tokens
        self.n_patches = (image_size // patch) ** 2
        self.word_embedding = nn.Embedding(vocab_size, dim)
        # Words enter the residual stream through a learned projection: without it, every
        # block (pre-LayerNorm) would be blind to shifting a word embedding along (1, …, 1),
        # so Σ_d ∂f/∂word[d] would be exactly 0 and "sum" second-order gradients from words
        # would vanish.
        self.word_projection = nn.Linear(dim, dim)
        self.patch_embed = nn.Sequential(
            nn.Linear(3 * patch * patch, patch_hidden), nn.GELU(), nn.Linear(patch_hidden, dim)
        )
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.patch_position = nn.Parameter(torch.zeros(1, self.n_patches, dim))
        self.word_position = nn.Parameter(torch.zeros(1, max_tokens, dim))
        self.type_embedding = nn.Embedding(3, dim)  # 0 = [CLS], 1 = image, 2 = text
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.GELU())
        self.classifier = nn.Linear(dim, n_classes)
        for p in (self.cls, self.patch_position, self.word_position):
            nn.init.normal_(p, std=0.02)

    def patches(self, image: Tensor) -> Tensor:
        """``(B, 3, H, W)`` -> ``(B, n_patches, 3·patch²)`` (row-major patches)."""
        b, c, h, w = image.shape
        p = self.patch
        x = image.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(b, (h // p) * (w // p), c * p * p)

    def embed_image(self, image: Tensor) -> Tensor:
        """``(B, n_patches, dim)`` image tokens: the part of the network that sees the image alone."""
        return self.patch_embed(self.patches(image - 0.5)) + self.patch_position + self.type_embedding.weight[1]

    def embed_words(self, words: Tensor) -> Tensor:
        """``(B, L, dim)`` word tokens: the part of the network that sees the question alone."""
        n_words = words.shape[1]
        if n_words > self.max_tokens:
            raise AdapterError(f"question has {n_words} tokens; the model reads at most {self.max_tokens}")
        return self.word_projection(words) + self.word_position[:, :n_words] + self.type_embedding.weight[2]

    def forward(self, image: Tensor, words: Tensor, mask: Tensor) -> Tensor:
        return self.fuse_tokens(self.embed_image(image), self.embed_words(words), mask)

    def fuse_tokens(self, img: Tensor, txt: Tensor, mask: Tensor) -> Tensor:
        """Logits from image tokens, word tokens and the word padding mask (the joint part)."""
        b = img.shape[0]
        cls = (self.cls + self.type_embedding.weight[0]).expand(b, 1, -1)
        x = torch.cat([cls, img, txt], dim=1)
        key_mask = torch.cat(
            [torch.ones(b, 1 + self.n_patches, dtype=torch.bool, device=mask.device), mask.bool()], 1
        )
        for block in self.blocks:
            x = block(x, key_mask)
        return self.classifier(self.head(self.norm(x[:, 0])))


class ImageEncoder(nn.Module):
    """Small CNN: a 4×4 stride-4 conv (one vector per 4×4 block) and a 3×3 stride-2 conv, each
    with GELU, then global average pooling -> ``(B, channels[-1])``. Pooling keeps what is in
    the scene but not where, as in the paper's CNN + LSTM baseline."""

    def __init__(self, channels: Sequence[int] = (32, 64)):
        super().__init__()
        c1, c2 = channels
        self.conv = nn.Sequential(
            nn.Conv2d(3, c1, 4, stride=4), nn.GELU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.GELU(),
        )

    def forward(self, image: Tensor) -> Tensor:
        return self.conv(image - 0.5).mean(dim=(2, 3))


class QuestionEncoder(nn.Module):
    """LSTM over word embeddings; the encoding is the hidden state at the last real token."""

    def __init__(self, word_dim: int, hidden: int):
        super().__init__()
        self.lstm = nn.LSTM(word_dim, hidden, batch_first=True)

    def forward(self, words: Tensor, mask: Tensor) -> Tensor:
        out, _ = self.lstm(words)
        last = (mask.long().sum(1) - 1).clamp(min=0)
        return out[torch.arange(out.shape[0], device=out.device), last]


class LateFusionVQA(nn.Module):
    """CNN image encoding ⊕ LSTM question encoding -> MLP (GELU) -> final linear.

    forward(image, words, mask) as :class:`EarlyFusionVQA`; ``fuse(image_code, question_code)``
    is the part after the encoders.
    """

    def __init__(self, n_classes: int = len(data.CLASS_NAMES), vocab_size: int = len(data.VOCAB),
                 word_dim: int = 32, lstm_dim: int = 64, cnn_channels: Sequence[int] = (32, 64),
                 hidden: int = 128, penultimate: int = 64):
        super().__init__()
        self.word_embedding = nn.Embedding(vocab_size, word_dim)
        self.image_encoder = ImageEncoder(cnn_channels)
        self.question_encoder = QuestionEncoder(word_dim, lstm_dim)
        self.fusion = nn.Sequential(
            nn.Linear(cnn_channels[-1] + lstm_dim, hidden), nn.GELU(),
            nn.Linear(hidden, penultimate), nn.GELU(),
        )
        self.classifier = nn.Linear(penultimate, n_classes)

    def fuse(self, image_code: Tensor, question_code: Tensor) -> Tensor:
        return self.classifier(self.fusion(torch.cat([image_code, question_code], dim=1)))

    def forward(self, image: Tensor, words: Tensor, mask: Tensor) -> Tensor:
        return self.fuse(self.image_encoder(image), self.question_encoder(words, mask))


# -- adapters --------------------------------------------------------------------------------------


class ShapesVQAAdapter(MultimodalClassifier):
    """Adapter of a Shapes-VQA model (early fusion by default).

    Modalities: ``image`` ``(3, 48, 48)`` floats in [0, 1], one atom per pixel, baseline = the
    background colour (removing a pixel paints it background); ``question`` ``(L, D)`` word
    embeddings, one atom per real token (padding -1), baseline = the ``[PAD]`` embedding;
    the padding mask is ``batch.extras["question"]["mask"]`` (bool ``(B, L)``), the ids are
    ``batch.extras["question"]["ids"]``.
    """

    class_names = data.CLASS_NAMES

    def __init__(self, module: EarlyFusionVQA | LateFusionVQA):
        self.module = module.eval()
        dim = module.word_embedding.embedding_dim
        self.modalities = (
            Modality("image", "pixel", (3, data.IMAGE_SIZE, data.IMAGE_SIZE), "image_heatmap"),
            Modality("question", "token", (None, dim), "token_highlight"),
        )
        self._pixel_labels = [f"pixel(y={y},x={x})" for y in range(data.IMAGE_SIZE) for x in range(data.IMAGE_SIZE)]

    # -- batches --------------------------------------------------------------------------
    def make_batch(self, examples: Sequence[data.Example]) -> Batch:
        """A :class:`Batch` from dataset examples; questions padded to the longest one.

        inputs: image ``(B, 3, 48, 48)``, question ``(B, L, D)`` embeddings (no grad).
        """
        if len(examples) == 0:
            raise AdapterError("examples must not be empty")
        longest = max(len(e.tokens) for e in examples)
        if longest > MAX_TOKENS:
            raise AdapterError(f"examples: a question has {longest} tokens; at most {MAX_TOKENS}")
        pad_id = data.VOCAB.index(data.PAD)
        ids = torch.full((len(examples), longest), pad_id, dtype=torch.long)
        for i, e in enumerate(examples):
            ids[i, : len(e.tokens)] = torch.tensor(data.token_ids(e.tokens))
        mask = ids != pad_id
        images = torch.from_numpy(np.stack([e.image for e in examples])).permute(0, 3, 1, 2)
        return self.batch_from_tensors(
            images.float() / 255.0, ids, mask, [list(e.tokens) for e in examples]
        )

    def batch_from_tensors(self, images: Tensor, ids: Tensor, mask: Tensor,
                           words: list[list[str]] | None = None) -> Batch:
        """A :class:`Batch` from images ``(B, 3, 48, 48)`` in [0, 1], token ids ``(B, L)`` and
        a bool mask ``(B, L)`` (True = real token, padding at the end)."""
        b = images.shape[0]
        expected = (b, *self.modalities[0].input_shape)
        if tuple(images.shape) != expected:
            raise AdapterError(f"images has shape {tuple(images.shape)}; expected {expected}")
        if ids.shape != mask.shape or ids.shape[0] != b:
            raise AdapterError(f"ids {tuple(ids.shape)} and mask {tuple(mask.shape)} must both be ({b}, L)")
        check_finite(images, "images")
        with torch.no_grad():
            emb = self.module.word_embedding(ids)
            pad = self.module.word_embedding.weight[data.VOCAB.index(data.PAD)]
        positions = torch.arange(ids.shape[1])[None, :].expand_as(ids)
        token_atoms = torch.where(mask.bool(), positions, torch.full_like(positions, -1))
        if words is None:
            words = [[data.VOCAB[i] for i in row[m].tolist()] for row, m in zip(ids, mask.bool())]
        background = torch.tensor(data.BACKGROUND_RGB, dtype=torch.float32) / 255.0
        return Batch(
            inputs={"image": images.float(), "question": emb},
            atoms={
                "image": atoms_per_pixel(images),
                "question": token_atoms[:, :, None].expand_as(emb).clone(),
            },
            extras={"question": {"mask": mask.bool(), "ids": ids}},
            atom_labels={"image": [self._pixel_labels] * b, "question": words},
            baselines={
                "image": background[None, :, None, None].expand_as(images).clone(),
                "question": pad.expand_as(emb).clone(),
            },
        )

    @staticmethod
    def labels(examples: Sequence[data.Example]) -> Tensor:
        """``(B,)`` long class indices of the examples' answers."""
        return torch.from_numpy(data.answer_indices(list(examples)))

    def _unpack(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        for name in ("image", "question"):
            if name not in batch.inputs:
                raise AdapterError(f"batch has no input for modality {name!r}")
        mask = batch.extras.get("question", {}).get("mask")
        if mask is None:
            raise AdapterError('batch.extras["question"]["mask"] is missing (the padding mask)')
        words = batch.inputs["question"]
        if words.ndim != 3 or words.shape[2] != self.modalities[1].input_shape[1]:
            raise AdapterError(f"question input has shape {tuple(words.shape)}; expected (B, L, "
                               f"{self.modalities[1].input_shape[1]})")
        if mask.shape != words.shape[:2]:
            raise AdapterError(f"question mask has shape {tuple(mask.shape)}; expected {tuple(words.shape[:2])}")
        return batch.inputs["image"], words, mask

    # -- protocol -----------------------------------------------------------------------------
    def logits(self, batch: Batch) -> Tensor:
        return self.module(*self._unpack(batch))

    @property
    def final_linear(self) -> nn.Linear:
        return self.module.classifier

    def layers(self) -> dict[str, nn.Module]:
        m = self.module
        out: dict[str, nn.Module] = {"patch_embed": m.patch_embed, "word_projection": m.word_projection}
        out.update({f"block{i}": blk for i, blk in enumerate(m.blocks)})
        out["head"] = m.head
        return out

    def token_segments(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """``(segments, valid)``, each ``(B, T)``: 0 for ``[CLS]``, 1 for the 9 patches, 2 for
        words (``viz_engine.methods.attention_statistics``); valid is False for padding."""
        mask = batch.extras["question"]["mask"].bool()
        b, n_words = mask.shape
        n_patch = self.module.n_patches
        seg = torch.tensor([0] + [1] * n_patch + [2] * n_words).expand(b, -1)
        return seg, torch.cat([torch.ones(b, 1 + n_patch, dtype=torch.bool), mask], 1)

    @torch.no_grad()
    def hidden_states(self, batch: Batch) -> list[Tensor]:
        """Token states ``(B, T, dim)`` after the embeddings and after every block (tokens in
        the order of :meth:`attentions`)."""
        m = self.module
        image, words, mask = self._unpack(batch)
        states: list[Tensor] = []
        hooks = [blk.register_forward_hook(lambda _m, _a, out: states.append(out.detach())) for blk in m.blocks]
        try:
            b = image.shape[0]
            x = torch.cat([(m.cls + m.type_embedding.weight[0]).expand(b, 1, -1), m.embed_image(image),
                           m.embed_words(words)], dim=1)
            m.fuse_tokens(m.embed_image(image), m.embed_words(words), mask)
        finally:
            for h in hooks:
                h.remove()
        return [x.detach(), *states]

    def attentions(self, batch: Batch) -> list[Tensor]:
        """Attention weights of every block, each ``(B, heads, T, T)`` with tokens ordered
        ``[CLS]``, 9 patches (row-major), then the ``L`` words (early fusion only)."""
        attns = [blk.attention for blk in self.module.blocks]
        for a in attns:
            a.keep_attention = True
        try:
            with torch.no_grad():
                self.logits(batch)
            return [a.last_attention for a in attns]
        finally:
            for a in attns:
                a.keep_attention, a.last_attention = False, None


class EarlyFusionShapesVQAAdapter(ShapesVQAAdapter):
    """Adapter of :class:`EarlyFusionVQA`, with ``encode`` / ``fuse`` at the token embeddings.

    The unimodal front of the transformer (the patch MLP, the word projection, positions)
    sees one modality at a time, so EMAP and DIME compute it N times instead of N² and only
    the joint blocks run per pair. ``encode("question")`` carries the padding mask as a last
    channel (1 = real token), so a question's encoding travels with its mask.
    """

    def encode(self, modality: str, batch: Batch) -> Tensor:
        image, words, mask = self._unpack(batch)
        if modality == "image":
            return self.module.embed_image(image)
        if modality == "question":
            return torch.cat([self.module.embed_words(words), mask[..., None].to(words.dtype)], dim=-1)
        raise AdapterError(f"modality={modality!r} is unknown; this model has {list(self.modality_names)}")

    def fuse(self, encodings: Mapping[str, Tensor]) -> Tensor:
        missing = {"image", "question"} - set(encodings)
        if missing:
            raise AdapterError(f"encodings lack {sorted(missing)}")
        question = encodings["question"]
        return self.module.fuse_tokens(encodings["image"], question[..., :-1], question[..., -1] > 0.5)


class LateFusionShapesVQAAdapter(ShapesVQAAdapter):
    """Adapter of :class:`LateFusionVQA`: also ``encode`` / ``fuse`` (logits == fuse(encode))."""

    def layers(self) -> dict[str, nn.Module]:
        m = self.module
        return {"image_encoder": m.image_encoder, "question_encoder": m.question_encoder, "fusion": m.fusion}

    def encode(self, modality: str, batch: Batch) -> Tensor:
        """``(B, 64)`` encoding of one modality alone."""
        image, words, mask = self._unpack(batch) if modality in ("image", "question") else (None,) * 3
        if modality == "image":
            return self.module.image_encoder(image)
        if modality == "question":
            return self.module.question_encoder(words, mask)
        raise AdapterError(f"modality={modality!r} is unknown; this model has {list(self.modality_names)}")

    def fuse(self, encodings: Mapping[str, Tensor]) -> Tensor:
        missing = {"image", "question"} - set(encodings)
        if missing:
            raise AdapterError(f"encodings lack {sorted(missing)}")
        return self.module.fuse(encodings["image"], encodings["question"])

    def attentions(self, batch: Batch) -> list[Tensor]:
        raise AdapterError("the late-fusion model has no attention")

    def hidden_states(self, batch: Batch) -> list[Tensor]:
        raise AdapterError("the late-fusion model has no joint token states")

    def token_segments(self, batch: Batch) -> tuple[Tensor, Tensor]:
        raise AdapterError("the late-fusion model has no joint token sequence")


# -- construction, weights, training ------------------------------------------------------------


KINDS = ("early", "late", "grounded")
# the question set (``data.load_split(..., version=…)``) each kind is trained on: "grounded"
# is the early-fusion transformer trained on the version-2 questions, which need each phrase
# grounded in its own object (issue 20)
DATA_VERSION = {"early": 1, "late": 1, "grounded": 2}


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise AdapterError(f"kind={kind!r} is not one of {', '.join(repr(k) for k in KINDS)}")
    return kind


def build_adapter(kind: str) -> ShapesVQAAdapter:
    """A freshly initialised adapter (call ``torch.manual_seed`` first for reproducibility)."""
    if _check_kind(kind) in ("early", "grounded"):
        return EarlyFusionShapesVQAAdapter(EarlyFusionVQA(**EARLY_CONFIG))
    return LateFusionShapesVQAAdapter(LateFusionVQA(**LATE_CONFIG))


def weights_path(kind: str) -> Path:
    return WEIGHTS_DIR / f"shapes_vqa_{_check_kind(kind)}.pt"


def metrics_path(kind: str) -> Path:
    return WEIGHTS_DIR / f"shapes_vqa_{_check_kind(kind)}.json"


def load_pretrained(kind: str = "early") -> ShapesVQAAdapter:
    """The adapter with the shipped weights of ``kind`` ("early" | "late" | "grounded"), on
    CPU, eval mode."""
    path = weights_path(kind)
    if not path.exists():
        raise AdapterError(f"no shipped weights at {path}; run python -m viz_engine.training.shapes_vqa {kind}")
    adapter = build_adapter(kind)
    state = torch.load(path, map_location="cpu", weights_only=True)
    adapter.module.load_state_dict(state)
    adapter.module.eval()
    return adapter
