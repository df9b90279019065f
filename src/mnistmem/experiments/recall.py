"""Recall: what each copy criterion catches and what it misses.

Question: when a model's output is a training digit with the kind of damage generators do (noise, blur,
thicker or thinner strokes, a shift, a rotation, a GAN's texture, ...), which definitions of a copy still
call it one — at a threshold that calls almost no independent handwriting a copy?
Expected: pixel criteria calibrated against false alarms alone (a fixed distance, the ratio test) miss most
copies once the damage is more than slight; a descriptor trained to see through edits catches most of them
at the same false-alarm rate. The book states every threshold as "false-alarm rate X on held-out handwriting,
recall Y on degraded copies", with X and Y from here.

Positives: `images` training digits (a fixed random choice), each degraded by every kind in
`mnistmem.degrade` at each of three strengths and scored against all 60,000 training images. Negatives: the
calibration experiment's scores of the MNIST test digits, split into a fit half (thresholds) and a report half
(false-alarm rates) by `mnistmem.recall.calibration_split`.
"""

from __future__ import annotations

import json

import numpy as np

from mnistmem.atomic import write_atomic
from mnistmem.experiments import scales
from mnistmem.experiments.runner import Experiment, Stage, StageContext
from mnistmem.experiments.stages import SAMPLES_FILE, judge_features, load_samples

REPORT_FILE = "recall.json"
EXAMPLES_FILE = "examples.npz"
#: Degraded copies kept per (kind, strength) cell for the book's gallery.
EXAMPLES_PER_CELL = 6


def planted_copies(
    train: np.ndarray, rows: np.ndarray, textures: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(copies uint8 [C·n,28,28], cell name per copy, original training index per copy) for every kind and
    strength of `mnistmem.degrade`, in registry order; deterministic given `seed`."""
    from mnistmem import degrade

    images, cells, originals = [], [], []
    for name, kind in degrade.DEGRADATIONS.items():
        for level in degrade.LEVELS:
            rng = degrade.level_rng(seed, name, level)
            images.append(degrade.degrade(train[rows], name, kind.strength(level), rng, textures=textures))
            cells += [f"{name}/{level}"] * len(rows)
            originals.append(rows)
    return np.concatenate(images), np.array(cells), np.concatenate(originals)


def benchmark_stage(ctx: StageContext) -> dict:
    from mnistmem import copies, data, degrade, recall
    from mnistmem.integrity import sha256_file

    train, _ = data.load_mnist("train")
    rows = np.sort(np.random.default_rng(ctx.config["seed"]).choice(len(train), ctx.config["images"], replace=False))
    main = ctx.upstream("main")
    gan_file = main.path(ctx.config["texture_from"], SAMPLES_FILE)
    gan_samples, _ = load_samples(gan_file)
    textures = degrade.texture_residuals(gan_samples[: ctx.config["texture_bank"]])
    positives, cells, originals = planted_copies(train, rows, textures, ctx.config["seed"])
    table = copies.score_samples(positives, None, train, **judge_features(train), progress=ctx.progress)
    baseline = ctx.upstream("calibration").table("baseline")
    fit, report = recall.calibration_split(len(baseline))
    reports = {}
    for name, scores in table.scores.items():
        if name not in baseline.scores:
            continue
        criterion = copies.CRITERIA[name]
        reports[name] = recall.criterion_report(
            scores,
            cells,
            baseline.scores[name][fit],
            baseline.scores[name][report],
            criterion.direction,
            criterion.default_threshold,
            book_inclusive=criterion.inclusive,
        )
        reports[name]["chosen_by"] = criterion.chosen_by
    record = {
        "cells": sorted(set(cells.tolist()), key=cells.tolist().index),
        "degradations": {
            n: {
                "strengths": dict(zip(degrade.LEVELS, d.strengths, strict=True)),
                "unit": d.unit,
                "held_out": d.held_out,
            }
            for n, d in degrade.DEGRADATIONS.items()
        },
        "positives": len(positives),
        "negatives": {"fit": len(fit), "report": len(report)},
        "nearest_is_original": float((table.nn_index[:, 0] == originals).mean()),
        "criteria": reports,
    }
    write_atomic(ctx.dir / REPORT_FILE, lambda handle: handle.write(json.dumps(record, indent=1).encode()))
    keep = np.concatenate(
        [np.flatnonzero(cells == cell)[:EXAMPLES_PER_CELL] for cell in record["cells"]]
    )  # the first training digits of the fixed choice, in every cell
    write_atomic(
        ctx.dir / EXAMPLES_FILE,
        lambda handle: np.savez_compressed(
            handle,
            images=positives[keep],
            cells=cells[keep],
            originals=originals[keep],
            **{f"score_{n}": table.scores[n][keep] for n in reports},
        ),
    )
    moderate = {n: recall.recall_at(r, str(recall.TARGET_RATES[0]), "moderate") for n, r in reports.items()}
    return {
        "positives": len(positives),
        "texture_source_sha256": sha256_file(gan_file),
        "auc": {n: r["auc"] for n, r in reports.items()},
        "recall_moderate_at_0.1%": moderate,
        "recall_moderate_at_book_threshold": {n: recall.recall_at(r, "book", "moderate") for n, r in reports.items()},
        "false_alarms_at_book_threshold": {
            n: r["at_book_threshold"]["false_alarms"]["rate"] for n, r in reports.items()
        },
    }


def plan(scale: str) -> list[Stage]:
    settings = scales.config(scale, "recall")
    return [
        Stage(
            "benchmark",
            {
                "images": settings["images"],
                "texture_bank": settings["texture_bank"],
                "texture_from": "sample_gan",
                "seed": 0,
            },
            benchmark_stage,
        )
    ]


EXPERIMENT = Experiment(
    name="recall",
    question="Which definitions of a copy still catch a training digit that a generator has slightly damaged?",
    plan=plan,
    requires=("calibration", "main"),
)
