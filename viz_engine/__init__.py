"""viz_engine: the MultiViz stages (U, C, Rℓ, Rg, P) on real PyTorch multimodal models.

Imports no Django. See ``viz_engine.adapters`` for the model protocol every method uses.
"""

__version__ = "0.1.0"
