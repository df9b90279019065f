"""Main: do a GAN, a VAE and a diffusion model trained on all 60,000 digits emit copies?

Question: of N samples from each model, how many are copies of a training image under each criterion,
beyond the rate at which independent handwriting (the test digits) passes the same criterion?
Expected (the book's thesis): some samples of some models are near-exact training images; the
literature predicts few or none when models are trained on all 60,000 digits (Gu et al. 2023 found no
memorisation on full CIFAR-10) and more for diffusion than for GANs (Carlini et al. 2023). Whatever the
count, it is reported as measured, with the baseline and confidence intervals.
"""

from __future__ import annotations

import numpy as np

from mnistmem.experiments import scales
from mnistmem.experiments.runner import Experiment, Stage, StageContext
from mnistmem.experiments.stages import sampled_stages, sampler_options, sampler_stage, train_config
from mnistmem.experiments.training import TARGETS

FAMILIES = ("gan", "vae", "diffusion")


def reference_stage(ctx: StageContext) -> dict:
    """What a perfect model would score: real training digits, drawn at random, as if they were samples.

    Their MNIST-FID against the test digits is the floor a model's FID can reach with this many samples,
    and their classifier-confident share the ceiling of recognisability; both give the models' numbers a
    scale. Also the same two measures for the test digits themselves."""
    from mnistmem import data, quality
    from mnistmem.models import classifier

    train, _ = data.load_mnist("train")
    test, _ = data.load_mnist("test")
    n = min(ctx.config["n"], len(train))
    real = train[np.random.default_rng(ctx.config["seed"]).choice(len(train), n, replace=False)]
    model = classifier.load_pretrained()
    _, confidence = quality.classifier_confidence(real, model)
    _, test_confidence = quality.classifier_confidence(test, model)
    return {
        "n": n,
        "fid": float(quality.mnist_fid(real, test, model)),
        "confident_share": quality.recognised_share(confidence),
        "test_confident_share": quality.recognised_share(test_confidence),
    }


def plan(scale: str) -> list[Stage]:
    """The reference, then for each family: its model (the `training` experiment's final checkpoint, exported
    as a sampler small enough to commit), `n_samples` drawn from it, and their scores."""
    n_samples = scales.config(scale, "main")["n_samples"]
    stages = [Stage("reference", {"n": n_samples, "seed": 0}, reference_stage)]
    for family in FAMILIES:
        model = {
            "experiment": "training",
            "from": f"train_{family}",
            "train": train_config(scale, family, data={}, section="training"),
            "dtype": "float16",
            "check_n": 256,
            "seed": 4,
            "sampler": sampler_options(scale, family, trained=True),
            "quality_targets": TARGETS[family],
        }
        stages.append(Stage(f"model_{family}", model, sampler_stage))
        stages += sampled_stages(scale, family, f"model_{family}", family, n_samples, data={}, trained=True)
    return stages


EXPERIMENT = Experiment(
    name="main",
    question="Do a GAN, a VAE and a diffusion model trained on all 60,000 digits emit copies of training images?",
    plan=plan,
    requires=("calibration", "training"),
)
