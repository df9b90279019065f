"""A small in-memory trainer for unlearning: start a model, continue it, save and load its full state.

Unlearning needs what `mnistmem.training.train` deliberately does not offer: continuing a trained model on
*different* data (fine-tuning, relearning, SISA's slice-by-slice training), a gradient-ascent term on the
item to forget (NegGrad), and models that start from the *same* initial weights (so that the weight
difference between "with" and "without the item" is caused by the item alone). Every method in
`mnistmem.unlearn` trains through `fit`, so their compute costs are measured the same way.

Determinism follows `mnistmem.training`: the initial weights come from `seed`, the batch of local step k is
`training.batch_indices(k, batch_size, n, seed)` and the global torch RNG is reseeded before every step.
Saved states use the checkpoint layout of `mnistmem.checkpoints`, so `checkpoints.load_model` reads them.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mnistmem import checkpoints as ckpt
from mnistmem.models import FamilyModel, build_model, model_class
from mnistmem.models.base import to_model_input
from mnistmem.training import batch_indices, flatten_optimizers, step_seed


@dataclass
class Cost:
    """Compute spent: optimizer steps, training images processed (forget images included) and wall seconds."""

    steps: int = 0
    images: int = 0
    seconds: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.steps + other.steps, self.images + other.images, self.seconds + other.seconds)

    def to_dict(self) -> dict[str, float]:
        return {"steps": self.steps, "images": self.images, "seconds": round(self.seconds, 3)}


@dataclass
class TrainState:
    """A model with its optimizers, EMA weights (if the family keeps them) and the number of steps taken."""

    model: FamilyModel
    optimizers: dict[str, torch.optim.Optimizer]
    ema: Any  # diffusers EMAModel or None
    settings: dict[str, Any]  # family, model_kwargs, lr, ema, batch_size, seed
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # what it was trained on, in order

    def clone(self) -> TrainState:
        """An independent copy (weights, optimizer moments and EMA), e.g. to fine-tune without touching this one."""
        return copy.deepcopy(self)

    def sampling_model(self) -> FamilyModel:
        """A copy of the model in eval mode with the EMA weights, as `checkpoints.load_model` would give."""
        model = copy.deepcopy(self.model)
        if self.ema is not None:
            self.ema.copy_to(model.ema_module().parameters())
        model.config = {"unlearning": self.history}
        return model.eval()


def new_state(
    family: str,
    model_kwargs: dict[str, Any],
    seed: int,
    batch_size: int,
    lr: float | None = None,
    ema: float | str | None = "auto",
) -> TrainState:
    """A freshly initialised model whose initial weights depend only on `seed`."""
    from diffusers.training_utils import EMAModel

    cls = model_class(family)
    lr = cls.default_lr if lr is None else float(lr)
    ema = cls.default_ema if ema == "auto" else ema
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(family, **model_kwargs)
    target = model.ema_module()
    ema_model = EMAModel(target.parameters(), decay=float(ema), foreach=False) if ema and target is not None else None
    settings = {"family": family, "model_kwargs": dict(model_kwargs), "lr": lr, "ema": ema, "batch_size": batch_size}
    return TrainState(model.train(), model.optimizers(lr), ema_model, {**settings, "seed": seed})


class _Deferred:
    """Stands in for an optimizer inside `train_step`: keeps gradients already accumulated (no zero_grad) and
    applies the real update, after optional gradient clipping, only when given one."""

    def __init__(self, inner: torch.optim.Optimizer | None = None, params=None, max_norm: float | None = None):
        self.inner, self.params, self.max_norm = inner, params, max_norm

    def zero_grad(self, set_to_none: bool = True) -> None:
        pass

    def step(self) -> None:
        if self.inner is None:
            return
        if self.max_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.max_norm)
        self.inner.step()


def _check_images(images: np.ndarray, labels: np.ndarray, name: str) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.shape[1:] != (28, 28):
        raise ValueError(f"{name} must be uint8 [N,28,28], got {getattr(images, 'dtype', type(images))}")
    if len(images) == 0:
        raise ValueError(f"{name} is empty: there is nothing to train on")
    if len(labels) != len(images):
        raise ValueError(f"{name}: {len(images)} images but {len(labels)} labels")


def fit(
    state: TrainState,
    images: np.ndarray,
    labels: np.ndarray,
    steps: int,
    seed: int,
    forget: tuple[np.ndarray, np.ndarray] | None = None,
    forget_weight: float = 1.0,
    max_grad_norm: float | None = None,
    note: str = "",
) -> Cost:
    """Train `state` in place for `steps` steps on (images, labels); return the compute it took.

    With `forget=(images, labels)` each step is NegGrad (Golatkar et al. 2020; the "NegGrad+" form of
    Kurmanji et al. 2023, arXiv 2302.09880): descend the loss on a batch of retained data and *ascend* the
    loss on a batch of the forget set weighted by `forget_weight`, in one update.
    """
    _check_images(images, labels, "training images")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    model, batch_size = state.model, state.settings["batch_size"]
    device = model.device
    if forget is not None:
        _check_images(*forget, "forget images")
        if set(state.optimizers) != {"main"}:
            raise ValueError(
                f"NegGrad needs a model with one optimizer; a {model.family} model has {list(state.optimizers)}"
            )
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    tick, processed = time.perf_counter(), 0
    for k in range(steps):
        rows = batch_indices(k, batch_size, len(images), seed)
        x, y = to_model_input(images[rows], device), torch.from_numpy(labels[rows]).to(device)
        torch.manual_seed(step_seed(seed, state.step))
        if forget is None and max_grad_norm is None:
            model.train_step(x, y, state.optimizers, lambda loss: loss.backward())
        else:
            real = state.optimizers["main"]
            real.zero_grad(set_to_none=True)
            if forget is not None:
                f_rows = batch_indices(k, min(batch_size, len(forget[0])), len(forget[0]), seed + 1)
                fx = to_model_input(forget[0][f_rows], device)
                fy = torch.from_numpy(forget[1][f_rows]).to(device)
                model.train_step(fx, fy, {"main": _Deferred()}, lambda loss: (-forget_weight * loss).backward())
                processed += len(f_rows)
            model.train_step(x, y, {"main": _Deferred(real, params, max_grad_norm)}, lambda loss: loss.backward())
        if state.ema is not None:
            state.ema.step(model.ema_module().parameters())
        state.step += 1
        processed += len(rows)
    seconds = time.perf_counter() - tick
    state.history.append(
        {"note": note, "steps": steps, "images": len(images), "seed": seed, "neggrad": forget is not None}
    )
    return Cost(steps, processed, seconds)


# ------------------------------------------------------------------------------------------- save / load
def save_state(state: TrainState, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the full state as a checkpoint under `folder` (readable by `checkpoints.load_model(folder)`)."""
    tree, tensors = flatten_optimizers(state.optimizers)
    files = {ckpt.MODEL: dict(state.model.state_dict()), ckpt.OPTIMIZER: tensors}
    info: dict[str, Any] = {
        "family": state.settings["family"],
        "model_kwargs": state.model.model_kwargs,
        "config": {"unlearning": state.history, **state.settings},
        "settings": state.settings,
        "history": state.history,
        "step": state.step,
        "optimizers": tree,
        **(extra or {}),
    }
    if state.ema is not None:
        names = [name for name, _ in state.model.ema_module().named_parameters()]
        files[ckpt.EMA] = dict(zip(names, state.ema.shadow_params, strict=True))
        info["ema_optimization_step"] = state.ema.optimization_step
    return ckpt.write_checkpoint(Path(folder), state.step, info, files)


def load_state(folder: str | Path) -> TrainState:
    """The state saved by `save_state` (the latest checkpoint under `folder`)."""
    checkpoint = ckpt.resolve_checkpoint(folder)
    info = ckpt.read_state(checkpoint)
    if "settings" not in info:
        raise ckpt.CheckpointError(f"{checkpoint} was not written by mnistmem.unlearn.trainer.save_state")
    settings = info["settings"]
    state = new_state(
        settings["family"],
        settings["model_kwargs"],
        settings["seed"],
        settings["batch_size"],
        settings["lr"],
        settings["ema"],
    )
    ckpt.load_into(state.model, ckpt.read_tensors(checkpoint / ckpt.MODEL, info), checkpoint / ckpt.MODEL)
    restored = ckpt.unflatten_state(info["optimizers"], ckpt.read_tensors(checkpoint / ckpt.OPTIMIZER, info))
    for name, optimizer in state.optimizers.items():
        optimizer.load_state_dict(restored[name])
    if state.ema is not None:
        tensors = ckpt.read_tensors(checkpoint / ckpt.EMA, info)
        names = [name for name, _ in state.model.ema_module().named_parameters()]
        state.ema.shadow_params = [tensors[name].clone() for name in names]
        state.ema.optimization_step = info["ema_optimization_step"]
    state.step, state.history = info["step"], list(info["history"])
    return state
