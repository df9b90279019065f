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

from mnistmem.experiments import scales
from mnistmem.experiments.runner import Experiment, Stage
from mnistmem.experiments.stages import train_config, train_stage


def plan(scale: str) -> list[Stage]:
    return [
        Stage(f"train_{family}", {"train": train_config(scale, family, data={}, section="training")}, train_stage)
        for family in scales.config(scale, "training")
    ]


EXPERIMENT = Experiment(
    name="training",
    question="How good do the models get on two CPU cores, and does copying rise as their quality rises?",
    plan=plan,
    # Reads nothing from calibration; required so that its stage hashes are those the first sitting of the
    # diffusion run had under `main` (which requires it), and that run continues here.
    requires=("calibration",),
)
