"""The experiment registry behind `mnistmem reproduce`.

Each experiment lives in its own module exposing `EXPERIMENT` (an `Experiment`): a question, the
direction the book's thesis expects, and a plan of stages for each scale (smoke, cpu, gpu).
Experiments run in registry order, because later ones read earlier ones' results.
"""

from __future__ import annotations

import importlib

from mnistmem.experiments.runner import Experiment, Stage, StageContext, run_experiment

#: name -> module, in the order they run.
REGISTRY: dict[str, str] = {
    "calibration": "mnistmem.experiments.calibration",
    "training": "mnistmem.experiments.training",
    "main": "mnistmem.experiments.main",
    "census": "mnistmem.experiments.census",
    "recall": "mnistmem.experiments.recall",
    "onset": "mnistmem.experiments.onset",
    "dose": "mnistmem.experiments.dose",
    "small": "mnistmem.experiments.small",
    "randomness": "mnistmem.experiments.randomness",
    "storage": "mnistmem.experiments.storage",
    "unlearning": "mnistmem.experiments.unlearning",
    "extraction": "mnistmem.experiments.extraction",
}

__all__ = ["REGISTRY", "Experiment", "Stage", "StageContext", "get", "run_experiment"]


def get(name: str) -> Experiment:
    """The experiment called `name`; an error lists the known ones."""
    if name not in REGISTRY:
        raise KeyError(f"unknown experiment {name!r}; known: {', '.join(REGISTRY) or '(none yet)'}")
    return importlib.import_module(REGISTRY[name]).EXPERIMENT
