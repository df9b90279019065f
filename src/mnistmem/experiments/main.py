"""Main: do a GAN, a VAE and a diffusion model trained on all 60,000 digits emit copies?

Question: of N samples from each model, how many are copies of a training image under each criterion,
beyond the rate at which independent handwriting (the test digits) passes the same criterion?
Expected (the book's thesis): some samples of some models are near-exact training images; the
literature predicts few or none when models are trained on all 60,000 digits (Gu et al. 2023 found no
memorisation on full CIFAR-10) and more for diffusion than for GANs (Carlini et al. 2023). Whatever the
count, it is reported as measured, with the baseline and confidence intervals.
"""

from __future__ import annotations

from mnistmem.experiments import scales
from mnistmem.experiments.runner import Experiment, Stage
from mnistmem.experiments.stages import model_stages, train_config

FAMILIES = ("gan", "vae", "diffusion")


def plan(scale: str) -> list[Stage]:
    n_samples = scales.config(scale, "main")["n_samples"]
    stages = []
    for family in FAMILIES:
        stages += model_stages(scale, family, train_config(scale, family, data={}), n_samples, data={})
    return stages


EXPERIMENT = Experiment(
    name="main",
    question="Do a GAN, a VAE and a diffusion model trained on all 60,000 digits emit copies of training images?",
    plan=plan,
    requires=("calibration",),
)
