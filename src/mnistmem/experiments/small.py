"""Small: the diffusion model trained on 100 digits, sampled and scored exactly as the main models are.

Question: of the samples of a model that plainly copies (the `onset` grid's smallest diffusion run, trained
on 100 digits to the end of the grid), how many are copies under every definition, judged against all
60,000 training digits and against the model's own 100? This is the book's case where copying is plain: the
law chapter's small model, the randomness and storage experiments' memorising model, and chapter 6's most
copied training images read it.
Expected: nearly every sample copies one of the 100 digits (the onset grid's last checkpoint), far beyond
the rate at which independent handwriting passes the same definitions.

The samples are the first `onset.SEED_SHARE_SAMPLES` seeds of the `seed_share` stage (same model, same base
seed, same block size), so chapter 6's share of seeds per digit and the law chapter's counts describe one set
of samples. The model is read from the onset stage that trained it (its exported sampler), not trained again.
"""

from __future__ import annotations

from mnistmem.experiments import onset, scales
from mnistmem.experiments.onset import SAMPLER_DIR, SEED_SHARE_SAMPLES, SEED_SHARE_SEED
from mnistmem.experiments.runner import Experiment, Stage
from mnistmem.experiments.stages import sample_stage, sampler_options, score_stage


def plan(scale: str) -> list[Stage]:
    n = min(scales.config(scale, "onset")["halves"])
    run = f"grid_diffusion_{n}"
    tag = f"diffusion_{n}"
    data = next(s for s in onset.plan(scale) if s.name == run).config["train"]["data"]  # the run's own digits
    main = scales.config(scale, "main")
    sample = {
        "experiment": "onset",
        "from": run,
        "folder": SAMPLER_DIR,
        "n": SEED_SHARE_SAMPLES[scale],
        "seed": SEED_SHARE_SEED,
        "sampler": sampler_options(scale, "diffusion"),
    }
    score = {"from": f"sample_{tag}", "cells": main["cells"], "cells_fit": main.get("cells_fit"), "data": data}
    return [
        Stage(f"sample_{tag}", sample, sample_stage),
        Stage(f"score_{tag}", score, score_stage, after=(f"sample_{tag}",)),
    ]


EXPERIMENT = Experiment(
    name="small",
    question="How many samples of the diffusion model trained on 100 digits are copies, under every definition?",
    plan=plan,
    requires=("calibration", "onset"),
)
