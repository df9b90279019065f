"""Degraded copies of training digits: the planted copies on which every copy criterion's recall is measured.

A generator that reproduces a training image rarely returns its exact pixels: a GAN adds texture, a
diffusion model blurs or thickens strokes, any model may shift or rotate a little. A copy criterion that only
fires on near-exact pixels misses those copies. `mnistmem.recall` plants the copies made here among
independent handwriting (held-out MNIST test digits) and scores every criterion on them, in the spirit of the
simsim copy-detection benchmark (which scores detectors by ROC AUC and by recall at a fixed false-positive
rate) and of the augmentations SSCD is trained to see through (Pizzi et al. 2022, arXiv 2202.10261).

Each `Degradation` has three graded strengths ("mild", "moderate", "strong"); `degrade` applies one at one
strength to a batch. Everything is float64 numpy/scipy on [0, 1] pixels and then rounded to uint8 (the PNG a
reader would see), with randomness from a `numpy.random.Generator` seeded by the caller, so a benchmark is
reproducible bit for bit. Functions take one strength per image (an array), so the copy descriptor's training
(`mnistmem.models.descriptor`) can draw a different strength for every image from the same code.

`gan_texture` needs texture residuals: the high-frequency part of real GAN samples (`texture_residuals`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

LEVELS = ("mild", "moderate", "strong")

#: The 4-neighbour cross: one pixel of stroke grown (or shrunk) in every direction.
_CROSS = ndimage.generate_binary_structure(2, 1)
#: The eight whole-pixel directions of a shift.
_DIRECTIONS = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])


def _per_image(strength: np.ndarray | float, n: int) -> np.ndarray:
    s = np.broadcast_to(np.asarray(strength, np.float64), (n,))
    if not np.isfinite(s).all() or (s < 0).any():
        raise ValueError("degradation strengths must be finite and >= 0")
    return s


def gaussian_noise(x: np.ndarray, sigma: np.ndarray, rng: np.random.Generator, **_) -> np.ndarray:
    """Independent Gaussian noise of standard deviation `sigma` on every pixel."""
    return x + rng.standard_normal(x.shape) * sigma[:, None, None]


def salt_and_pepper(x: np.ndarray, fraction: np.ndarray, rng: np.random.Generator, **_) -> np.ndarray:
    """A `fraction` of the pixels set to black or white at random."""
    hit = rng.random(x.shape) < fraction[:, None, None]
    white = rng.random(x.shape) < 0.5
    return np.where(hit, white.astype(np.float64), x)


def blur(x: np.ndarray, sigma: np.ndarray, rng: np.random.Generator, **_) -> np.ndarray:
    """Gaussian blur of standard deviation `sigma` pixels (what an over-smoothing decoder does)."""
    return np.stack(
        [
            ndimage.gaussian_filter(image, s, mode="constant") if s > 0 else image
            for image, s in zip(x, sigma, strict=True)
        ]
    )


def thicken(x: np.ndarray, amount: np.ndarray, rng: np.random.Generator, **_) -> np.ndarray:
    """Strokes grown by up to one pixel (grey dilation with a cross), blended in by `amount` in [0, 1]."""
    grown = ndimage.grey_dilation(x, footprint=_CROSS[None])
    return x + amount[:, None, None] * (grown - x)


def thin(x: np.ndarray, amount: np.ndarray, rng: np.random.Generator, **_) -> np.ndarray:
    """Strokes shrunk by up to one pixel (grey erosion with a cross), blended in by `amount` in [0, 1]."""
    shrunk = ndimage.grey_erosion(x, footprint=_CROSS[None])
    return x + amount[:, None, None] * (shrunk - x)


def shift(x: np.ndarray, pixels: np.ndarray, rng: np.random.Generator, **_) -> np.ndarray:
    """Moved by `pixels` (rounded) whole pixels in one of the eight directions, chosen at random; zero fill."""
    direction = _DIRECTIONS[rng.integers(0, len(_DIRECTIONS), len(x))]
    out = np.zeros_like(x)
    for i, (image, (dy, dx), p) in enumerate(zip(x, direction, np.rint(pixels).astype(int), strict=True)):
        out[i] = ndimage.shift(image, (dy * p, dx * p), order=0, mode="constant")
    return out


def rotate(x: np.ndarray, degrees: np.ndarray, rng: np.random.Generator, **_) -> np.ndarray:
    """Rotated by `degrees` about the centre, clockwise or anticlockwise at random (bilinear)."""
    sign = rng.choice((-1.0, 1.0), len(x))
    return np.stack(
        [
            ndimage.rotate(image, s * d, reshape=False, order=1, mode="constant")
            for image, s, d in zip(x, sign, degrees, strict=True)
        ]
    )


def scale(x: np.ndarray, change: np.ndarray, rng: np.random.Generator, **_) -> np.ndarray:
    """Enlarged or shrunk (at random) by the relative `change` about the centre (bilinear)."""
    factor = 1.0 + rng.choice((-1.0, 1.0), len(x)) * change
    centre = (np.array(x.shape[1:]) - 1) / 2.0
    out = np.empty_like(x)
    for i, (image, f) in enumerate(zip(x, factor, strict=True)):
        matrix = np.eye(2) / f  # output pixel -> input pixel
        out[i] = ndimage.affine_transform(image, matrix, offset=centre - matrix @ centre, order=1, mode="constant")
    return out


def fade(x: np.ndarray, amount: np.ndarray, rng: np.random.Generator, **_) -> np.ndarray:
    """Fainter ink: every pixel multiplied by 1 - `amount` (a contrast change; the background stays black)."""
    return x * (1.0 - amount[:, None, None])


def occlude(x: np.ndarray, side: np.ndarray, rng: np.random.Generator, **_) -> np.ndarray:
    """A black square of `side` pixels centred on a random inked pixel (part of the digit hidden)."""
    out = x.copy()
    for i, (image, s) in enumerate(zip(x, np.rint(side).astype(int), strict=True)):
        if s <= 0:
            continue
        ink = np.argwhere(image > 0.5)
        if len(ink) == 0:
            ink = np.argwhere(image >= image.max())
        cy, cx = ink[rng.integers(0, len(ink))]
        top, left = cy - s // 2, cx - s // 2
        out[i, max(top, 0) : max(top + s, 0), max(left, 0) : max(left + s, 0)] = 0.0
    return out


def gan_texture(
    x: np.ndarray, amount: np.ndarray, rng: np.random.Generator, textures: np.ndarray | None = None, **_
) -> np.ndarray:
    """A real GAN sample's high-frequency residual (`texture_residuals`), chosen at random, added × `amount`."""
    if textures is None or len(textures) == 0:
        raise ValueError("gan_texture needs textures= (texture_residuals of real GAN samples)")
    pick = rng.integers(0, len(textures), len(x))
    return x + amount[:, None, None] * textures[pick]


def texture_residuals(gan_samples: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """The texture a GAN adds: each sample minus its Gaussian blur (σ = `sigma` px), float64 in [0,1] units."""
    s = np.asarray(gan_samples, np.float64) / 255.0
    return s - np.stack([ndimage.gaussian_filter(image, sigma, mode="constant") for image in s])


@dataclass(frozen=True)
class Degradation:
    """One way a generator's copy may differ from the original, at three graded strengths."""

    name: str
    apply: Callable[..., np.ndarray]
    strengths: tuple[float, float, float]  # mild, moderate, strong
    unit: str
    #: Not shown to the copy descriptor in training: its recall on these measures generalisation.
    held_out: bool = False

    def strength(self, level: str) -> float:
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; choose one of {LEVELS}")
        return self.strengths[LEVELS.index(level)]

    def describe(self, level: str) -> str:
        return f"{self.name.replace('_', ' ')} ({self.strength(level):g} {self.unit})"


DEGRADATIONS: dict[str, Degradation] = {
    d.name: d
    for d in (
        Degradation("gaussian_noise", gaussian_noise, (0.05, 0.1, 0.2), "standard deviation, 0-1 pixels"),
        Degradation("salt_and_pepper", salt_and_pepper, (0.01, 0.03, 0.08), "share of pixels", held_out=True),
        Degradation("blur", blur, (0.5, 0.8, 1.2), "px blur"),
        Degradation("thicken", thicken, (0.33, 0.67, 1.0), "px of stroke"),
        Degradation("thin", thin, (0.33, 0.67, 1.0), "px of stroke"),
        Degradation("shift", shift, (1, 2, 3), "px"),
        Degradation("rotate", rotate, (5, 10, 15), "degrees", held_out=True),
        Degradation("scale", scale, (0.05, 0.1, 0.15), "relative size change"),
        Degradation("fade", fade, (0.15, 0.3, 0.5), "ink lost"),
        Degradation("occlude", occlude, (4, 7, 10), "px square hidden"),
        Degradation("gan_texture", gan_texture, (0.5, 1.0, 2.0), "× a GAN's texture", held_out=True),
    )
}


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[0,1] floats -> uint8: clipped, then rounded half to even (`np.rint`). Not `neighbors.to_uint8`, which
    rounds halves up as torchvision's save_image does: the committed benchmark and the pinned copy descriptor's
    training views were made with this rounding, so changing it would change them (ties are rare)."""
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def degrade(
    images: np.ndarray,
    name: str,
    strength: float | np.ndarray,
    rng: np.random.Generator,
    textures: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 [N,28,28] copies of uint8 `images` under degradation `name` at `strength` (one or one per image)."""
    if name not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {name!r}; choose one of {sorted(DEGRADATIONS)}")
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"images must be uint8 [N,28,28], got {images.dtype} {images.shape}")
    x = images.astype(np.float64) / 255.0
    s = _per_image(strength, len(x))
    return to_uint8(DEGRADATIONS[name].apply(x, s, rng, textures=textures))


def level_rng(seed: int, name: str, level: str) -> np.random.Generator:
    """The generator for one (degradation, level) cell of the benchmark: independent of the other cells."""
    return np.random.default_rng([int(seed), list(DEGRADATIONS).index(name), LEVELS.index(level)])
