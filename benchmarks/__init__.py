"""Measurements of the engine and the platform, kept out of the product packages.

Each module is a command run from the repository root (``python -m benchmarks.<module>``);
``results/`` keeps the JSON figures the README quotes.

* ``engine``             — SOG, EMAP, LIME and P speed-ups and the SOG faithfulness tables
* ``sparse_linear``      — P's solver against scikit-learn (used by ``engine``)
* ``transformer_views``  — per-layer vs per-example hidden-state maps
* ``bundle_precompute``  — a bundle's precompute, one vs two worker processes
* ``platform_size``      — the researcher's pages and API at study size
* ``loadtest``           — 50–200 annotators at once against gunicorn, PostgreSQL and Redis
"""
