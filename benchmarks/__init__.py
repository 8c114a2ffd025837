"""Measurements of the engine and the platform, kept out of the product packages.

Each module is a command run from the repository root (``python -m benchmarks.<module>``);
``results/`` keeps the JSON figures the README quotes (with machine, versions, date, threads
and load average); ``_harness`` holds what they share: the same threads on both sides, warm-up
and best of N, and an agreement check that raises before any ratio is computed.

* ``engine``             — SOG, EMAP, LIME (against ``lime_image`` and Captum) and P speed-ups,
                           and the SOG faithfulness tables
* ``sparse_linear``      — P's solver against scikit-learn's saga over the whole λ path
* ``real_size``          — the paper-vqa recipe per item on ViLT-B/32 and LXMERT-base (random weights)
* ``readme_tables``      — regenerates the README's benchmark tables from ``results/*.json``
* ``transformer_views``  — per-layer vs per-example hidden-state maps
* ``bundle_precompute``  — a bundle's precompute, one vs two worker processes
* ``platform_size``      — the researcher's pages and API at study size
* ``loadtest``           — 50–200 annotators at once against gunicorn, PostgreSQL and Redis
"""
