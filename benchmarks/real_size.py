"""What a study costs on a model of real size (issue 18, point 3).

    nice python -m benchmarks.real_size [--arch vilt lxmert] [--samples 16] [--threads 1]

ViLT-B/32 (``ViltConfig()``: 12 layers × 768, 384 × 384 image = 144 patches of 32 px) and
LXMERT-base (``LxmertConfig()``: 9 + 5 + 5 layers × 768, 36 regions × 2048 features with boxes)
are built from their configuration objects with random weights (eager attention, so second
derivatives exist) and wrapped in the engine's Hugging Face adapters; nothing is downloaded.
One VQA-sized item: a 12-token question; 3,129 answers.

The ``paper-vqa`` recipe per item, ours against MultiViz's recipe on the same model, same
threads (torch and BLAS), warm-up and best of N, agreement checked before a ratio:

* **U** — LIME, 1000 samples, over both modalities: ours batched (``batch_size`` = samples)
  against one forward per sample (``batch_size=1``). Measured at ``--samples`` samples with
  agreement checked, then extrapolated to 1000: the scoring cost is linear in the number of
  samples (every sample is an independent forward of the same shape; ours at 1000 would run
  in chunks of 256, whose per-row cost is no higher than at ``--samples``, so ours is
  over-estimated, never flattered), and the surrogate fit at 1000 samples is measured on its
  own and added to both sides.
* **C** — second-order gradients of every word against the image (ViLT) / regions (LXMERT):
  ours in one call against MultiViz's one word at a time (a forward, a gradient and a second
  gradient per word) and against the shared-graph loop (``retain_graph``). The per-word loops
  run on ``--sog-words`` words (every word's iteration is the same work, so the cost is linear
  in words) and are extrapolated to all words; agreement is checked on those words.
* **DIME**, N = 100 reference points, over both modalities: one LIME sample costs N + 1
  forwards. Not run at size (50,500 forwards per modality at our default of 500 samples):
  projected from the measured per-row forward cost, batched (ours: every sample's N + 1
  forwards in one batch) and one at a time (MultiViz's sequential DIME). Marked
  ``projected`` in the JSON.
* **Rℓ** — gradient × input of 5 features of the penultimate layer, both modalities: the same
  computation on both sides (one backward per feature), measured once.
* **Rg** and **P** — per bundle, not per item (one pass of the split through the model, one
  path fit), so left out of the per-item figure; the bundle projection says so.

Projected study bundle: 22 items × the per-item cost, beside the paper's 12 hours on 2 GPUs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import torch

from benchmarks._harness import RESULTS, best_of, compare, environment, threads, write_json

PAPER_HOURS = 12.0  # the paper's VQA study bundle: about 12 hours on 2 GPUs
BUNDLE_ITEMS = 22
LIME_SAMPLES = 1000
DIME_N = 100
DIME_SAMPLES = 500  # the engine's default number of LIME samples per DIME explanation
RL_FEATURES = 5
QUESTION_TOKENS = 12
TARGET = 10.0


TINY = {  # for the CI check of the agreement logic only, never for figures
    "vilt": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, image_size=64,
                 vocab_size=30522, max_position_embeddings=40),
    "lxmert": dict(hidden_size=32, num_attention_heads=2, intermediate_size=37, l_layers=1, x_layers=1, r_layers=1,
                   visual_feat_dim=12, max_position_embeddings=40),
}


def build(arch: str, tiny: bool = False):
    """``(adapter, batch, against)``: a random-weight real-size model and one item."""
    g = torch.Generator().manual_seed(0)
    extra = TINY[arch] if tiny else {}
    if arch == "vilt":
        from transformers import ViltConfig, ViltForQuestionAnswering

        from viz_engine.hf.vilt import ViltAdapter

        cfg = ViltConfig(num_labels=3129, **extra)
        cfg._attn_implementation = "eager"
        torch.manual_seed(0)
        adapter = ViltAdapter(ViltForQuestionAnswering(cfg))
        pixels = torch.randn(1, 3, cfg.image_size, cfg.image_size, generator=g)
        ids = torch.randint(1000, 20000, (1, QUESTION_TOKENS), generator=g)
        return adapter, adapter.make_batch(pixels, ids), "image"
    if arch == "lxmert":
        from transformers import LxmertConfig, LxmertForQuestionAnswering

        from viz_engine.hf.regions import LxmertAdapter

        cfg = LxmertConfig(num_qa_labels=3129, **extra)
        cfg._attn_implementation = "eager"
        torch.manual_seed(0)
        adapter = LxmertAdapter(LxmertForQuestionAnswering(cfg))
        feats = torch.rand(1, 36, cfg.visual_feat_dim, generator=g)
        xy = torch.rand(1, 36, 2, generator=g) * 0.5
        boxes = torch.cat([xy, xy + 0.1 + torch.rand(1, 36, 2, generator=g) * 0.4], -1)
        ids = torch.randint(1000, 20000, (1, QUESTION_TOKENS), generator=g)
        return adapter, adapter.make_batch(feats, ids, boxes=boxes), "regions"
    raise ValueError(arch)


def _sog_loop(adapter, batch, against: str, words, shared: bool) -> np.ndarray:
    """Per-word second-order gradients (magnitudes per atom of ``against``): MultiViz's one word
    at a time (``shared=False``), or the shared forward and first backward (``shared=True``)."""
    from viz_engine.adapters import per_atom_sum

    def one_graph():
        a = batch.inputs[against].detach().clone().requires_grad_(True)
        q = batch.inputs["question"].detach().clone().requires_grad_(True)
        logits = adapter.logits(batch.with_inputs(**{against: a, "question": q}))
        (g1,) = torch.autograd.grad(logits.sum(), q, create_graph=True)
        return a, g1

    rows = []
    a, g1 = one_graph() if shared else (None, None)
    for w in words:
        if not shared:
            a, g1 = one_graph()
        (g12,) = torch.autograd.grad(g1[0, w].sum(), a, retain_graph=shared)
        rows.append(per_atom_sum(g12.abs(), batch.atoms[against], int(batch.n_atoms(against)[0]))[0].double())
    return torch.stack(rows).numpy()


def measure(arch: str, samples: int, sog_words: int, repeat: int, tiny: bool = False) -> dict:
    from viz_engine.adapters import LogitSum
    from viz_engine.methods.lime import fit_surrogate, sample_keep_vectors
    from viz_engine.methods.lime import lime
    from viz_engine.methods.local_representation import local_representation
    from viz_engine.methods.second_order_gradient import second_order_gradient_per_atom

    adapter, batch, against = build(arch, tiny)
    n_params = sum(p.numel() for p in adapter.module.parameters())
    with torch.no_grad():
        pred = int(adapter.logits(batch).argmax())
    out: dict = {"arch": arch, "parameters": n_params, "against": against,
                 "atoms": {m: int(batch.n_atoms(m)[0]) for m in (against, "question")}}

    # per-row forward cost, one at a time and batched (what DIME's projection uses)
    with torch.no_grad():
        t1, _ = best_of(lambda: adapter.logits(batch), repeat)
        big = batch.expand(samples)
        tb, _ = best_of(lambda: adapter.logits(big), repeat)
    out["forward_seconds_batch_1"] = t1
    out["forward_seconds_per_row_batched"] = tb / samples
    out["forward_batch"] = samples

    # U: LIME over both modalities
    fit_t, _ = best_of(lambda: fit_surrogate(sample_keep_vectors(out["atoms"][against], LIME_SAMPLES, 0),
                                             np.random.default_rng(0).normal(size=LIME_SAMPLES)), repeat)
    lime_rows = {}
    for modality in (against, "question"):
        c = compare(f"{arch} lime {modality}",
                    lambda: lime(adapter, batch, pred, modality, n_samples=samples, batch_size=samples)[0],
                    lambda: lime(adapter, batch, pred, modality, n_samples=samples, batch_size=1)[0],
                    rtol=1e-3, atol=1e-4, repeat=repeat)
        scale = LIME_SAMPLES / samples
        ours = c["ours_seconds"] * scale + fit_t
        ref = c["reference_seconds"] * scale + fit_t
        lime_rows[modality] = {"measured": c, "measured_samples": samples, "ours_seconds": ours,
                               "multiviz_seconds": ref, "speedup": ref / ours,
                               "extrapolated": f"scoring ×{scale:g} (linear in samples), + the 1000-sample fit"}
    out["lime"] = lime_rows

    # C: second-order gradients, every word
    n_words = out["atoms"]["question"]
    words = list(range(min(sog_words, n_words)))
    with adapter.frozen():
        ours_fn = lambda: second_order_gradient_per_atom(  # noqa: E731 (all words; the measured ones compared)
            adapter, batch, LogitSum(), "question", against, magnitude=True)[0][words]
        sog = {}
        for name, shared in (("one_word_at_a_time", False), ("shared_graph_loop", True)):
            c = compare(f"{arch} sog vs {name}", ours_fn, lambda: _sog_loop(adapter, batch, against, words, shared),
                        rtol=1e-3, atol=1e-6, repeat=repeat)
            sog[name] = c
        t_ours = min(c["ours_seconds"] for c in sog.values())  # ours computes every word in each call
    # the loops measured on len(words) words, extrapolated linearly to all of them
    loop = sog["one_word_at_a_time"]["reference_seconds"] * n_words / len(words)
    shared_loop = sog["shared_graph_loop"]["reference_seconds"] * n_words / len(words)
    out["sog"] = {"words": n_words, "measured_words": len(words), "ours_seconds_all_words": t_ours,
                  "multiviz_seconds": loop, "shared_graph_loop_seconds_upper_bound": shared_loop,
                  "speedup": loop / t_ours, "speedup_vs_shared_graph_loop_upper_bound": shared_loop / t_ours,
                  "measured": sog,
                  "extrapolated": f"per-word loops measured on {len(words)} of {n_words} words, ×{n_words / len(words):g}"
                                  " (each word the same work; the shared loop's one forward is counted every time,"
                                  " so its figure is an upper bound)"}

    # DIME: projected from the measured per-row forward costs
    per_modality = DIME_SAMPLES * (DIME_N + 1)
    out["dime"] = {"projected": True, "N": DIME_N, "samples": DIME_SAMPLES, "forwards_per_modality": per_modality,
                   "ours_seconds": 2 * per_modality * out["forward_seconds_per_row_batched"] + 2 * fit_t,
                   "multiviz_seconds": 2 * per_modality * t1 + 2 * fit_t,
                   "how": "2 modalities × samples × (N + 1) forwards × the measured per-row forward cost "
                          "(batched for ours, batch 1 for MultiViz's sequential DIME), + the surrogate fits"}
    out["dime"]["speedup"] = out["dime"]["multiviz_seconds"] / out["dime"]["ours_seconds"]

    # Rℓ: gradient × input of RL_FEATURES features, both modalities (the same on both sides)
    t_rl, _ = best_of(lambda: [local_representation(adapter, batch, f) for f in range(RL_FEATURES)], repeat)
    out["rl"] = {"features": RL_FEATURES, "ours_seconds": t_rl, "multiviz_seconds": t_rl, "speedup": 1.0}

    ours_item = sum(out["lime"][m]["ours_seconds"] for m in out["lime"]) + out["sog"]["ours_seconds_all_words"] \
        + out["dime"]["ours_seconds"] + t_rl
    mv_item = sum(out["lime"][m]["multiviz_seconds"] for m in out["lime"]) + out["sog"]["multiviz_seconds"] \
        + out["dime"]["multiviz_seconds"] + t_rl
    out["per_item"] = {"ours_seconds": ours_item, "multiviz_seconds": mv_item, "speedup": mv_item / ours_item,
                       "without_dime": {"ours_seconds": ours_item - out["dime"]["ours_seconds"],
                                        "multiviz_seconds": mv_item - out["dime"]["multiviz_seconds"]}}
    wd = out["per_item"]["without_dime"]
    wd["speedup"] = wd["multiviz_seconds"] / wd["ours_seconds"]
    out["bundle_22_items"] = {"ours_hours": BUNDLE_ITEMS * ours_item / 3600,
                              "multiviz_hours": BUNDLE_ITEMS * mv_item / 3600,
                              "paper_hours_2_gpus": PAPER_HOURS,
                              "excludes": "Rg and P (per bundle: one pass of the split, one path fit)"}
    out["meets_target"] = out["per_item"]["speedup"] >= TARGET
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.real_size", description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", nargs="+", default=["vilt", "lxmert"], choices=["vilt", "lxmert"])
    ap.add_argument("--samples", type=int, default=16, help="LIME samples measured (then extrapolated)")
    ap.add_argument("--sog-words", type=int, default=2, help="words the per-word loops are measured on")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=str(RESULTS / "real_size.json"))
    args = ap.parse_args(argv)
    with threads(args.threads):
        report = {"benchmark": "real_size", **environment(args.threads),
                  "settings": {"samples_measured": args.samples, "sog_words_measured": args.sog_words,
                               "repeat": args.repeat, "lime_samples": LIME_SAMPLES, "dime_n": DIME_N,
                               "dime_samples": DIME_SAMPLES, "bundle_items": BUNDLE_ITEMS,
                               "question_tokens": QUESTION_TOKENS},
                  "models": {}}
        for arch in args.arch:
            t0 = time.perf_counter()
            r = measure(arch, args.samples, args.sog_words, args.repeat)
            r["wall_seconds"] = round(time.perf_counter() - t0, 1)
            report["models"][arch] = r
            print(f"{arch}: per item ours {r['per_item']['ours_seconds']:.0f} s, MultiViz's recipe "
                  f"{r['per_item']['multiviz_seconds']:.0f} s ({r['per_item']['speedup']:.2f}×); "
                  f"without DIME {r['per_item']['without_dime']['speedup']:.2f}×; "
                  f"22 items: {r['bundle_22_items']['ours_hours']:.1f} h vs {r['bundle_22_items']['multiviz_hours']:.1f} h",
                  flush=True)
    write_json(args.json, report)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
