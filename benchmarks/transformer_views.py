"""Benchmark: hidden-state maps of 1,000 shapes-VQA items, one projection per layer (ours)
against one projection per example and layer (VL-InterpreT's way), measured in one run.

    python -m benchmarks.transformer_views [--items 1000] [--tsne-items 100] [--json PATH]

Ours: one PCA per layer fitted on a 200-item sample, then every item mapped. Per example:
a PCA fitted on each item's own tokens, for every item (measured on all of them), and a
t-SNE per item and layer as VL-InterpreT ran it — measured on ``--tsne-items`` items and
reported per item and extrapolated to all (a full run would take about 17 minutes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from viz_engine.data import shapes_vqa as data
from viz_engine.methods.hidden_state_projection import fit_layer_projections
from viz_engine.models import shapes_vqa as models


def run(n_items: int = 1000, tsne_items: int = 100, sample: int = 200) -> dict:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    torch.manual_seed(0)
    sample = min(sample, n_items)
    adapter = models.load_pretrained("early")
    examples = data.load_split("test", n_items)
    states, valids = [], []
    for s in range(0, n_items, 250):
        batch = adapter.make_batch(examples[s:s + 250])
        layer_states = adapter.hidden_states(batch)
        seg, valid = adapter.token_segments(batch)
        states.append([h.numpy() for h in layer_states])
        valids.append(valid.numpy())
    n_layers = len(states[0])
    # per item: its real tokens at every layer
    items = []
    for chunk, valid in zip(states, valids):
        for r in range(valid.shape[0]):
            items.append([chunk[layer][r][valid[r]] for layer in range(n_layers)])

    t0 = time.perf_counter()
    width = max(len(i[0]) for i in items[:sample])
    padded = [np.zeros((sample, width, items[0][0].shape[1])) for _ in range(n_layers)]
    mask = np.zeros((sample, width), dtype=bool)
    for r, item in enumerate(items[:sample]):
        mask[r, : len(item[0])] = True
        for layer in range(n_layers):
            padded[layer][r, : len(item[layer])] = item[layer]
    proj = fit_layer_projections(padded, mask)
    ours_maps = [[proj.transform(layer, item[layer]) for layer in range(n_layers)] for item in items]
    ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    for item in items:
        for layer in range(n_layers):
            PCA(n_components=2, svd_solver="full").fit_transform(item[layer])
    per_example_pca = time.perf_counter() - t0

    t0 = time.perf_counter()
    for item in items[:tsne_items]:
        for layer in range(n_layers):
            TSNE(n_components=2, perplexity=min(5, len(item[layer]) - 1), init="pca",
                 random_state=0).fit_transform(item[layer])
    tsne = time.perf_counter() - t0
    tsne_per_item = tsne / tsne_items
    return {
        "items": n_items, "layers": n_layers, "sample_for_fit": sample, "maps": len(ours_maps) * n_layers,
        "ours_seconds": round(ours, 3),
        "per_example_pca_seconds": round(per_example_pca, 3),
        "speedup_vs_per_example_pca": round(per_example_pca / ours, 1),
        "tsne_items_measured": tsne_items, "tsne_seconds_per_item": round(tsne_per_item, 3),
        "tsne_seconds_extrapolated": round(tsne_per_item * n_items, 1),
        "speedup_vs_per_example_tsne_extrapolated": round(tsne_per_item * n_items / ours, 1),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.transformer_views", description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=1000)
    p.add_argument("--tsne-items", type=int, default=100)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    report = run(args.items, args.tsne_items)
    for k, v in report.items():
        print(f"  {k:<44} {v}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
