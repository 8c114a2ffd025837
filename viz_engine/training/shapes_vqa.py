"""Retrain the Shapes-VQA reference models from scratch and write the shipped weights.

    python -m viz_engine.training.shapes_vqa [early|late|grounded|all] [--seed 0] [--threads 1]

``grounded`` is the early-fusion transformer trained on the version-2 questions
(:mod:`viz_engine.data.shapes_vqa`: position questions about two objects, scenes whose
objects share attributes); ``all`` is ``early`` and ``late``.

Writes ``viz_engine/weights/shapes_vqa_<kind>.pt`` (a state_dict) and
``viz_engine/weights/shapes_vqa_<kind>.json`` (test accuracy, parameter count, train wall
time, seed, the exact command). Deterministic for a given seed and thread count.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from viz_engine.data import shapes_vqa as data
from viz_engine.models.shapes_vqa import (
    DATA_VERSION,
    EARLY_CONFIG,
    LATE_CONFIG,
    MAX_TOKENS,
    ShapesVQAAdapter,
    _check_kind,
    build_adapter,
    metrics_path,
    weights_path,
)

__all__ = ["TRAIN_SETTINGS", "evaluate", "train", "main"]


@torch.no_grad()
def evaluate(adapter: ShapesVQAAdapter, examples: Sequence[data.Example], batch_size: int = 500) -> float:
    """Accuracy of ``adapter`` on ``examples``."""
    adapter.module.eval()
    correct = 0
    for s in range(0, len(examples), batch_size):
        chunk = examples[s: s + batch_size]
        pred = adapter.logits(adapter.make_batch(chunk)).argmax(1)
        correct += int((pred == adapter.labels(chunk)).sum())
    return correct / max(len(examples), 1)


def _encode_split(examples: Sequence[data.Example]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Images ``(N, 3, 48, 48)`` float, ids ``(N, MAX_TOKENS)``, mask, labels ``(N,)``."""
    images = torch.from_numpy(np.stack([e.image for e in examples])).permute(0, 3, 1, 2).float() / 255.0
    pad_id = data.VOCAB.index(data.PAD)
    ids = torch.full((len(examples), MAX_TOKENS), pad_id, dtype=torch.long)
    for i, e in enumerate(examples):
        ids[i, : len(e.tokens)] = torch.tensor(data.token_ids(e.tokens))
    return images, ids, ids != pad_id, torch.from_numpy(data.answer_indices(list(examples)))


TRAIN_SETTINGS = {
    "early": dict(epochs=28, lr=2e-3, batch_size=128, weight_decay=0.01),
    "late": dict(epochs=20, lr=2e-3, batch_size=128, weight_decay=0.01),
    "grounded": dict(epochs=24, lr=2e-3, batch_size=128, weight_decay=0.01),
}


def train(kind: str, seed: int = 0, n_train: int | None = None, epochs: int | None = None,
          threads: int | None = None, log=print) -> tuple[ShapesVQAAdapter, dict]:
    """Train ``kind`` from scratch on the train split (seeded); return (adapter, metrics).

    Metrics: test accuracy on the full test split and on its first 300 examples, val
    accuracy, parameter count, train wall time, seed and settings.
    """
    settings = dict(TRAIN_SETTINGS[_check_kind(kind)])
    if epochs is not None:
        settings["epochs"] = epochs
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    version = DATA_VERSION[kind]
    train_ex = data.load_split("train", n_train, version=version)
    images, ids, mask, labels = _encode_split(train_ex)
    val_ex, test_ex = data.load_split("val", version=version), data.load_split("test", version=version)
    adapter = build_adapter(kind)
    model = adapter.module
    n_params = sum(p.numel() for p in model.parameters())
    log(f"[{kind}] {n_params} parameters, {len(train_ex)} training examples, "
        f"data ready in {time.perf_counter() - start:.1f}s, settings {settings}")
    opt = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    bs = settings["batch_size"]
    steps_per_epoch = math.ceil(len(train_ex) / bs)
    total = settings["epochs"] * steps_per_epoch
    warmup = min(500, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(warmup, 1)) * 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0)))
    )
    gen = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(settings["epochs"]):
        model.train()
        order = torch.randperm(len(train_ex), generator=gen)
        running, seen = 0.0, 0
        for s in range(0, len(order), bs):
            idx = order[s: s + bs]
            words = model.word_embedding(ids[idx])
            logits = model(images[idx], words, mask[idx])
            loss = F.cross_entropy(logits, labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            running += float(loss.detach()) * len(idx)
            seen += len(idx)
        val_acc = evaluate(adapter, val_ex)
        history.append({"epoch": epoch + 1, "train_loss": running / seen, "val_accuracy": val_acc})
        log(f"[{kind}] epoch {epoch + 1}/{settings['epochs']} loss {running / seen:.4f} "
            f"val acc {val_acc:.4f} ({time.perf_counter() - start:.0f}s)")
    train_time = time.perf_counter() - start
    model.eval()
    test_acc = evaluate(adapter, test_ex)
    per_type = {}
    for qt in dict.fromkeys(e.question_type for e in test_ex):
        sub = [e for e in test_ex if e.question_type == qt]
        per_type[qt] = evaluate(adapter, sub)
    metrics = {
        "model": kind,
        "test_accuracy": test_acc,
        "test_size": len(test_ex),
        "test_accuracy_first_300": evaluate(adapter, test_ex[:300]),
        "test_accuracy_by_question_type": per_type,
        "val_accuracy": history[-1]["val_accuracy"] if history else None,
        "n_params": n_params,
        "train_time_seconds": round(train_time, 1),
        # CPU time of the run: on a machine shared with other work, wall time is mostly waiting
        "train_cpu_seconds": round(time.process_time() - cpu_start, 1),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "seed": seed,
        "n_train": len(train_ex),
        "data_version": version,
        "settings": settings,
        "config": LATE_CONFIG if kind == "late" else EARLY_CONFIG,
        "history": history,
        "torch_version": torch.__version__,
    }
    log(f"[{kind}] test accuracy {test_acc:.4f} (by type {json.dumps({k: round(v, 3) for k, v in per_type.items()})}); "
        f"train time {train_time:.0f}s")
    return adapter, metrics


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m viz_engine.training.shapes_vqa", description=__doc__.splitlines()[0])
    parser.add_argument("kind", nargs="?", default="all", choices=("early", "late", "grounded", "all"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: on a shared machine more threads thrash)")
    parser.add_argument("--epochs", type=int, default=None, help="override the default epochs")
    parser.add_argument("--n-train", type=int, default=None, help="train on the first N training examples (default: all)")
    args = parser.parse_args(argv)
    command = "python -m viz_engine.training.shapes_vqa " + " ".join(shlex.quote(a) for a in argv)
    kinds = ("early", "late") if args.kind == "all" else (args.kind,)
    for kind in kinds:
        adapter, metrics = train(kind, seed=args.seed, n_train=args.n_train, epochs=args.epochs, threads=args.threads,
                                 log=lambda msg: print(msg, flush=True))
        metrics["command"] = command.strip()
        path = weights_path(kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(adapter.module.state_dict(), path)
        metrics["weights_bytes"] = path.stat().st_size
        metrics_path(kind).write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"[{kind}] wrote {path} ({metrics['weights_bytes']} bytes) and {metrics_path(kind)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
