"""Randomness: does a copied training image come from one lucky seed, or from many?

Question: for every training image that a model copied (nearest-neighbour ratio test), how many distinct
random seeds produced a copy of it? And can a copy be regenerated, bit for bit, from its stored seed alone?
Expected: memorised images come back from many different seeds (the output is not a random accident but
a fixed point the model returns to), and a stored seed regenerates the identical image, because sampling
is a deterministic function of the seed and the weights.
"""

from __future__ import annotations

import numpy as np

from mnistmem.experiments.runner import Experiment, Stage, StageContext
from mnistmem.experiments.stages import MODEL_DIR, SAMPLES_FILE, TABLE_FILE, load_samples, sample_batch_size

REGENERATE = 5


def scored_models(ctx: StageContext) -> list[tuple[str, str, str]]:
    """(experiment, score stage, its sample stage) for every scored sample set in `main` and `size`."""
    out = []
    for experiment in ("main", "size"):
        manifest = ctx.upstream(experiment).manifest
        for name in manifest["stages"]:
            if name.startswith("score_"):
                out.append((experiment, name, "sample_" + name.removeprefix("score_")))
    return out


def seeds_stage(ctx: StageContext) -> dict:
    from mnistmem import checkpoints, sampling, tables

    models = []
    for experiment, score, sample in scored_models(ctx):
        result = ctx.upstream(experiment)
        table = tables.load_table(result.path(score, TABLE_FILE))
        images, seeds = load_samples(result.path(sample, SAMPLES_FILE))
        flagged = np.flatnonzero(table.flags["nn_ratio"])
        nearest = table.nn_index[flagged, 0]
        copied, seed_counts = np.unique(nearest, return_counts=True)  # each sample has its own seed
        regenerated = []
        if len(flagged):
            train_stage = result.stage(sample)["config"]["from"]
            model = checkpoints.load_model(result.path(train_stage, MODEL_DIR))
            for i in flagged[:REGENERATE]:
                again = sampling.regenerate(model, int(seeds[i]), **_sampler_kwargs(result, sample))
                regenerated.append(
                    {"sample": int(i), "seed": int(seeds[i]), "identical": bool(np.array_equal(again, images[i]))}
                )
        order = np.argsort(-seed_counts, kind="stable")
        models.append(
            {
                "experiment": experiment,
                "model": score.removeprefix("score_"),
                "n_samples": len(table),
                "copies": len(flagged),
                "copied_training_images": len(copied),
                "seeds_per_copied_image": {"index": copied[order].tolist(), "seeds": seed_counts[order].tolist()},
                "reproduced_by_several_seeds": int((seed_counts >= 2).sum()),
                "regenerated": regenerated,
            }
        )
    return {"models": models}


def _sampler_kwargs(result, sample: str) -> dict:
    config = result.stage(sample)["config"]
    return {"batch_size": sample_batch_size(config), **config.get("sampler", {})}


def plan(scale: str) -> list[Stage]:
    return [Stage("seeds", {"regenerate": REGENERATE, "criterion": "nn_ratio"}, seeds_stage)]


EXPERIMENT = Experiment(
    name="randomness",
    question="Is a copied training image reproduced by one lucky seed or by many, and does its seed regenerate it?",
    plan=plan,
    requires=("calibration", "main", "size"),
)
