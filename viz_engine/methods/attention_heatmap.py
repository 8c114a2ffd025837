"""Transformer views: where one token attends in the other modality, per layer and head.

Signature::

    attention_heatmap(attentions, query, keys) -> dict(per_head (layers, heads, K),
                                                       mean (layers, K), share (layers, heads))

* ``attentions``: one ``(B, heads, T, T)`` per layer; only row 0 of the batch is read
  (explain one datapoint at a time).
* ``query``: the index of the token looked from (a word, or an image patch).
* ``keys``: the indices of the other modality's tokens (the 9 patches, row-major, for a
  word; the words for a patch), in the order the heatmap is drawn.

``per_head`` holds the attention weights from the query to each key, renormalised over
``keys`` so heads that barely look at the other modality still show where they look;
``share`` says how much of each head's attention went to ``keys`` at all, and ``mean``
averages the renormalised weights over heads.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..adapters import AdapterError

__all__ = ["attention_heatmap"]


def attention_heatmap(attentions: Sequence, query: int, keys: Sequence[int]) -> dict:
    if len(attentions) == 0:
        raise AdapterError("attentions must hold at least one layer")
    layers = [a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a) for a in attentions]
    t = layers[0].shape[-1]
    keys = [int(k) for k in keys]
    if not keys:
        raise AdapterError("keys must name at least one token of the other modality")
    if not 0 <= query < t or any(not 0 <= k < t for k in keys):
        raise AdapterError(f"query {query} or keys {keys} are outside the {t} tokens")
    if query in keys:
        raise AdapterError("the query token must not be one of the keys (the other modality)")
    raw = np.stack([a[0][:, query][:, keys] for a in layers]).astype(np.float64)  # (layers, heads, K)
    share = raw.sum(-1)
    per_head = np.divide(raw, share[..., None], out=np.zeros_like(raw), where=share[..., None] > 0)
    return {"per_head": per_head, "mean": per_head.mean(axis=1), "share": share}
