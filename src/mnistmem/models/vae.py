"""Convolutional VAE: a CNN encoder to a Gaussian posterior, a CNN decoder to Bernoulli pixel logits.

Encoder: conv 4×4 stride 2 (28->14->7), then linear layers to mean and log-variance of a `latent`-dim
Gaussian. Decoder: the mirror image with transposed convs. Loss: binary cross-entropy of the pixels (in
[0, 1]) summed per image plus the KL divergence to N(0, I), averaged over the batch (the negative ELBO).
Samples: z ~ N(0, I) from each sample's own generator, decoded to the mean image sigmoid(logits)
(no pixel noise), which is what a VAE's samples conventionally look like.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import nn

from mnistmem.models.base import LatentModel, seeded_generator, to_model_input


class VAE(LatentModel):
    """Conv VAE: `latent` size, `width` channels of the first conv (the second has 2×), `hidden` units."""

    family = "vae"
    default_lr = 1e-3

    def __init__(self, latent: int = 16, width: int = 32, hidden: int = 256) -> None:
        super().__init__(latent=latent, width=width, hidden=hidden)
        self.latent = latent
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1),  # 14×14
            nn.SiLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1),  # 7×7
            nn.SiLU(),
            nn.Flatten(),
            nn.Linear(2 * width * 49, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2 * latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2 * width * 49),
            nn.SiLU(),
            nn.Unflatten(1, (2 * width, 7, 7)),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),  # 14×14
            nn.SiLU(),
            nn.ConvTranspose2d(width, 1, 4, 2, 1),  # 28×28 logits
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(x).float().chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def negative_elbo(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Per-example negative ELBO (nats) of x in [-1, 1], with reparameterisation noise `eps`."""
        mean, logvar = self.encode(x)
        z = mean + torch.exp(0.5 * logvar) * eps
        logits = self.decoder(z).float()
        target = (x.float() + 1.0) / 2.0
        recon = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        return recon + kl

    def losses(self, x: torch.Tensor, y: torch.Tensor, log: dict[str, float]) -> Iterator[tuple[str, torch.Tensor]]:
        eps = torch.randn(x.shape[0], self.latent, device=x.device)
        loss = self.negative_elbo(x, eps).mean()
        log["loss"] = float(loss.detach())
        yield "main", loss

    @property
    def latent_size(self) -> int:
        return self.latent

    def from_latent(self, z: torch.Tensor) -> torch.Tensor:
        """The decoded image [B,1,28,28] in [-1, 1] of latents z [B, latent] (differentiable: latent inversion)."""
        return torch.sigmoid(self.decoder(z).float()) * 2.0 - 1.0

    @torch.no_grad()
    def loss(self, images: np.ndarray, seed: int = 0) -> np.ndarray:
        """Negative ELBO per image (one posterior draw per image, noise from `seed`)."""
        x = to_model_input(images, self.device)
        eps = torch.randn(len(x), self.latent, generator=seeded_generator(seed)).to(self.device)
        return self.negative_elbo(x, eps).double().cpu().numpy()


MODEL_CLASS = VAE
