"""Blinding the concept workspace. The person clustering should not know which condition an
answer came from (the paper's categories are then compared across conditions): the
workspace shows answers in :func:`blinded_order` and names conditions by
:func:`blind_labels` until the researcher reveals them."""

from __future__ import annotations

import hashlib
import string

__all__ = ["blinded_order", "blind_labels"]


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
