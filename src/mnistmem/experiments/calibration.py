"""Calibration: how close does independent handwriting come to the training set?

Question: what share of real, never-trained-on MNIST test digits would each copy criterion call a copy,
and how close are MNIST's own training digits to each other?
Expected: some test digits come close to training digits and MNIST holds near-duplicates of its own, so
a criterion's raw rate means little until this baseline is subtracted. Every model's rate is reported
against the baseline computed here.
"""

from __future__ import annotations

import numpy as np

from mnistmem.atomic import write_atomic
from mnistmem.experiments import scales
from mnistmem.experiments.runner import Experiment, Stage, StageContext
from mnistmem.experiments.stages import TABLE_FILE, classifier_features, copy_cells

NEAR_DUPLICATES_FILE = "near_duplicates.npz"


def baseline_stage(ctx: StageContext) -> dict:
    """The test digits scored by every criterion as if a model had generated them."""
    from mnistmem import copies, data, tables

    train, _ = data.load_mnist("train")
    test, _ = data.load_mnist("test")
    test = test[: ctx.config["test_digits"]]
    features, train_features = classifier_features(train)
    table = copies.baseline_table(
        test,
        train,
        features=features,
        train_features=train_features,
        cells=copy_cells(ctx.config["cells"], ctx.config.get("cells_fit")),
        progress=ctx.progress,
    )
    tables.save_table(table.first_neighbours(tables.STORED_NEIGHBOURS), ctx.dir / TABLE_FILE)
    rates = {name: float(flags.mean()) for name, flags in table.flags.items()}
    return {
        "n": len(table),
        "rates_at_default_thresholds": rates,
        "thresholds": table.thresholds,
        "c_t": table.meta.get("c_t", {}).get("c_t"),
    }


def near_duplicates_stage(ctx: StageContext) -> dict:
    """Each training digit's nearest other training digit, and each test digit's nearest training digit."""
    from mnistmem import copies, data

    train, _ = data.load_mnist("train")
    test, _ = data.load_mnist("test")
    result = copies.mnist_near_duplicates(
        train[: ctx.config["train_queries"]] if ctx.config["train_queries"] < len(train) else train,
        test[: ctx.config["test_digits"]],
        n_pairs=200,
        progress=ctx.progress,
    )
    write_atomic(ctx.dir / NEAR_DUPLICATES_FILE, lambda handle: np.savez_compressed(handle, **result))
    d = result["train_nn_distance"]
    return {
        "train_queries": len(d),
        "train_nn_distance_quantiles": {str(q): float(np.quantile(d, q)) for q in (0.0, 0.001, 0.01, 0.5)},
        "test_nn_distance_min": float(result["test_nn_distance"].min()),
        "test_nn_distance_median": float(np.median(result["test_nn_distance"])),
    }


def plan(scale: str) -> list[Stage]:
    settings = scales.config(scale, "calibration")
    return [
        Stage(
            "baseline",
            {
                "test_digits": settings["test_digits"],
                "cells": settings["cells"],
                "cells_fit": settings.get("cells_fit"),
                "k": 50,
            },
            baseline_stage,
        ),
        Stage(
            "near_duplicates",
            {"test_digits": settings["test_digits"], "train_queries": settings["train_queries"]},
            near_duplicates_stage,
        ),
    ]


EXPERIMENT = Experiment(
    name="calibration",
    question="How often does each copy criterion fire on independent handwriting (the MNIST test digits)?",
    plan=plan,
)
