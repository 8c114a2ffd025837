"""Retrain the Shapes-VQA reference models from scratch and write the shipped weights.

    python -m viz_engine.train_shapes_vqa [early|late|all] [--seed 0] [--threads 1]

Writes ``viz_engine/weights/shapes_vqa_<kind>.pt`` (a state_dict) and
``viz_engine/weights/shapes_vqa_<kind>.json`` (test accuracy, parameter count, train wall
time, seed, the exact command). Deterministic for a given seed and thread count.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

import torch

from viz_engine.models.shapes_vqa import metrics_path, train, weights_path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m viz_engine.train_shapes_vqa", description=__doc__.splitlines()[0])
    parser.add_argument("kind", nargs="?", default="all", choices=("early", "late", "all"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: on a shared machine more threads thrash)")
    parser.add_argument("--epochs", type=int, default=None, help="override the default epochs")
    args = parser.parse_args(argv)
    command = "python -m viz_engine.train_shapes_vqa " + " ".join(shlex.quote(a) for a in argv)
    kinds = ("early", "late") if args.kind == "all" else (args.kind,)
    for kind in kinds:
        adapter, metrics = train(kind, seed=args.seed, epochs=args.epochs, threads=args.threads,
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
