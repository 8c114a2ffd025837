"""Analysis methods, one per module (Captum-style).

Shared conventions:
* first arguments ``(adapter, batch, target, ...)``: a ``MultimodalClassifier``, a ``Batch``
  and what to explain (a class index/name, ``Label``, ``LogitSum`` or ``Feature``);
* model calls are batched (``batch_size`` controls the chunk), never one per perturbation;
* results are NumPy arrays with documented shapes; per-atom arrays are ``(B, n_atoms)``
  with NaN where a row has fewer atoms than the longest row (padding).
"""
