"""Forgetting by training: exact retraining, fine-tuning on the retained data, NegGrad, and relearning.

Every method is a run of the one trainer (`mnistmem.training.train`), configured from the `TrainConfig` of
the model it starts from (the *original*), so all of them are resumable, run on any device and count their
compute the same way (`training.Cost`):

* `retrain` — the gold standard (and the cost baseline of every other method): the original's config on
  the data without the item. The same seed gives the same initial weights and the same steps, so the only
  difference from the original is the item. Exact by construction: the item never touches the new model.
* `finetune` — approximate: continue the original (`init_from` its checkpoint) on the retained data only,
  hoping the item fades (the "fine-tune" baseline of Golatkar et al. 2020 and of SISS, Alberti et al. 2025,
  arXiv 2503.01034).
* `neggrad` — approximate: continue the original with gradient *ascent* on the item's rows balanced by
  descent on retained data in each update ("NegGrad+", Kurmanji et al. 2023, arXiv 2302.09880; a SISS
  baseline): the trainer's `forget` option.
* `relearn` — not a method but its test (the relearning attack): a short further training on the retained data
  plus a handful of look-alike digits (`items.nearby_digits`), never the item; does the item return?

Each takes the folder its run lives in and returns (final checkpoint, cost); none changes its starting
checkpoint (the trainer reads it and verifies its hashes).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from mnistmem import training
from mnistmem.dataspec import DataSpec
from mnistmem.training import Cost, TrainConfig
from mnistmem.unlearn.items import spec_only, spec_without


def run(
    config: TrainConfig, folder: str | os.PathLike, progress: bool = False, deadline: float | None = None
) -> tuple[Path, Cost]:
    """Train (or resume) `config` in `folder`; return its final checkpoint and the compute it took. Past
    `deadline` (`time.monotonic()`) the trainer checkpoints and raises `training.TrainingPaused`; calling again
    continues there, bit-identical to an uninterrupted run."""
    final = training.train(config, folder, resume=True, progress=progress, deadline=deadline)
    return final, training.run_cost(final)


def continued(original: TrainConfig, start: str | os.PathLike, data: DataSpec, steps: int, seed: int, **changes):
    """The config of a run that continues the model at checkpoint `start` for `steps` steps on `data`: the
    original's model, batch size and base learning rate (constant, no warm-up), with batches and noise of `seed`."""
    return replace(
        original,
        data=data,
        steps=steps,
        seed=seed,
        init_from=str(start),
        init_digest=None,  # recomputed from the checkpoint as it is now
        lr_schedule="constant",
        warmup_steps=0,
        schedule_steps=None,
        checkpoint_every=steps,
        keep_every=None,
        **changes,
    )


def retrain(
    original: TrainConfig, source: int, folder: str | os.PathLike, deadline: float | None = None
) -> tuple[Path, Cost]:
    """Retrain from scratch on the original's data without the item `source` (its spec excludes it)."""
    return run(replace(original, data=spec_without(original.data, source)), folder, deadline=deadline)


def finetune(
    original: TrainConfig,
    start: str | os.PathLike,
    source: int,
    steps: int,
    seed: int,
    folder: str | os.PathLike,
    deadline: float | None = None,
) -> tuple[Path, Cost]:
    """Continue the model at `start` for `steps` steps on the original's data without the item."""
    return run(continued(original, start, spec_without(original.data, source), steps, seed), folder, deadline=deadline)


def neggrad(
    original: TrainConfig,
    start: str | os.PathLike,
    source: int,
    steps: int,
    seed: int,
    folder: str | os.PathLike,
    forget_weight: float = 1.0,
    grad_clip: float | None = 1.0,
    deadline: float | None = None,
) -> tuple[Path, Cost]:
    """Continue the model at `start` with ascent on the item's rows and descent on the retained rows (NegGrad+).

    Gradient ascent on a diffusion loss is unbounded, so the update's gradient norm is clipped (`grad_clip`)
    and the step count kept short; the retained-data term keeps the model a digit model.
    """
    if not forget_weight > 0:
        raise ValueError(f"forget_weight must be positive, got {forget_weight}")
    config = continued(
        original,
        start,
        spec_without(original.data, source),
        steps,
        seed,
        forget=spec_only(original.data, source),
        forget_weight=float(forget_weight),
        grad_clip=grad_clip,
    )
    return run(config, folder, deadline=deadline)


def relearn(
    original: TrainConfig,
    start: str | os.PathLike,
    source: int,
    steps: int,
    seed: int,
    folder: str | os.PathLike,
    nearby: tuple[int, ...] = (),
    deadline: float | None = None,
) -> tuple[Path, Cost]:
    """A short further training of the model at `start` on the data without the item plus the MNIST digits
    `nearby` (look-alikes the model never saw): does the item come back?"""
    data = replace(spec_without(original.data, source), extra=tuple(int(i) for i in nearby))
    return run(continued(original, start, data, steps, seed), folder, deadline=deadline)
