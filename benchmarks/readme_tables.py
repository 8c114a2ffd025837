"""The README's benchmark tables, generated from the JSON kept in ``benchmarks/results/``.

    python -m benchmarks.readme_tables           # rewrite README.md between the marker comments
    python -m benchmarks.readme_tables --check   # exit 1 if README.md is not what the JSON gives

Each table sits between ``<!-- benchmarks:NAME -->`` and ``<!-- /benchmarks:NAME -->`` in
README.md; the prose around the markers is left alone. A table whose JSON file is missing is
an error (a figure is never typed in by hand).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from benchmarks._harness import RESULTS

README = Path(__file__).resolve().parent.parent / "README.md"


def _load(name: str, results: Path) -> dict:
    return json.loads((results / name).read_text())


def _s(x: float) -> str:
    """Seconds, with a unit that keeps 2–3 significant figures."""
    if x >= 3600:
        return f"{x / 3600:.1f} h"
    if x >= 100:
        return f"{x:.0f} s"
    if x >= 1:
        return f"{x:.2f} s"
    return f"{x * 1000:.1f} ms"


def _x(r: float) -> str:
    return f"{r:.1f}×" if r >= 10 else f"{r:.2f}×"


def _caption(r: dict, timing: str = "warm-up, then best of N on both sides") -> str:
    la = r.get("load_average", ["?"])[0]
    end = r.get("load_average_end", ["?"])[0]
    return (f"*{r['date'][:10]}, {r['machine']['cpus']} CPU cores shared with other work (load average "
            f"{la} at the start, {end} at the end), {r['threads']} thread(s) on both sides, "
            f"torch {r['versions']['torch']}; {timing}; "
            f"both sides checked to agree before each ratio.*")


def engine_table(r: dict) -> str:
    rows = ["| figure | ours | baseline | ratio |", "|---|---|---|---|"]
    c = r["sog_comparisons"]
    w = r["sog_words"]
    rows.append(f"| SOG, all {w} words of a question, one call vs per-word loop sharing forward and first backward "
                f"(`retain_graph`) | {_s(c['shared_graph_loop']['ours_seconds'])} | "
                f"{_s(c['shared_graph_loop']['reference_seconds'])} | **{_x(c['shared_graph_loop']['speedup'])}** |")
    rows.append(f"| the same vs a forward per word (the seeds' loop) | {_s(c['recompute_loop']['ours_seconds'])} | "
                f"{_s(c['recompute_loop']['reference_seconds'])} | {_x(c['recompute_loop']['speedup'])} |")
    for kind, label in (("early", "early-fusion transformer"), ("late", "late-fusion model")):
        e = r["emap_comparisons"].get(kind)
        if not e:
            continue
        rows.append(f"| EMAP/DIME N×N matrix, N = {r['emap_n']}, {label}, vs the batched path without encoder reuse | "
                    f"{_s(e['batched_no_reuse']['ours_seconds'])} | {_s(e['batched_no_reuse']['reference_seconds'])} | "
                    f"**{_x(e['batched_no_reuse']['speedup'])}** |")
        rows.append(f"| the same vs one forward per pair | {_s(e['one_forward_per_pair']['ours_seconds'])} | "
                    f"{_s(e['one_forward_per_pair']['reference_seconds'])} | {_x(e['one_forward_per_pair']['speedup'])} |")
    names = {"lime_package_default_batch_10": "`lime_image` at its default `batch_size=10`",
             "lime_package_tuned": "`lime_image`, tuned `batch_size={batch_size}`",
             "captum_tuned": "Captum `Lime`, tuned `perturbations_per_eval={perturbations_per_eval}`",
             "engine_batch_size_1": "one model call per sample"}
    for modality, label in (("image", f"{r['lime_atoms']} image patches"),
                            ("question", f"the question's {r.get('lime_atoms_words', '?')} words")):
        for key, comp in r["lime_comparisons"][modality].items():
            name = names[key].format(**comp) if "{" in names[key] else names[key]
            bold = "**" if key == r[f"lime_strongest_baseline{'' if modality == 'image' else '_words'}"] else ""
            rows.append(f"| LIME, {r['lime_samples']} samples, {label}, vs {name} | {_s(comp['ours_seconds'])} | "
                        f"{_s(comp['reference_seconds'])} | {bold}{_x(comp['speedup'])}{bold} |")
    return "\n".join([*rows, "", _caption(r)])


def sparse_linear_table(r: dict) -> str:
    rows = ["| P over the whole λ path | ours | scikit-learn saga |", "|---|---|---|",
            f"| total time, {r['n_lambdas']} λ from λ_max to λ_max·{r['eps']:g}, warm starts | "
            f"{_s(r['ours_seconds'])} | {_s(r['sklearn_seconds'])} (**{_x(r['slm_path_speedup_vs_sklearn'])}**) |",
            f"| largest relative objective gap over the path (must be ≤ {r['rel_objective_tol']:g}) | "
            f"{r['max_relative_objective_gap']:.1e} | |",
            f"| held-out accuracy, ours − saga, sparse end / dense end | "
            f"{100 * r['heldout_acc_gap_sparse_end']:+.2f} / {100 * r['heldout_acc_gap_dense_end']:+.2f} points | |"]
    size = (f"*Size: {r['n']:,} training points × {r['d']} standardised features × {r['c']} classes "
            f"(planted sparse multinomial), {r['n_val']:,} held out; tolerance {r['tol']:g} (ours) and "
            f"{r['sklearn_tol']:g} (saga); the run takes {(r['ours_seconds'] + r['sklearn_seconds']) / 60:.0f} "
            f"minutes here.*")
    return "\n".join([*rows, "", size, _caption(r, "one run of each side (a whole path fit)")])


def real_size_table(r: dict) -> str:
    rows = ["| per item, paper-vqa recipe | model | ours | MultiViz's recipe | ratio |", "|---|---|---|---|---|"]
    names = {"vilt": "ViLT-B/32", "lxmert": "LXMERT-base"}
    for arch, m in r["models"].items():
        n = names.get(arch, arch)
        for mod, x in m["lime"].items():
            rows.append(f"| U: LIME, 1000 samples, {mod} ({m['atoms'][mod]} atoms)† | {n} | {_s(x['ours_seconds'])} | "
                        f"{_s(x['multiviz_seconds'])} | {_x(x['speedup'])} |")
        s = m["sog"]
        rows.append(f"| C: SOG, all {s['words']} words† | {n} | {_s(s['ours_seconds_all_words'])} | "
                    f"{_s(s['multiviz_seconds'])} | {_x(s['speedup'])} |")
        d = m["dime"]
        rows.append(f"| DIME, N = {d['N']}, {d['samples']} samples, both modalities (projected)‡ | {n} | "
                    f"{_s(d['ours_seconds'])} | {_s(d['multiviz_seconds'])} | {_x(d['speedup'])} |")
        rows.append(f"| Rℓ, {m['rl']['features']} features (same computation) | {n} | {_s(m['rl']['ours_seconds'])} | "
                    f"{_s(m['rl']['multiviz_seconds'])} | 1× |")
        p = m["per_item"]
        rows.append(f"| **one item** (without DIME: {_x(p['without_dime']['speedup'])}) | {n} | "
                    f"{_s(p['ours_seconds'])} | {_s(p['multiviz_seconds'])} | **{_x(p['speedup'])}** |")
        b = m["bundle_22_items"]
        rows.append(f"| 22-item study bundle (paper: {b['paper_hours_2_gpus']:g} h on 2 GPUs) | {n} | "
                    f"{b['ours_hours']:.1f} h | {b['multiviz_hours']:.1f} h | |")
    st = r["settings"]
    notes = (f"*Random weights built from `ViltConfig()` / `LxmertConfig()`, CPU only. † measured at "
             f"{st['samples_measured']} LIME samples and {st['sog_words_measured']} words on both sides (agreement "
             f"checked), extrapolated linearly (each sample / word is the same independent work). ‡ DIME not run at "
             f"size: samples × (N + 1) forwards × the measured per-row forward cost. Rg and P are per bundle, not "
             f"per item. Wall times on a machine loaded several times over its cores (each process at nice 10): the "
             f"absolute seconds are inflated, not the cost of a real study on a free machine; the ratios compare both "
             f"recipes under the same load.*")
    return "\n".join([*rows, "", notes, _caption(r, "warm-up, then one timed run of each side")])


def bundle_table(r: dict) -> str:
    one, two = r["1_process"], r["2_processes"]
    rows = ["| bundle precompute | 1 worker process | 2 worker processes | ratio |", "|---|---|---|---|",
            f"| {r['items']} shapes-VQA items, all stages, item phase | {_s(one['items_seconds'])} | "
            f"{_s(two['items_seconds'])} | **{_x(r['speedup_2_over_1'])}** (target 1.8×) |"]
    cap = (f"*Bundles byte-identical (enforced: {r['identical_bundles']}); {r['date'][:10]}, "
           f"{r['machine']['cpus']} cores, load average {r['load_average'][0]} at the start and "
           f"{r.get('load_average_end', ['?'])[0]} at the end — two processes need two idle cores.*")
    return "\n".join([*rows, "", cap])


def _ms(x: float) -> str:
    return _s(x / 1000)


def platform_size_table(r: dict, before: dict) -> str:
    """The researcher's pages at size, after and before (``platform_size_before.json``: the
    code before the change, measured by the same benchmark)."""
    old = {s["size"]: s for s in before["sizes"]}
    rows = ["| study | results page, warm | metrics API, warm | results page, cold | before (warm page / API) |",
            "|---|---|---|---|---|"]
    for s in r["sizes"]:
        b = old.get(s["size"])
        was = f"{_ms(b['page_warm']['median_ms'])} / {_ms(b['api_warm']['median_ms'])}" if b else "not measured"
        rows.append(f"| {s['size']} | {_ms(s['page_warm']['median_ms'])} ({_ms(s['page_warm']['cpu_median_ms'])} CPU, "
                    f"{s['page_warm']['queries']} queries) | {_ms(s['api_warm']['median_ms'])} "
                    f"({_ms(s['api_warm']['cpu_median_ms'])} CPU, {s['api_warm']['queries']} queries) | "
                    f"{_ms(s['page_cold']['median_ms'])} | {was} |")
    e, eb, a = r["exports"], before["exports"], r["alpha"]
    target = r["targets"]["page_and_api_median_ms"]
    over = [f"the {what} of {s['size']} ({_ms(s[key]['median_ms'])}, {_ms(s[key]['cpu_median_ms'])} CPU)"
            for s in r["sizes"] for key, what in (("page_warm", "page"), ("api_warm", "API"))
            if s[key]["median_ms"] >= target]
    over_target = (f"Over the {target} ms target for a warm page or API: {'; '.join(over)}." if over
                   else f"Every warm page and API answer is under the {target} ms target.")
    notes = (f"*Medians of {r['sizes'][0]['page_warm']['repeats']} requests; {r['database']}, {r['cache']}; "
             f"{r['date'][:10]}, {r['machine']['cpus']} CPU cores ({r.get('note', '')}). "
             f"The {e['responses']:,}-response CSV is {'streamed' if e['responses_csv']['streamed'] else 'not streamed'}: "
             f"first chunk {_ms(e['responses_csv']['first_chunk_ms'])}, all {_ms(e['responses_csv']['total_ms'])} "
             f"(before: {_ms(eb['responses_csv']['total_ms'])}); α with its {a['resamples']}-resample interval on "
             f"{a['annotators']} annotators × {a['items']} items: {_s(a['median_s'])} "
             f"(target {_s(r['targets']['alpha_200x200_s'])}). {over_target}*")
    return "\n".join([*rows, "", notes])


TABLES = {  # marker name → (JSON file or files, table function)
    "engine": ("engine.json", engine_table),
    "platform-size": (("platform_size.json", "platform_size_before.json"), platform_size_table),
    "sparse-linear-path": ("sparse_linear_path.json", sparse_linear_table),
    "real-size": ("real_size.json", real_size_table),
    "bundle-precompute": ("bundle_precompute.json", bundle_table),
}


def render(text: str, results: Path = RESULTS) -> str:
    """``text`` with every marked table regenerated from ``results``."""
    for name, (fname, fn) in TABLES.items():
        pattern = re.compile(rf"(<!-- benchmarks:{name} -->\n).*?(<!-- /benchmarks:{name} -->)", re.S)
        if pattern.search(text):
            names = (fname,) if isinstance(fname, str) else fname
            table = fn(*(_load(f, results) for f in names))
            text = pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.readme_tables", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only check; exit 1 if README.md differs")
    args = ap.parse_args(argv)
    text = README.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print("README.md's benchmark tables differ from benchmarks/results/*.json; "
                  "run python -m benchmarks.readme_tables", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    print("README.md tables regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
