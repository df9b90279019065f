"""Size: how does copying depend on the number of training images, and when during training does it begin?

Question: for a GAN and a diffusion model trained on random subsets of n digits, what share of samples
are copies, and what share have their nearest of all 60,000 training images among the model's own n
(chance: n / 60,000)? And for the smallest sets, how do these shares grow over training steps?
Expected: copying rises steeply as n shrinks (Somepalli et al. 2023; Gu et al. 2023; Feng et al. 2021)
and appears only after enough training steps. The point n = 60,000 is the `main` experiment.
"""

from __future__ import annotations

from mnistmem.experiments import scales
from mnistmem.experiments.runner import Experiment, Stage
from mnistmem.experiments.stages import checkpoint_curve_stage, model_stages, sampler_options, train_config

FAMILIES = ("gan", "diffusion")


def plan(scale: str) -> list[Stage]:
    settings = scales.config(scale, "size")
    stages = []
    for family in FAMILIES:
        for n in settings["sizes"][family]:
            data = {"n": n, "seed": 0}
            overrides = {"keep_every": settings["keep_every"]}
            if "small_steps" in settings:
                overrides["steps"] = settings["small_steps"][family]
            train = train_config(scale, family, data=data, **overrides)
            stages += model_stages(scale, f"{family}_{n}", train, settings["n_samples"], data)
        smallest = min(settings["sizes"][family])
        tag = f"{family}_{smallest}"
        curve = {
            "from": f"train_{tag}",
            "n": max(64, settings["n_samples"] // 4),
            "seed": 2,
            "data": {"n": smallest, "seed": 0},
            "sampler": sampler_options(scale, family),
        }
        stages.append(Stage(f"curve_{tag}", curve, checkpoint_curve_stage, after=(f"train_{tag}",)))
    return stages


EXPERIMENT = Experiment(
    name="size",
    question="How does copying grow as the training set shrinks, and when during training does it begin?",
    plan=plan,
    requires=("calibration",),
)
