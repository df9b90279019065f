"""Forgetting by training: exact retraining, fine-tuning on the retained data, and NegGrad.

* `retrain` — the gold standard (and the cost baseline of every other method): a fresh model, from the
  same initial weights and for the same number of steps as the original, on the data without the item.
  Exact by construction: the item never touches the new model.
* `finetune` — approximate: continue the trained model on the retained data only, hoping the item fades
  (the "fine-tune" baseline of Golatkar et al. 2020 and of SISS, Alberti et al. 2025, arXiv 2503.01034).
* `neggrad` — approximate: continue the trained model with gradient *ascent* on the item, balanced by
  descent on retained data ("NegGrad+", Kurmanji et al. 2023, arXiv 2302.09880; used as a baseline by SISS).

Each returns the new `TrainState` and the `Cost` it took; none changes the state it was given.
"""

from __future__ import annotations

from typing import Any

from mnistmem.dataspec import DataSpec, TrainingData
from mnistmem.unlearn.items import only, spec_without, without
from mnistmem.unlearn.trainer import Cost, TrainState, fit, new_state


def train_from_scratch(data: TrainingData, settings: dict[str, Any], steps: int, seed: int) -> tuple[TrainState, Cost]:
    """A model trained on `data` from the initial weights of `seed`. `settings`: family, model_kwargs,
    batch_size and optionally lr and ema (see `trainer.new_state`)."""
    state = new_state(
        settings["family"],
        settings.get("model_kwargs", {}),
        seed,
        settings["batch_size"],
        settings.get("lr"),
        settings.get("ema", "auto"),
    )
    cost = fit(state, data.images, data.labels, steps, seed, note=f"from scratch on {len(data)} rows")
    return state, cost


def retrain(spec: DataSpec, source: int, settings: dict[str, Any], steps: int, seed: int) -> tuple[TrainState, Cost]:
    """Retrain from scratch on `spec` without the item `source`: the data is rebuilt from a spec that excludes it."""
    data = spec_without(spec, source).build()
    return train_from_scratch(data, settings, steps, seed)


def finetune(base: TrainState, data: TrainingData, source: int, steps: int, seed: int) -> tuple[TrainState, Cost]:
    """Continue a copy of `base` for `steps` steps on `data` without the item."""
    state = base.clone()
    retained = without(data, source)
    cost = fit(state, retained.images, retained.labels, steps, seed, note=f"fine-tune without source {source}")
    return state, cost


def neggrad(
    base: TrainState,
    data: TrainingData,
    source: int,
    steps: int,
    seed: int,
    forget_weight: float = 1.0,
    max_grad_norm: float | None = 1.0,
) -> tuple[TrainState, Cost]:
    """Continue a copy of `base` with ascent on the item's rows and descent on the retained rows (NegGrad+).

    Gradient ascent on a diffusion loss is unbounded, so the update's gradient norm is clipped
    (`max_grad_norm`) and the step count kept short; the retained-data term keeps the model a digit model.
    """
    if forget_weight <= 0:
        raise ValueError(f"forget_weight must be positive, got {forget_weight}")
    state = base.clone()
    retained, forget = without(data, source), only(data, source)
    cost = fit(
        state,
        retained.images,
        retained.labels,
        steps,
        seed,
        forget=(forget.images, forget.labels),
        forget_weight=forget_weight,
        max_grad_norm=max_grad_norm,
        note=f"NegGrad on source {source}",
    )
    return state, cost


def relearn(state: TrainState, data: TrainingData, source: int, steps: int, seed: int) -> tuple[TrainState, Cost]:
    """A short further training on data that does not contain the item: does the item come back?"""
    copy = state.clone()
    retained = without(data, source)
    cost = fit(copy, retained.images, retained.labels, steps, seed, note=f"relearn without source {source}")
    return copy, cost
