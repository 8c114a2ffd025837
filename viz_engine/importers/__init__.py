"""Importers: bundles made from explanations computed elsewhere (no model here).

``multiviz`` reads the results folders of MultiViz's own visualization website.
"""
