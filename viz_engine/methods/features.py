"""The feature matrix M_z of a dataset: representations and logits of every datapoint.

P fits a sparse linear model on it, Rg ranks datapoints by one of its columns, model
debugging regresses errors on it. Computing it is a forward pass over the whole dataset, so
it is done once, in chunks without gradients, and optionally cached on disk.

Cache: ``cache_path`` is a directory; the arrays go to ``features_<key>.npz`` where ``key``
is the SHA-256 of (format version, adapter class, layer name, every ``state_dict`` entry's
name, dtype, shape and bytes, and a data fingerprint). The data fingerprint of a
:class:`Batch` is its row count plus the bytes of its inputs and extras; an iterable of
batches cannot be fingerprinted without consuming it, so the caller names it with
``data_key`` (e.g. ``"vqa-val-2000"``). Any change of weights, layer or data gives a new key,
hence a new file: a stale cache is never read. The key is also stored in the file and
checked on load.
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterable

import numpy as np
import torch

from viz_engine.adapters import AdapterError, Batch, MultimodalClassifier

__all__ = ["feature_matrix", "feature_cache_key"]

_FORMAT = "viz_engine.features/1"


def _hash_tensor(h, name: str, t: torch.Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
    if t.numel():
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.dtype != torch.bool
                 else t.numpy().tobytes())


def feature_cache_key(adapter: MultimodalClassifier, layer: str | None, data: Batch | None,
                      data_key: str | None = None) -> str:
    """SHA-256 hex key of (adapter class, layer, weights, data) — see the module docstring."""
    h = hashlib.sha256()
    h.update(f"{_FORMAT}|{type(adapter).__qualname__}|layer={layer or adapter.default_layer}|".encode())
    for name, t in adapter.module.state_dict().items():
        _hash_tensor(h, "w:" + name, t)
    if data is not None:
        h.update(f"rows={data.size}|".encode())
        for m in sorted(data.inputs):
            _hash_tensor(h, "x:" + m, data.inputs[m])
        for m in sorted(data.extras):
            for k in sorted(data.extras[m]):
                _hash_tensor(h, f"e:{m}:{k}", data.extras[m][k])
    if data_key is not None:
        h.update(f"data_key={data_key}|".encode())
    return h.hexdigest()


def _chunks(data, batch_size: int) -> Iterable[Batch]:
    batches = [data] if isinstance(data, Batch) else data
    for b in batches:
        if not isinstance(b, Batch):
            raise AdapterError(f"batch_iter_or_batch must be a Batch or yield Batches; got {type(b).__name__}")
        for s in range(0, b.size, batch_size):
            yield b.select(range(s, min(s + batch_size, b.size)))


def feature_matrix(adapter: MultimodalClassifier, batch_iter_or_batch, layer: str | None = None,
                   batch_size: int = 256, cache_path: str | os.PathLike | None = None,
                   data_key: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(features (N, d) float32, logits (N, C) float32)`` of every datapoint.

    Args:
        adapter:   the model.
        batch_iter_or_batch: a :class:`Batch` or an iterable of Batches (a data loader).
        layer:     representation layer (default: the input of the final linear layer).
        batch_size: rows per forward pass.
        cache_path: directory for the ``.npz`` cache (see the module docstring), or None.
        data_key:  names the data when ``batch_iter_or_batch`` is an iterable and
                   ``cache_path`` is given (required then).
    """
    if not isinstance(adapter, MultimodalClassifier):
        raise AdapterError(f"adapter must be a MultimodalClassifier; got {type(adapter).__name__}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise AdapterError(f"batch_size must be a positive integer; got {batch_size!r}")
    if layer is not None and layer != adapter.default_layer and layer not in adapter.layers():
        raise AdapterError(f"layer={layer!r} is unknown; layers: {adapter.layer_names()}")
    is_batch = isinstance(batch_iter_or_batch, Batch)
    if is_batch and batch_iter_or_batch.size == 0:
        raise AdapterError("batch_iter_or_batch is empty")

    file = None
    if cache_path is not None:
        if not is_batch and data_key is None:
            raise AdapterError("data_key is required to cache features of an iterable of batches")
        key = feature_cache_key(adapter, layer, batch_iter_or_batch if is_batch else None, data_key)
        os.makedirs(cache_path, exist_ok=True)
        file = os.path.join(os.fspath(cache_path), f"features_{key}.npz")
        if os.path.exists(file):
            with np.load(file, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    return z["features"], z["logits"]

    feats, logits = [], []
    with torch.no_grad():
        for chunk in _chunks(batch_iter_or_batch, batch_size):
            lg, f = adapter.logits_and_representation(chunk, layer)
            feats.append(f.detach().reshape(f.shape[0], -1).float().cpu().numpy())
            logits.append(lg.detach().float().cpu().numpy())
    if not feats:
        raise AdapterError("batch_iter_or_batch yielded no rows")
    features, logit_arr = np.concatenate(feats), np.concatenate(logits)
    if file is not None:
        tmp = file + ".tmp.npz"
        np.savez(tmp, features=features, logits=logit_arr, key=np.array(key))
        os.replace(tmp, file)
    return features, logit_arr
