"""Model families, one module each, behind one small interface (`mnistmem.models.base.FamilyModel`).

* `gan`        — DCGAN for 28×28 (generator + discriminator), the PyTorch DCGAN example's architecture.
* `vae`        — convolutional VAE (CNN encoder and decoder); samples are decoded draws from the prior.
* `diffusion`  — diffusers `UNet2DModel` trained with `DDPMScheduler`, sampled with DPM-Solver++ (or DDIM);
                 unconditional or class-conditional.
* `classifier` — a small CNN (≥ 99 % test accuracy) used to label samples, as a feature space, and for the
                 MNIST-FID quality score; `classifier.load_pretrained()` loads the committed weights.
* `descriptor` — a small CNN embedding trained contrastively to map a digit and its degraded copies together
                 (the MNIST counterpart of SSCD), for the `copy_descriptor` criterion.

`build_model(family, **kwargs)` makes a fresh model; `mnistmem.checkpoints.load_model` loads a trained one.
"""

from __future__ import annotations

import importlib

from mnistmem.models.base import FamilyModel

#: family name -> module that defines `MODEL_CLASS`.
FAMILIES: dict[str, str] = {
    "gan": "mnistmem.models.gan",
    "vae": "mnistmem.models.vae",
    "diffusion": "mnistmem.models.diffusion",
    "classifier": "mnistmem.models.classifier",
    "descriptor": "mnistmem.models.descriptor",
}


class UnknownModelError(ValueError):
    """A model family that does not exist."""


def model_class(family: str) -> type[FamilyModel]:
    """The class implementing `family` (one of `FAMILIES`)."""
    if family not in FAMILIES:
        raise UnknownModelError(f"unknown model {family!r}; choose one of {sorted(FAMILIES)}")
    return importlib.import_module(FAMILIES[family]).MODEL_CLASS


def build_model(family: str, **kwargs) -> FamilyModel:
    """A freshly initialised model of `family` with size options `kwargs` (see each family's class)."""
    cls = model_class(family)
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise ValueError(f"bad model_kwargs for {family!r}: {error}") from error


def sampler_size(family: str, model_kwargs: dict) -> tuple[int, int]:
    """(parameters, bits) of the sampling network of a `family` model with `model_kwargs`. They follow from the
    architecture, not from trained values, so no weights are needed (`FamilyModel.sampler_size`)."""
    return build_model(family, **model_kwargs).sampler_size()


__all__ = ["FAMILIES", "FamilyModel", "UnknownModelError", "build_model", "model_class", "sampler_size"]
