"""Runnable examples of the documentation (docs/datasets.md); tests import them."""
