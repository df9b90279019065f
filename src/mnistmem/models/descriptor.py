"""An MNIST copy descriptor: a small CNN whose embedding puts a digit and its degraded copies together.

Copy detection in the literature uses a descriptor trained for the job. SSCD (Pizzi et al. 2022, arXiv
2202.10261) is trained contrastively so that an image and its edited copies map close together and other
images far apart; Somepalli et al. 2023 (arXiv 2212.03860) call a generated image a replica when its SSCD
similarity to a training image exceeds 0.5. This is the MNIST counterpart, trained the same way:

* each training step takes a batch of training digits and makes a degraded copy of every one with the
  benchmark's own degradations (`mnistmem.degrade`: one or two of them at a random strength up to "strong"),
  except the held-out kinds (`Degradation.held_out`), on which recall then measures generalisation;
* an InfoNCE loss (as in SimCLR/CLIP) asks each copy's embedding to be nearer its own original than any other
  digit in the batch, and the reverse, at temperature `temperature`.

The committed weights live in `data/models/descriptor/` with a manifest and load only with the hash pinned
here (`load_pretrained`); `scripts/train_descriptor.py` trains them with the project trainer. The copy
criterion built on it (`copy_descriptor` in `mnistmem.copies`) is the highest cosine similarity between a
sample's embedding and any training digit's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import nn

from mnistmem.models.base import FamilyModel, to_model_input, to_uint8

TRAIN_COMMAND = "python scripts/train_descriptor.py"
#: SHA-256 of the committed descriptor's weights (a copy criterion depends on them); the script prints it.
PINNED_WEIGHTS_SHA256 = "71e52a971d957069b3dc86a7e2e79454dafc6227d0704732bdd7990d1c1d5bc7"


def _conv(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


def training_degradations() -> list[str]:
    """The degradation kinds shown in training (all but the held-out ones)."""
    from mnistmem.degrade import DEGRADATIONS

    return [name for name, d in DEGRADATIONS.items() if not d.held_out]


def degraded_views(images: np.ndarray, rng: np.random.Generator, names: list[str]) -> np.ndarray:
    """One degraded copy of each uint8 image: one or two kinds from `names`, each at a uniform random
    strength between none and the benchmark's "strong" level, applied in a fixed order."""
    from mnistmem.degrade import DEGRADATIONS, degrade

    out = np.array(images, copy=True)
    n = len(out)
    count = rng.integers(1, 3, n)
    chosen = np.zeros((n, len(names)), bool)
    for i in range(n):
        chosen[i, rng.choice(len(names), count[i], replace=False)] = True
    for j, name in enumerate(names):
        rows = np.flatnonzero(chosen[:, j])
        if len(rows):
            strength = rng.uniform(0.0, DEGRADATIONS[name].strengths[-1], len(rows))
            out[rows] = degrade(out[rows], name, strength, rng)
    return out


class Descriptor(FamilyModel):
    """CNN embedding: 28 -> 14 -> 7 pixels with `width` channels, then a `dim`-d unit vector."""

    family = "descriptor"
    generative = False
    default_lr = 2e-3
    channels_last_cpu = True

    def __init__(self, width: int = 32, dim: int = 128, temperature: float = 0.05) -> None:
        super().__init__(width=width, dim=dim, temperature=temperature)
        self.temperature = temperature
        self.body = nn.Sequential(
            *_conv(1, width),
            *_conv(width, width, stride=2),  # 14
            *_conv(width, width),
            *_conv(width, width, stride=2),  # 7
            *_conv(width, width // 2, kernel=1),
            nn.Flatten(),
            nn.Linear(width // 2 * 49, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.body(x).float(), dim=1)

    def losses(self, x: torch.Tensor, y: torch.Tensor, log: dict[str, float]) -> Iterator[tuple[str, torch.Tensor]]:
        # The numpy generator is seeded from the torch RNG, which the trainer reseeds from (seed, step):
        # the degraded views are a function of the step, so a resumed run draws the same ones.
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        originals = to_uint8(x)
        copies = degraded_views(originals, rng, training_degradations())
        both = torch.cat([x, to_model_input(copies, x.device)])
        z = self(both)
        z_original, z_copy = z[: len(x)], z[len(x) :]
        logits = z_copy @ z_original.T / self.temperature
        target = torch.arange(len(x), device=x.device)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        log.update(loss=float(loss.detach()), top1=float((logits.argmax(1) == target).float().mean()))
        yield "main", loss

    def embed(self, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Unit embeddings, float32 [N, dim], of uint8 images [N,28,28]."""
        return self.batched(np.asarray(images), self, batch_size).reshape(len(images), self.model_kwargs["dim"])

    def loss(self, images: np.ndarray, seed: int = 0) -> np.ndarray:
        raise TypeError("the copy descriptor has no per-example loss")


MODEL_CLASS = Descriptor


def load_pretrained(path: str | os.PathLike | None = None, device: torch.device | str | None = None) -> Descriptor:
    """The committed copy descriptor (eval mode, cached per process), refused unless its hash is pinned."""
    from mnistmem.models.pretrained import load_pinned

    return load_pinned("descriptor", Descriptor, PINNED_WEIGHTS_SHA256, TRAIN_COMMAND, path, device)


def embedding(model: Descriptor | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """The feature function of the `copy_descriptor` criterion (uint8 images -> unit embeddings)."""
    return (model or load_pretrained()).embed
