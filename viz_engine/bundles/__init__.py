"""Precomputed visualization bundles: the MultiViz stages of chosen datapoints of one
(dataset, model), written once and served to annotators section by section.

``format`` (the files and their checks), ``sources`` (what a bundle is computed from),
``selection`` (which items, paper appendix D), ``stages`` (one item's sections),
``precompute`` (plan, compute, finalize, validate). See ``docs/bundles.md``.
"""
