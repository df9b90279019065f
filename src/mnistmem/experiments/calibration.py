"""Calibration: how close does independent handwriting come to the training set?

Question: what share of real, never-trained-on MNIST test digits would each copy criterion call a copy,
and how close are MNIST's own training digits to each other?
Expected: some test digits come close to training digits and MNIST holds near-duplicates of its own, so
a criterion's raw rate means little until this baseline is subtracted. Every model's rate is reported
against the baseline computed here. The thresholds that `mnistmem.copies.CRITERIA` calibrates are chosen on
one half of the test digits (a 0.1% false-alarm rate) and their false-alarm rate reported on the other
(`held_out_calibration`); what they miss is measured by the `recall` experiment.
"""

from __future__ import annotations

import numpy as np

from mnistmem.atomic import write_atomic
from mnistmem.experiments import scales
from mnistmem.experiments.runner import Experiment, Stage, StageContext
from mnistmem.experiments.stages import TABLE_FILE, copy_cells, judge_features

NEAR_DUPLICATES_FILE = "near_duplicates.npz"


def baseline_stage(ctx: StageContext) -> dict:
    """The test digits scored by every criterion as if a model had generated them."""
    from mnistmem import copies, data, tables

    train, _ = data.load_mnist("train")
    test, _ = data.load_mnist("test")
    test = test[: ctx.config["test_digits"]]
    table = copies.baseline_table(
        test,
        train,
        **judge_features(train),
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
        "held_out": held_out_calibration(table),
    }


def held_out_calibration(table) -> dict:
    """Per criterion: the threshold the fit half of the test digits gives at each target false-alarm rate
    (rounded strictly, as `copies.CRITERIA` states it), and the false-alarm rate that the book's threshold has
    on the report half, with its 95% interval. The two halves never mix (`recall.calibration_split`)."""
    from mnistmem import copies, recall

    fit, report = recall.calibration_split(len(table))
    out = {}
    for name, scores in table.scores.items():
        criterion = copies.CRITERIA[name]
        out[name] = {
            "chosen_by": criterion.chosen_by,
            "thresholds_from_fit_half": {
                str(rate): recall.readable_threshold(
                    recall.threshold_at_rate(scores[fit], rate, criterion.direction), criterion.direction
                )
                for rate in recall.TARGET_RATES
            },
            "book_threshold": criterion.default_threshold,
            "false_alarms_report_half": recall.rate_with_interval(
                criterion.flag(scores[report], criterion.default_threshold)
            ),
        }
    return out


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
