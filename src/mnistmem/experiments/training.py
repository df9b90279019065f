"""Training: the models trained until their samples are real-looking digits, and how they got there.

Question: how good do the three families get on two CPU cores (share of samples the classifier recognises,
MNIST-FID), and does copying rise as quality rises?
Expected: published MNIST models reach a recognised share above 90% and a small MNIST-FID after tens of
epochs; the committed `main` models (3-6 epochs) are far from that, so their "no copies" says more about
under-training than about models. Each family trains with its recipe (`scales`, section "training") over
several sittings of at most 90 minutes (`mnistmem reproduce --scale cpu --only training --minutes 85`),
keeping checkpoints along the way.
"""

from __future__ import annotations

import time

import numpy as np

from mnistmem.experiments import scales
from mnistmem.experiments.runner import Experiment, Stage, StageContext
from mnistmem.experiments.stages import draw, sampler_options, train_config, train_stage

#: A sample counts as recognised when the classifier labels it with at least this confidence (as in `main`).
RECOGNISED = 0.9


def quality_curve_stage(ctx: StageContext) -> dict:
    """Quality and copying along the way: `n` samples from every kept checkpoint (and the final one), each
    scored for the classifier-recognised share, MNIST-FID against the 10,000 test digits and copies under
    every criterion against all 60,000 training digits. The FID of `n` samples is biased upwards against the
    10,000-sample FID of `main`: the curve compares checkpoints with each other."""
    from mnistmem import checkpoints, copies, data, quality
    from mnistmem.experiments.stages import judge_features
    from mnistmem.models import classifier

    run = ctx.input(ctx.config["from"]) / "scratch" / "run"
    kept = checkpoints.list_checkpoints(run)
    train, _ = data.load_mnist("train")
    test, _ = data.load_mnist("test")
    judge = classifier.load_pretrained()
    judges = judge_features(train)
    rows = []
    for step, path in kept:
        model = checkpoints.load_model(path)
        tick = time.perf_counter()
        images, seeds = draw(model, ctx.config)
        _, confidence = quality.classifier_confidence(images, judge)
        table = copies.score_samples(images, seeds, train, progress=False, **judges)
        rows.append(
            {
                "step": int(step),
                "recognised_share": float((confidence >= RECOGNISED).mean()),
                "fid": float(quality.mnist_fid(images, test, judge)),
                "copies": {name: int(flags.sum()) for name, flags in table.flags.items()},
                "median_nn_distance": float(np.median(table.nn_distance[:, 0])),
                "seconds": round(time.perf_counter() - tick, 1),
            }
        )
    return {"n": ctx.config["n"], "headline": copies.HEADLINE, "curve": rows}


def plan(scale: str) -> list[Stage]:
    stages = []
    for family in scales.config(scale, "training"):
        train = train_config(scale, family, data={}, section="training")
        stages += [
            Stage(f"train_{family}", {"train": train}, train_stage),
            Stage(
                f"curve_{family}",
                {
                    "from": f"train_{family}",
                    "n": scales.config(scale, "training_curve")["n_samples"],
                    "seed": 2,
                    "sampler": sampler_options(scale, family),
                },
                quality_curve_stage,
                after=(f"train_{family}",),
            ),
        ]
    return stages


EXPERIMENT = Experiment(
    name="training",
    question="How good do the models get on two CPU cores, and does copying rise as their quality rises?",
    plan=plan,
    # Reads nothing from calibration; required so that its stage hashes are those the first sitting of the
    # diffusion run had under `main` (which requires it), and that run continues here.
    requires=("calibration",),
)
