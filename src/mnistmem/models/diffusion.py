"""Diffusion: a diffusers `UNet2DModel` trained with `DDPMScheduler`, sampled with DPM-Solver++ or DDIM.

The UNet works at 28×28 (three resolution levels: 28, 14, 7) and predicts the added noise (ε). Training
follows diffusers' unconditional training example: pick t uniformly, noise the image with the DDPM
schedule, regress ε with MSE. Sampling replaces the 1000-step DDPM chain with a fast deterministic solver
(`sampler="dpm"`: DPM-Solver++ 2M, 20 steps by default; `sampler="ddim"`: DDIM with η = 0, 50 steps), so
a sample is a deterministic function of its initial noise, which comes from the sample's own seed.

Class-conditional ("draw a 7"): pass `num_classes` (11 covers digits and the canary label 10). The UNet
then gets a class embedding with one extra "no label" entry; training drops the label with probability
`p_uncond`, so one model samples both conditionally (`labels=...`) and unconditionally (no labels), and
classifier-free guidance (`guidance > 1`) is available.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DModel

from mnistmem.models.base import FamilyModel, randn_per_sample, seeded_generator, to_model_input

SAMPLERS = {"dpm": (DPMSolverMultistepScheduler, 20), "ddim": (DDIMScheduler, 50)}


class Diffusion(FamilyModel):
    """UNet2DModel + DDPM noise schedule. Size options: `channels`, `layers_per_block`, `attention`
    (self-attention at the 7×7 level), `num_classes` (None = unconditional), `p_uncond`; the loss option
    `snr_gamma` (None = plain ε MSE; e.g. 5.0 = min-SNR-γ weighting, `loss_weights`)."""

    family = "diffusion"
    default_lr = 1e-3
    default_ema = 0.995

    def __init__(
        self,
        channels: tuple[int, ...] | list[int] = (32, 64, 64),
        layers_per_block: int = 1,
        attention: bool = False,
        num_classes: int | None = None,
        p_uncond: float = 0.1,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "squaredcos_cap_v2",
        norm_num_groups: int = 8,
        snr_gamma: float | None = None,
    ) -> None:
        channels = tuple(int(c) for c in channels)
        if len(channels) != 3:
            raise ValueError(f"diffusion channels must have 3 levels (28, 14, 7 pixels), got {channels}")
        super().__init__(
            channels=list(channels),
            layers_per_block=layers_per_block,
            attention=attention,
            num_classes=num_classes,
            p_uncond=p_uncond,
            num_train_timesteps=num_train_timesteps,
            beta_schedule=beta_schedule,
            norm_num_groups=norm_num_groups,
            **({} if snr_gamma is None else {"snr_gamma": float(snr_gamma)}),
        )
        if snr_gamma is not None and not snr_gamma > 0:
            raise ValueError(f"snr_gamma must be None or positive, got {snr_gamma!r}")
        self.snr_gamma = None if snr_gamma is None else float(snr_gamma)
        last_down, first_up = ("AttnDownBlock2D", "AttnUpBlock2D") if attention else ("DownBlock2D", "UpBlock2D")
        self.num_classes = num_classes
        self.p_uncond = p_uncond
        self.unet = UNet2DModel(
            sample_size=28,
            in_channels=1,
            out_channels=1,
            block_out_channels=channels,
            layers_per_block=layers_per_block,
            down_block_types=("DownBlock2D", "DownBlock2D", last_down),
            up_block_types=(first_up, "UpBlock2D", "UpBlock2D"),
            norm_num_groups=norm_num_groups,
            num_class_embeds=None if num_classes is None else num_classes + 1,
        )
        self.scheduler = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule)

    # -------------------------------------------------------------------------------------------- training
    def _class_labels(self, labels: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor | None:
        """Labels for the UNet: None when unconditional; the "no label" index where a label is missing."""
        if self.num_classes is None:
            if labels is not None:
                raise ValueError("this diffusion model is unconditional (num_classes=None): it cannot draw a label")
            return None
        if labels is None:
            return torch.full((batch,), self.num_classes, dtype=torch.long, device=device)
        labels = torch.as_tensor(labels, dtype=torch.long, device=device).reshape(-1)
        if labels.numel() == 1:
            labels = labels.expand(batch)
        if ((labels < 0) | (labels >= self.num_classes)).any():
            raise ValueError(f"labels must be in 0..{self.num_classes - 1}, got {labels.unique().tolist()}")
        return labels

    def noise_prediction_loss(self, x: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, labels) -> torch.Tensor:
        """Per-example ε-prediction MSE at timesteps `t`."""
        noisy = self.scheduler.add_noise(x, noise, t)
        pred = self.unet(noisy, t, class_labels=labels).sample
        return F.mse_loss(pred.float(), noise.float(), reduction="none").flatten(1).mean(1)

    def losses(self, x: torch.Tensor, y: torch.Tensor, log: dict[str, float]) -> Iterator[tuple[str, torch.Tensor]]:
        batch = x.shape[0]
        noise = torch.randn_like(x)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (batch,), device=x.device)
        labels = None
        if self.num_classes is not None:
            labels = y.clone()
            drop = torch.rand(batch, device=x.device) < self.p_uncond
            labels[drop] = self.num_classes
        per_example = self.noise_prediction_loss(x, noise, t, labels)
        loss = (per_example * self.loss_weights(t)).mean() if self.snr_gamma is not None else per_example.mean()
        log["loss"] = float(loss.detach())
        yield "main", loss

    def loss_weights(self, t: torch.Tensor) -> torch.Tensor:
        """Min-SNR-γ weights of ε-prediction losses, min(SNR(t), γ) / SNR(t) (Hang et al. 2023, arXiv
        2303.09556; diffusers' `snr_gamma`): the nearly noise-free timesteps, whose targets are easy, stop
        dominating the gradient; the paper reports ~3.4× faster convergence."""
        alphas = self.scheduler.alphas_cumprod.to(t.device)[t]
        snr = alphas / (1.0 - alphas)
        return torch.clamp(snr, max=self.snr_gamma) / snr

    def ema_module(self) -> UNet2DModel:
        return self.unet

    # -------------------------------------------------------------------------------------------- sampling
    def make_sampler(self, sampler: str = "dpm"):
        """A fresh fast scheduler sharing the training noise schedule, with its clean-image estimate kept in
        the pixel range [-1, 1].

        Why: the cosine schedule ends where almost no signal is left (ᾱ at the last step is ~0), so the
        solver's first estimate of the clean image, (x − σ·ε̂)/α, divides the network's error by a tiny α.
        Unclipped, DPM-Solver++ then saturates every pixel to black or white (measured: 99.9% of pixels of a
        half-trained model's samples). DPM-Solver++ uses dynamic thresholding (Saharia et al. 2022, Imagen;
        diffusers' `thresholding`), DDIM clips the estimate (`clip_sample`), both to [-1, 1].
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, got {sampler!r}")
        cls, _ = SAMPLERS[sampler]
        if sampler == "dpm":
            return cls.from_config(self.scheduler.config, thresholding=True, sample_max_value=1.0)
        return cls.from_config(self.scheduler.config, clip_sample=True, clip_sample_range=1.0)

    @torch.no_grad()
    def generate(
        self,
        generators: list[torch.Generator],
        labels: torch.Tensor | None = None,
        sampler: str = "dpm",
        steps: int | None = None,
        guidance: float = 1.0,
        **kwargs,
    ) -> torch.Tensor:
        if kwargs:
            raise TypeError(f"unknown sampling options for diffusion: {sorted(kwargs)}")
        device = self.device
        batch = len(generators)
        scheduler = self.make_sampler(sampler)
        scheduler.set_timesteps(steps or SAMPLERS[sampler][1], device=device)
        class_labels = self._class_labels(labels, batch, device)
        guided = guidance != 1.0 and class_labels is not None
        null = self._class_labels(None, batch, device) if guided else None
        x = randn_per_sample(generators, (1, 28, 28), device) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            inp = scheduler.scale_model_input(x, t)
            eps = self.unet(inp, t, class_labels=class_labels).sample.float()
            if guided:
                eps_null = self.unet(inp, t, class_labels=null).sample.float()
                eps = eps_null + guidance * (eps - eps_null)
            x = scheduler.step(eps, t, x).prev_sample
        return x.clamp(-1.0, 1.0)

    @torch.no_grad()
    def inpaint(
        self,
        generators: list[torch.Generator],
        known: torch.Tensor,
        mask: torch.Tensor,
        steps: int = 50,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Complete images of which only the pixels where `mask` is True are given (`known`, [B,1,28,28] in
        [-1, 1]; `mask` broadcastable to it): the unconditional model's own DDIM loop (η = 0), with the given
        pixels re-imposed after every step at that step's noise level, as RePaint does without its resampling
        jumps (Lugmayr et al., CVPR 2022, arXiv 2201.09865). The given pixels come back exactly; the rest is
        the model's. Each image's starting noise and the noise of its given pixels come from its own generator."""
        device = self.device
        known = known.to(device).float()
        mask = torch.as_tensor(mask, device=device).bool().expand_as(known)
        scheduler = self.make_sampler("ddim")
        scheduler.set_timesteps(steps, device=device)
        class_labels = self._class_labels(labels, len(generators), device)
        x = randn_per_sample(generators, (1, 28, 28), device) * scheduler.init_noise_sigma
        given_noise = randn_per_sample(generators, (1, 28, 28), device)
        timesteps = scheduler.timesteps
        x = torch.where(mask, scheduler.add_noise(known, given_noise, timesteps[:1].expand(len(x))), x)
        for k, t in enumerate(timesteps):
            eps = self.unet(scheduler.scale_model_input(x, t), t, class_labels=class_labels).sample.float()
            x = scheduler.step(eps, t, x).prev_sample
            if k + 1 < len(timesteps):  # the given pixels at the next step's noise level
                noisy = scheduler.add_noise(known, given_noise, timesteps[k + 1 : k + 2].expand(len(x)))
                x = torch.where(mask, noisy, x)
        return torch.where(mask, known, x.clamp(-1.0, 1.0))

    @torch.no_grad()
    def loss(self, images: np.ndarray, seed: int = 0, timesteps: int = 10, labels=None) -> np.ndarray:
        """ε-prediction MSE per image averaged over `timesteps` evenly spaced t (noise drawn from `seed`)."""
        x = to_model_input(images, self.device)
        generator = seeded_generator(seed)
        class_labels = self._class_labels(labels, len(x), self.device)
        total = torch.zeros(len(x), dtype=torch.float64)
        steps = torch.linspace(0, self.scheduler.config.num_train_timesteps - 1, timesteps).round().long()
        for t in steps.tolist():
            noise = torch.randn(x.shape, generator=generator).to(self.device)
            tt = torch.full((len(x),), t, dtype=torch.long, device=self.device)
            total += self.noise_prediction_loss(x, noise, tt, class_labels).double().cpu()
        return (total / timesteps).numpy()


MODEL_CLASS = Diffusion
