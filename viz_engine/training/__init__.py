"""Retraining the reference models: one module per built-in dataset, each a command.

    python -m viz_engine.training.shapes_vqa [early|late|all]
    python -m viz_engine.training.fusion [late|interaction|all]

Each writes the shipped weights and their JSON (test accuracy, seed, time, command) into
``viz_engine/weights/``, where :mod:`viz_engine.models` loads them; the product itself never
trains.
"""
