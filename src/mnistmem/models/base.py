"""The interface every model family implements, so one trainer and one sampler serve them all.

Images enter models as float tensors [B, 1, 28, 28] scaled to [-1, 1] (`to_model_input`) and leave
generators the same way (`to_uint8` turns them back into bytes). A family defines:

* `optimizers(lr)`          — its optimizers by name (the GAN has two);
* `losses(x, y, log)`       — the losses of one training step, yielded as (optimizer name, loss) pairs in the
  order they are to be applied (the GAN yields the discriminator's, then — computed after that update — the
  generator's); it writes the numbers to log into `log`. The family only predicts and scores: the trainer
  (`mnistmem.training`) owns zero_grad, backward, gradient clipping, the optimizer and learning-rate steps;
* `ema_module()`            — the submodule whose exponential moving average is kept (or None);
* `generate(generators, labels)` — one image per `torch.Generator`, each sample's noise drawn from its own
  generator, so a sample depends only on its own seed (and the micro-batch it was computed in; see
  `mnistmem.sampling` for the exact guarantee);
* `loss(images, seed)`      — a per-example loss for membership signals (lower = better fit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn


def to_model_input(images: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 [N,28,28] -> float32 [N,1,28,28] in [-1, 1]."""
    if not isinstance(images, torch.Tensor):
        images = np.asarray(images)
        images = torch.from_numpy(images if images.flags.writeable else images.copy())
    tensor = images
    if tensor.dtype != torch.uint8 or tensor.ndim != 3 or tuple(tensor.shape[1:]) != (28, 28):
        raise ValueError(f"images must be uint8 [N,28,28], got {tensor.dtype} {tuple(tensor.shape)}")
    return (tensor.to(device=device, dtype=torch.float32).unsqueeze(1) / 127.5) - 1.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float [N,1,28,28] in [-1, 1] -> uint8 [N,28,28] (rounded, clipped)."""
    x = x.detach().float().cpu().clamp(-1.0, 1.0)
    return ((x + 1.0) * 127.5).round().to(torch.uint8).squeeze(1).numpy()


class FamilyModel(nn.Module):
    """Base class of the four families; see the module docstring for the contract."""

    family: ClassVar[str] = ""
    #: False for the classifier, which cannot be sampled from.
    generative: ClassVar[bool] = True
    #: Default training hyper-parameters a `TrainConfig` falls back to.
    default_lr: ClassVar[float] = 1e-3
    default_ema: ClassVar[float | None] = None
    #: Whether channels_last memory format speeds up training on CPU (measured in bench/train.py).
    channels_last_cpu: ClassVar[bool] = False

    def __init__(self, **model_kwargs: Any) -> None:
        super().__init__()
        #: The size options this model was built with (saved in checkpoints to rebuild it).
        self.model_kwargs: dict[str, Any] = dict(model_kwargs)
        #: Set by `mnistmem.checkpoints.load_model`: the training config and data spec, as a dict.
        self.config: dict[str, Any] = {}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"main": torch.optim.Adam(self.parameters(), lr=lr)}

    def losses(self, x: torch.Tensor, y: torch.Tensor, log: dict[str, float]) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield (optimizer name, scalar loss) for one step on batch (x, y); see the module docstring."""
        raise NotImplementedError

    @torch.no_grad()
    def batched(self, images: np.ndarray, fn: Callable[[torch.Tensor], torch.Tensor], batch_size: int) -> np.ndarray:
        """`fn` (this network or a part of it) applied in eval mode to uint8 images [N,28,28], `batch_size` at a
        time, as float32 numpy rows (empty: shape (0,)); the training mode is restored afterwards."""
        was_training = self.training
        self.eval()
        try:
            out = [
                fn(to_model_input(images[i : i + batch_size], self.device)).float().cpu()
                for i in range(0, len(images), batch_size)
            ]
        finally:
            self.train(was_training)
        return torch.cat(out).numpy() if out else np.zeros((0,), dtype=np.float32)

    def ema_module(self) -> nn.Module | None:
        return None

    def averaged_weights_loaded(self) -> None:
        """Called by `checkpoints.load_model` once the EMA weights have replaced the trained ones. A family whose
        sampler keeps statistics of its own activations (batch norm) re-estimates them here; others do nothing."""

    def sampler_size(self) -> tuple[int, int]:
        """(parameters, bits) of the part that draws samples (a GAN's generator, a VAE's decoder, a diffusion
        model's U-Net; the EMA target where there is one): everything consulted when a sample is made, buffers
        such as batch-norm statistics included, and nothing else."""
        sampler = self.sampling_module() if hasattr(self, "sampling_module") else (self.ema_module() or self)
        tensors = list(sampler.parameters()) + list(sampler.buffers())
        return sum(t.numel() for t in tensors), sum(t.numel() * t.element_size() * 8 for t in tensors)

    def generate(self, generators: list[torch.Generator], labels: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        raise TypeError(f"a {self.family} model is not generative: it cannot be sampled from")

    def loss(self, images: np.ndarray, seed: int = 0) -> np.ndarray:
        """Per-example loss (float64 [N]) of uint8 images [N,28,28]; deterministic for a given seed."""
        raise NotImplementedError


class LatentModel(FamilyModel):
    """A family that draws a sample by decoding a latent z ~ N(0, I) (the GAN's generator, the VAE's decoder).

    Subclasses give `latent_size` and `from_latent` (differentiable, so that `mnistmem.extraction` can search
    the latent whose image matches a given part of a digit); sampling draws each sample's z from its own
    generator."""

    latent_size: int

    def from_latent(self, z: torch.Tensor) -> torch.Tensor:
        """The image [B,1,28,28] in [-1, 1] of latents z [B, latent_size]."""
        raise NotImplementedError

    @torch.no_grad()
    def generate(self, generators: list[torch.Generator], labels: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        if labels is not None:
            raise ValueError(f"the {self.family.upper()} is unconditional: it cannot draw a requested label")
        return self.from_latent(randn_per_sample(generators, (self.latent_size,), self.device))


def randn_per_sample(generators: list[torch.Generator], shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Stack one `randn(shape)` per generator, each drawn on the CPU so seeds give the same noise everywhere."""
    return torch.stack([torch.randn(shape, generator=g) for g in generators]).to(device)


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with `seed` (any int; reduced modulo 2**63)."""
    return torch.Generator().manual_seed(int(seed) % (2**63))
