"""Faithfulness of second-order gradients on shapes-VQA (the paper's appendix D.2, Table 5).

For every phrase of a question that refers to exactly one object (1–4 words, e.g. "large
red circle"), the first-order gradient of the sum of the logits with respect to each word is
taken, the absolute gradients of the phrase's words are summed, and the gradient of that
sum with respect to every pixel is the second-order gradient (SOG). The mean |SOG| per pixel
inside each object's box ranks the objects; the alignment is picked up at top-1 when the
referred object ranks first, at top-2 when it ranks first or second. Chance rates are those
of a uniformly random ranking of the scene's objects: mean 1/n and mean min(2, n)/n.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence


from .adapters import LogitSum
from .data import shapes_vqa as data
from .methods.second_order_gradient import second_order_gradient
from .render import top_regions

__all__ = ["AlignmentPair", "alignment_pairs", "sog_alignment", "format_table"]


@dataclass(frozen=True)
class AlignmentPair:
    """One ground-truth alignment: phrase tokens of example ``example`` ↔ object ``obj``."""

    example: int
    tokens: tuple[int, ...]
    obj: int


def alignment_pairs(examples: Sequence[data.Example]) -> list[AlignmentPair]:
    """Every (phrase, object) reference whose phrase refers to one single object."""
    pairs = []
    for i, ex in enumerate(examples):
        objects_of_phrase: dict[tuple[int, ...], set[int]] = defaultdict(set)
        for tokens, obj in ex.references:
            objects_of_phrase[tuple(tokens)].add(obj)
        for tokens, objs in objects_of_phrase.items():
            if len(objs) == 1 and 1 <= len(tokens) <= 4 and len(ex.objects) >= 2:
                pairs.append(AlignmentPair(i, tokens, next(iter(objs))))
    return pairs


def sog_alignment(adapter, examples: Sequence[data.Example], *, max_pairs: int | None = None, batch_size: int = 64) -> dict:
    """Top-1 / top-2 alignment rates of SOG for ``adapter`` on ``examples``.

    Returns ``{"top1", "top2", "chance_top1", "chance_top2", "n"}`` (rates as fractions).
    """
    pairs = alignment_pairs(examples)[:max_pairs]
    if not pairs:
        return {"top1": float("nan"), "top2": float("nan"), "chance_top1": float("nan"), "chance_top2": float("nan"), "n": 0}
    batch = adapter.make_batch([examples[p.example] for p in pairs])
    sog = second_order_gradient(
        adapter,
        batch,
        LogitSum(),
        "question",
        "image",
        [list(p.tokens) for p in pairs],
        aggregate="abs",
        magnitude=True,
        batch_size=batch_size,
    )
    hits1 = hits2 = 0
    chance1 = chance2 = 0.0
    for row, p in enumerate(pairs):
        ex = examples[p.example]
        heat = sog[row].reshape(data.IMAGE_SIZE, data.IMAGE_SIZE)
        ranked = top_regions(heat, [o.box for o in ex.objects], k=2)
        hits1 += ranked[0] == p.obj
        hits2 += p.obj in ranked
        n_obj = len(ex.objects)
        chance1 += 1 / n_obj
        chance2 += min(2, n_obj) / n_obj
    n = len(pairs)
    return {"top1": hits1 / n, "top2": hits2 / n, "chance_top1": chance1 / n, "chance_top2": chance2 / n, "n": n}


def format_table(results: dict[str, dict]) -> str:
    """The figures as a table in the form of the paper's Table 5."""
    lines = [
        "Second-order gradient alignment on shapes-VQA (form of MultiViz Table 5)",
        f"{'model':<22}{'top-1':>8}{'top-2':>8}{'chance top-1':>14}{'chance top-2':>14}{'pairs':>7}",
    ]
    for name, r in results.items():
        lines.append(
            f"{name:<22}{100 * r['top1']:>7.1f}%{100 * r['top2']:>7.1f}%"
            f"{100 * r['chance_top1']:>13.1f}%{100 * r['chance_top2']:>13.1f}%{r['n']:>7d}"
        )
    return "\n".join(lines)
