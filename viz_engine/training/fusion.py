"""Train the fusion reference models and write their shipped weights.

    python -m viz_engine.training.fusion [late|interaction|all]      (default: all)

Seeded and single-threaded (reproducible on one machine, a minute or so per model on CPU).
Writes ``viz_engine/weights/fusion_<kind>.pt`` (a ``state_dict``, including the baseline
buffers = training-split means) and ``fusion_<kind>.json`` (accuracies, parameter count,
train time, seed, command). The checkpoint with the best validation accuracy is kept.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from viz_engine.data.fusion import SPLITS, load_split
from viz_engine.models.fusion import KINDS, build_model, weights_path

SEED = 0
EPOCHS = 20
BATCH_SIZE = 128
LR = 3e-3
WEIGHT_DECAY = 0.05


def _tensors(split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    d = load_split(split)
    return torch.from_numpy(d.series), torch.from_numpy(d.static), torch.from_numpy(d.labels)


@torch.no_grad()
def accuracy(model: nn.Module, series: torch.Tensor, static: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of rows whose arg-max logit is the label."""
    model.eval()
    pred = torch.cat([model(series[i:i + 1000], static[i:i + 1000]).argmax(1) for i in range(0, len(labels), 1000)])
    return float((pred == labels).float().mean())


def train(kind: str, seed: int = SEED, epochs: int = EPOCHS, verbose: bool = True,
          out_dir: Path | None = None) -> dict:
    """Train one model, save weights + JSON, return the JSON dict.

    out_dir: where ``fusion_<kind>.pt``/``.json`` go (default: the shipped ``viz_engine/weights``).
    """
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    tr, va, te = _tensors("train"), _tensors("val"), _tensors("test")
    model = build_model(kind)
    model.set_baselines(tr[0].mean(0), tr[1].mean(0))
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    best_val, best_state, best_epoch = -1.0, None, -1
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(tr[2]), generator=gen)
        total = 0.0
        for i in range(0, len(order), BATCH_SIZE):
            idx = order[i:i + BATCH_SIZE]
            loss = loss_fn(model(tr[0][idx], tr[1][idx]), tr[2][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach().item() * len(idx)
        sched.step()
        val = accuracy(model, *va)
        if val > best_val:
            best_val, best_epoch = val, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if verbose:
            print(f"[{kind}] epoch {epoch + 1:2d}/{epochs} loss {total / len(order):.4f} val acc {val:.4f}", flush=True)
    train_seconds = time.perf_counter() - start
    model.load_state_dict(best_state)
    model.eval()
    test = load_split("test")
    report = {
        "model": kind,
        "dataset": "viz_engine.data.fusion",
        "splits": {k: {"n": n, "seed": s} for k, (n, s) in SPLITS.items()},
        "test_accuracy": round(accuracy(model, *te), 4),
        "val_accuracy": round(best_val, 4),
        "train_accuracy": round(accuracy(model, *tr), 4),
        # the noiseless recipe, and the recipe without its interaction term (best additive)
        "recipe_oracle_test_accuracy": round(float(((test.contributions.sum(1) > 0) == test.labels).mean()), 4),
        "additive_oracle_test_accuracy": round(
            float(((test.contributions[:, :2].sum(1) > 0) == test.labels).mean()), 4),
        "best_epoch": best_epoch + 1,
        "epochs": epochs,
        "n_params": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(train_seconds, 1),
        "seed": seed,
        "hyperparameters": {"batch_size": BATCH_SIZE, "lr": LR, "weight_decay": WEIGHT_DECAY,
                            "optimizer": "AdamW", "schedule": "cosine", "threads": 1},
        "command": f"python -m viz_engine.training.fusion {kind}",
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    path = weights_path(kind) if out_dir is None else Path(out_dir) / weights_path(kind).name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    if verbose:
        print(json.dumps(report, indent=2))
    return report


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    which = args[0] if args else "all"
    if which not in (*KINDS, "all") or len(args) > 1:
        print(f"usage: python -m viz_engine.training.fusion [{'|'.join(KINDS)}|all]", file=sys.stderr)
        return 2
    np.random.seed(SEED)
    for kind in (KINDS if which == "all" else (which,)):
        train(kind)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
