"""DCGAN for 28×28 MNIST: the PyTorch DCGAN example's generator and discriminator, resized for 28×28.

Generator: z [nz] -> ConvT 7×7 -> (BN, ReLU, ConvT ×2 up to 28×28) -> tanh. With the defaults
(nz=100, ngf=64) it has 1.8 M parameters. Discriminator: strided convs with LeakyReLU and BN down to 7×7,
then one 7×7 conv to a logit. Trained with the non-saturating BCE loss and Adam(β1=0.5) as in the example.
Sampling runs the generator in eval mode (BatchNorm uses its running statistics), so a sample does not
depend on the other samples in its batch — a requirement for regenerating one sample from its seed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import nn

from mnistmem.models.base import LatentModel, seeded_generator, to_model_input

#: Standing statistics of an averaged generator: this many batches of this many latents, from this seed.
STANDING_BATCHES, STANDING_BATCH, STANDING_SEED = 20, 500, 12345


def generator(nz: int = 100, ngf: int = 64) -> nn.Sequential:
    """z [B, nz, 1, 1] -> image [B, 1, 28, 28] in [-1, 1]."""
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 4, 7, 1, 0, bias=False),  # 7×7
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),  # 14×14
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, 1, 4, 2, 1, bias=False),  # 28×28
        nn.Tanh(),
    )


def discriminator(ndf: int = 64) -> nn.Sequential:
    """image [B, 1, 28, 28] -> real/fake logit [B]."""
    return nn.Sequential(
        nn.Conv2d(1, ndf, 4, 2, 1, bias=False),  # 14×14
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),  # 7×7
        nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, 1, 7, 1, 0, bias=False),  # 1×1
        nn.Flatten(0),
    )


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: N(0, 0.02) convs, N(1, 0.02) BN scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class GAN(LatentModel):
    """DCGAN: `nz` latent size, `ngf`/`ndf` generator/discriminator widths."""

    family = "gan"
    default_lr = 2e-4
    channels_last_cpu = True

    def __init__(self, nz: int = 100, ngf: int = 64, ndf: int = 64) -> None:
        super().__init__(nz=nz, ngf=ngf, ndf=ndf)
        self.nz = nz
        self.generator = generator(nz, ngf)
        self.discriminator = discriminator(ndf)
        self.apply(dcgan_init)

    def optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=(0.5, 0.999)),
            "generator": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.5, 0.999)),
        }

    def losses(self, x: torch.Tensor, y: torch.Tensor, log: dict[str, float]) -> Iterator[tuple[str, torch.Tensor]]:
        z = torch.randn(x.shape[0], self.nz, 1, 1, device=x.device)
        fake = self.generator(z)
        # discriminator: real -> 1, fake -> 0
        real_logits = self.discriminator(x)
        fake_logits = self.discriminator(fake.detach())
        loss_d = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        yield "discriminator", loss_d
        # generator (after the discriminator's update): non-saturating loss, make it say 1 on fakes
        loss_g = F.softplus(-self.discriminator(fake)).mean()
        log.update(loss=float(loss_d.detach()), loss_d=float(loss_d.detach()), loss_g=float(loss_g.detach()))
        yield "generator", loss_g

    def ema_module(self) -> nn.Module:
        return self.generator

    @torch.no_grad()
    def averaged_weights_loaded(self) -> None:
        """Batch-norm statistics for the averaged generator ("standing statistics", Brock et al. 2019, BigGAN).

        A checkpoint's running means and variances are those of the *training* generator's activations, not of
        the EMA weights' activations; they are re-estimated as plain averages over `STANDING_BATCHES` batches of
        latents from a fixed seed, so the same checkpoint always gives the same samples. (Measured on the cpu
        training run, 2,000 samples: at steps 1,000 and 7,000 the MNIST-FID with re-estimated and with saved
        statistics differs by less than 1; the re-estimate is kept because it is the consistent choice.)"""
        norms = [m for m in self.generator.modules() if isinstance(m, nn.BatchNorm2d)]
        momenta = [m.momentum for m in norms]
        was_training = self.generator.training
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average over the batches below
        self.generator.train()
        latents = seeded_generator(STANDING_SEED)
        try:
            for _ in range(STANDING_BATCHES):
                z = torch.randn(STANDING_BATCH, self.nz, 1, 1, generator=latents).to(self.device)
                self.generator(z)
        finally:
            for norm, momentum in zip(norms, momenta, strict=True):
                norm.momentum = momentum
            self.generator.train(was_training)

    @property
    def latent_size(self) -> int:
        return self.nz

    def from_latent(self, z: torch.Tensor) -> torch.Tensor:
        """The generator's image [B,1,28,28] in [-1, 1] of latents z [B, nz] (differentiable: latent inversion)."""
        return self.generator(z[:, :, None, None]).float()

    @torch.no_grad()
    def loss(self, images: np.ndarray, seed: int = 0) -> np.ndarray:
        """Discriminator loss on real images, -log D(x): low when the discriminator finds x typical of training."""
        del seed  # deterministic already
        x = to_model_input(images, self.device)
        return F.softplus(-self.discriminator(x)).double().cpu().numpy()


MODEL_CLASS = GAN
