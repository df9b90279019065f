"""Duplication: are works that appear many times in the training data reproduced more often?

Question: four canaries (the glyphs ©, ®, § and ¶, stand-ins for protected works that no digit resembles)
are planted in one training set 1, 10, 100 and 1000 times (at smoke scale fewer). For each, what share of
samples reproduce it, and how close does the closest sample come?
Expected: reproduction grows with the number of duplicates (Carlini et al. 2023 found duplicated training
images far more likely to be extracted). A canary seen once may not come back at all.
"""

from __future__ import annotations

import numpy as np

from mnistmem import tables
from mnistmem.atomic import write_atomic
from mnistmem.experiments import scales
from mnistmem.experiments.runner import Experiment, Stage, StageContext
from mnistmem.experiments.stages import (
    OWN_TABLE_FILE,
    SAMPLES_FILE,
    canary_reproductions,
    load_samples,
    sample_stage,
    train_config,
    train_stage,
)
from mnistmem.results import CANARY_FILE

GLYPHS = ("copyright", "registered", "section", "pilcrow")


def canary_specs(counts: list[int]) -> list[dict]:
    return [{"glyph": glyph, "count": count} for glyph, count in zip(GLYPHS, counts, strict=False)]


def reproduction_stage(ctx: StageContext) -> dict:
    """Is a canary reproduced? Every sample is judged by every copy criterion against the model's *own*
    distinct training set (its digits plus each canary once, `stages.score_against_own_training_set`), and
    reproduces a canary under a criterion when that criterion flags it and its nearest training image under
    that criterion is the canary. Also the pixel distance from every sample to every canary (for the gallery).
    """
    from mnistmem import copies

    specs = ctx.config["canaries"]
    images, seeds = load_samples(ctx.input(ctx.config["from"]) / SAMPLES_FILE)
    judged = canary_reproductions(images, seeds, ctx.config["data"])
    canaries, to_canary, table = judged.canaries, judged.to_canary, judged.table
    write_atomic(ctx.dir / CANARY_FILE, lambda h: np.savez_compressed(h, canaries=canaries, distance=to_canary))
    tables.save_table(table.first_neighbours(tables.STORED_NEIGHBOURS), ctx.dir / OWN_TABLE_FILE)
    rows = []
    for k, spec in enumerate(specs):
        closest = int(np.argmin(to_canary[:, k]))
        by_criterion = {
            name: {"reproduced": int(hits.sum()), "share": float(hits.mean())} for name, hits in judged.hits[k].items()
        }
        rows.append(
            {
                "glyph": spec["glyph"],
                "count": spec["count"],
                "n": len(images),
                # the book's headline definition; every definition in by_criterion
                **by_criterion[copies.HEADLINE],
                "by_criterion": by_criterion,
                # samples whose nearest training image by pixels is the canary: no digit resembles a glyph, so
                # these look like it more than like any digit (copies or not); an upper reading beside the counts
                "nearest_is_canary": int((table.nn_index[:, 0] == judged.rows[k]).sum()),
                "closest_distance": float(to_canary[closest, k]),
                "closest_sample": closest,
                "closest_seed": int(seeds[closest]),
            }
        )
    return {
        "headline": copies.HEADLINE,
        "threshold": copies.CRITERIA["l2"].default_threshold,  # the pixel distance drawn beside the closest sample
        "thresholds": table.thresholds,
        "canaries": rows,
        "criteria": copies.summarize(table, judged.baseline),
        "judged_against": f"the model's own {table.meta['n_train_distinct']} distinct training images",
    }


def plan(scale: str) -> list[Stage]:
    settings = scales.config(scale, "duplication")
    data = {"n": settings["n"], "seed": 0, "canaries": canary_specs(settings["canaries"])}
    stages = []
    for family in ("diffusion", "gan"):
        overrides = {"steps": settings["steps"]} if family == "diffusion" else {}
        if family == "gan" and "gan_steps" in settings:
            overrides = {"steps": settings["gan_steps"]}
        train = train_config(scale, family, data=data, **overrides)
        sampler = scales.config(scale, "main")["sampler"] if family == "diffusion" else {}
        stages += [
            Stage(f"train_{family}", {"train": train}, train_stage),
            Stage(
                f"sample_{family}",
                {"from": f"train_{family}", "n": settings["n_samples"], "seed": 1, "sampler": sampler},
                sample_stage,
                after=(f"train_{family}",),
            ),
            Stage(
                f"reproduction_{family}",
                {"from": f"sample_{family}", "canaries": data["canaries"], "data": data, "judged": "own set"},
                reproduction_stage,
                after=(f"sample_{family}",),
            ),
        ]
    return stages


EXPERIMENT = Experiment(
    name="duplication",
    question="Are training images that appear 1, 10, 100 or 1000 times reproduced more often?",
    plan=plan,
)
