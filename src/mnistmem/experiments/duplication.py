"""Duplication: are works that appear many times in the training data reproduced more often?

Question: four canaries (the glyphs ©, ®, § and ¶, stand-ins for protected works that no digit resembles)
are planted in one training set 1, 10, 100 and 1000 times (at smoke scale fewer). For each, what share of
samples reproduce it, and how close does the closest sample come?
Expected: reproduction grows with the number of duplicates (Carlini et al. 2023 found duplicated training
images far more likely to be extracted). A canary seen once may not come back at all.
"""

from __future__ import annotations

import numpy as np

from mnistmem.atomic import write_atomic
from mnistmem.experiments import scales
from mnistmem.experiments.runner import Experiment, Stage, StageContext
from mnistmem.experiments.stages import SAMPLES_FILE, load_samples, sample_stage, train_config, train_stage

GLYPHS = ("copyright", "registered", "section", "pilcrow")
CANARY_FILE = "canaries.npz"


def canary_specs(counts: list[int]) -> list[dict]:
    return [{"glyph": glyph, "count": count} for glyph, count in zip(GLYPHS, counts, strict=False)]


def reproduction_stage(ctx: StageContext) -> dict:
    """Distances from every sample to every canary; a sample reproduces a canary when it is within the
    `l2` copy threshold of it (the same threshold the book uses for training digits)."""
    from mnistmem.canaries import render_canaries
    from mnistmem.copies import CRITERIA
    from mnistmem.neighbors import knn

    specs = ctx.config["canaries"]
    canaries = render_canaries([c["glyph"] for c in specs])
    images, seeds = load_samples(ctx.input(ctx.config["from"]) / SAMPLES_FILE)
    distance, index = knn(images, canaries, k=len(canaries), progress=False)
    to_canary = np.empty((len(images), len(canaries)))
    to_canary[np.arange(len(images))[:, None], index] = distance
    threshold = CRITERIA["l2"].default_threshold
    write_atomic(ctx.dir / CANARY_FILE, lambda h: np.savez_compressed(h, canaries=canaries, distance=to_canary))
    rows = []
    for k, spec in enumerate(specs):
        hits = to_canary[:, k] <= threshold
        closest = int(np.argmin(to_canary[:, k]))
        rows.append(
            {
                "glyph": spec["glyph"],
                "count": spec["count"],
                "reproduced": int(hits.sum()),
                "n": len(images),
                "share": float(hits.mean()),
                "closest_distance": float(to_canary[closest, k]),
                "closest_sample": closest,
                "closest_seed": int(seeds[closest]),
            }
        )
    return {"threshold": threshold, "canaries": rows}


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
                {"from": f"sample_{family}", "canaries": data["canaries"]},
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
