"""Sampling with per-sample seeds: any single sample can be regenerated alone, bit for bit.

`sample(model, n, seed)` returns the images and, for each, its own seed `seed * 2**32 + i`. Each sample's
initial noise comes from its own `torch.Generator` seeded with its seed, so samples do not share random
streams. `regenerate(model, sample_seed)` recomputes one sample from its seed.

`sample_mixture(models, weights, n, seed)` samples a mixture of models (a SISA ensemble): each seed's model
is chosen by a fixed hash of the seed (`mixture_choice`), with probability proportional to its weight, and
draws that sample; `regenerate_mixture` recomputes one. A single model is the mixture of one.

Why micro-batches: CPU (and GPU) kernels pick different algorithms for different batch sizes, so the same
noise computed in a batch of 64 and in a batch of 1 can differ in the last bits, and after rounding to bytes
occasionally in a pixel. To make regeneration exact, every forward pass runs on one *fixed block* of
`batch_size` consecutive seeds: sample i is always computed in the block of seeds
[i - i % batch_size, … + batch_size) (the last block is padded with the seeds that follow, whose images are
discarded). `regenerate` recomputes that same block and returns the one image. In a mixture, each model
computes the seeds of the block that chose it, so a regeneration recomputes that same sub-block.

Guarantee: `regenerate(model, s, batch_size=b)` equals the bytes `sample(model, n, seed, batch_size=b)`
returned for seed s, for every family, on the same *kind* of CPU (the same vector units: see
`mnistmem.devices.cpu_summary`) with the same torch build and thread count (tested in
tests/test_sampling.py). Models sample in eval mode and fp32 (no autocast). Use the same `batch_size` (and
`label`, and sampler options) in both calls; the default is `DEFAULT_BATCH_SIZE`.

On another kind of CPU the floating-point kernels differ (AVX2 and AVX-512 builds of oneDNN sum in other
orders), so a regenerated sample can differ in the last bits and, after rounding to bytes, in a few pixels.
Measured on the committed cpu-scale samples, drawn on an AMD EPYC (AVX2) and regenerated on an Intel Xeon
(AVX-512, AMX): 108 of 128 diffusion samples and 509 of 512 GAN samples bit-identical, none off by more
than 3 grey levels of 255. `CROSS_CPU_GREY_LEVELS` states that bound; `compare_regenerated` measures it,
the randomness experiment records it per CPU kind, and tests/test_sampling.py checks it on the committed
samples (bit-exact where the CPU kind matches the manifest's, within the bound elsewhere).
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from mnistmem.models.base import FamilyModel, seeded_generator, to_uint8
from mnistmem.neighbors import pixel_distances
from mnistmem.seeds import hash01

DEFAULT_BATCH_SIZE = 64
SEED_SHIFT = 32
MAX_RUN_SEED = 2**31 - 1


def sample_seeds(seed: int, n: int) -> np.ndarray:
    """The per-sample seeds of a run: `seed * 2**32 + i` for i in 0..n-1 (int64)."""
    if not 0 <= int(seed) <= MAX_RUN_SEED:
        raise ValueError(f"seed must be in 0..{MAX_RUN_SEED}, got {seed}")
    if not 0 <= n < 2**SEED_SHIFT:
        raise ValueError(f"n must be in 0..{2**SEED_SHIFT - 1}, got {n}")
    return (np.int64(seed) << SEED_SHIFT) + np.arange(n, dtype=np.int64)


def _check_model(model: FamilyModel) -> None:
    if not isinstance(model, FamilyModel):
        raise TypeError(f"model must be a mnistmem model (from checkpoints.load_model), got {type(model).__name__}")
    if not model.generative:
        raise TypeError(f"a {model.family} model is not generative: it cannot be sampled from")


def _generate_block(model: FamilyModel, seeds: np.ndarray, label: int | None, options: dict) -> np.ndarray:
    generators = [seeded_generator(int(s)) for s in seeds]
    labels = None if label is None else torch.full((len(seeds),), int(label), dtype=torch.long)
    with torch.inference_mode(), torch.autocast(model.device.type, enabled=False):
        return to_uint8(model.generate(generators, labels=labels, **options))


def mixture_choice(seeds: np.ndarray, weights) -> np.ndarray:
    """The model that draws each sample of a mixture: model k with probability weights[k] / sum, by a fixed
    hash of the sample's seed (so the choice, like the sample, is a function of the seed alone)."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or len(weights) == 0 or not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError(f"mixture weights must be finite and non-negative, one per model, got {weights}")
    if weights.sum() <= 0:
        raise ValueError(f"mixture weights must have a positive sum, got {weights}")
    edges = np.cumsum(weights / weights.sum())
    return np.minimum(np.searchsorted(edges, hash01(seeds, 0x51A), side="right"), len(weights) - 1)


def _draw_block(models: list[FamilyModel], weights, block: np.ndarray, label, options) -> tuple[np.ndarray, np.ndarray]:
    """One block of seeds: (images, which model drew each). Each model computes the seeds that chose it in one
    pass; a single model (the mixture of one) computes the whole block."""
    which = mixture_choice(block, weights)
    images = np.empty((len(block), 28, 28), dtype=np.uint8)
    for k in np.unique(which):
        rows = which == k
        images[rows] = _generate_block(models[k], block[rows], label, options)
    return images, which.astype(np.int64)


def _prepare(models: list[FamilyModel], weights, batch_size: int, device) -> np.ndarray:
    """Check the models, weights (None = equal) and block size, move the models to `device` and into eval mode;
    return the weights."""
    if not models:
        raise ValueError("sampling needs at least one model")
    for model in models:
        _check_model(model)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    weights = np.ones(len(models)) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(models),):
        raise ValueError(f"mixture weights must be one per model ({len(models)}), got {weights}")
    mixture_choice(np.zeros(1, dtype=np.int64), weights)  # refuse bad weights before any work
    if device is not None:
        from mnistmem.devices import pick_device

        for model in models:
            model.to(pick_device(device))
    for model in models:
        model.eval()
    return weights


def sample_mixture(
    models: list[FamilyModel],
    weights,
    n: int,
    seed: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: torch.device | str | None = None,
    progress: bool = True,
    label: int | None = None,
    first: int = 0,
    **options,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n` samples of a mixture of `models` as (uint8 [n,28,28], per-sample seeds int64 [n], the index of the
    model that drew each); `weights` (None = equal) set each model's share. See `sample` for the options.

    `first`: start at sample `first` of the run (a multiple of `batch_size`), so a long run can be drawn in
    parts (`mnistmem.experiments.census`) that equal, byte for byte, one call drawing them all."""
    models = list(models)
    weights = _prepare(models, weights, batch_size, device)
    if first < 0 or first % batch_size:
        raise ValueError(f"first must be a multiple of batch_size ({batch_size}) and >= 0, got {first}")
    seeds = sample_seeds(seed, first + n)[first:]
    images = np.empty((n, 28, 28), dtype=np.uint8)
    which = np.zeros(n, dtype=np.int64)
    family = models[0].family if len(models) == 1 else f"mixture of {len(models)}"
    for start in tqdm(range(0, n, batch_size), disable=not progress, desc=f"sampling {family}", unit="batch"):
        block = seeds[start] + np.arange(batch_size, dtype=np.int64)  # always a full block
        out, chosen = _draw_block(models, weights, block, label, options)
        take = min(batch_size, n - start)
        images[start : start + take], which[start : start + take] = out[:take], chosen[:take]
    return images, seeds, which


def sample(
    model: FamilyModel,
    n: int,
    seed: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: torch.device | str | None = None,
    progress: bool = True,
    label: int | None = None,
    first: int = 0,
    **options,
) -> tuple[np.ndarray, np.ndarray]:
    """`n` samples as (uint8 [n,28,28], per-sample seeds int64 [n]); deterministic for a given seed.

    `label` asks a class-conditional diffusion model for one class (e.g. 7, or 10 for canaries);
    `options` go to the family's `generate` (diffusion: `sampler="dpm"|"ddim"`, `steps`, `guidance`);
    `first` starts at that sample of the run (see `sample_mixture`).
    """
    images, seeds, _ = sample_mixture([model], None, n, seed, batch_size, device, progress, label, first, **options)
    return images, seeds


def regenerate_mixture(
    models: list[FamilyModel],
    weights,
    sample_seed: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    label: int | None = None,
    **options,
) -> np.ndarray:
    """The one sample (uint8 [28,28]) of a mixture with per-sample seed `sample_seed`, recomputed from the seed
    alone. Pass the weights, `batch_size`, `label` and options used in `sample_mixture`."""
    models = list(models)
    weights = _prepare(models, weights, batch_size, None)
    sample_seed = int(sample_seed)
    index = sample_seed & (2**SEED_SHIFT - 1)
    block = sample_seed - index % batch_size + np.arange(batch_size, dtype=np.int64)
    which = mixture_choice(block, weights)  # only the sub-block of the model that drew it is recomputed
    mine = which == which[index % batch_size]
    images = _generate_block(models[which[index % batch_size]], block[mine], label, options)
    return images[np.flatnonzero(block[mine] == sample_seed)[0]]


def regenerate(
    model: FamilyModel,
    sample_seed: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    label: int | None = None,
    **options,
) -> np.ndarray:
    """The one sample (uint8 [28,28]) with per-sample seed `sample_seed`, recomputed from the seed alone.

    Pass the `batch_size`, `label` and options used in `sample`; see the module docstring for the guarantee.
    """
    return regenerate_mixture([model], None, sample_seed, batch_size, label, **options)


#: Largest difference, in grey levels of 255, between a sample and its regeneration on another CPU kind
CROSS_CPU_GREY_LEVELS = 3


def compare_regenerated(
    model: FamilyModel,
    images: np.ndarray,
    seeds: np.ndarray,
    batch_size: int = DEFAULT_BATCH_SIZE,
    label: int | None = None,
    **options,
) -> dict:
    """Regenerate stored samples from their seeds here and say how far they are from the stored bytes.

    `images`, `seeds`: the first samples of one `sample` call (consecutive seeds from a block boundary),
    as stored. Returns counts of bit-identical samples and of differing pixels, the largest grey-level
    difference, and the Euclidean distance between a sample and its regeneration in [0,1] pixel units (the
    unit of every copy threshold): its largest value and its median, 90th and 99th percentiles, because a
    few seeds can move far while the rest barely move (a diffusion sampler's path can fork).
    """
    seeds = np.asarray(seeds, dtype=np.int64)
    base, first = int(seeds[0]) >> SEED_SHIFT, int(seeds[0]) & (2**SEED_SHIFT - 1)
    if first % batch_size or not np.array_equal(seeds, sample_seeds(base, first + len(seeds))[first:]):
        raise ValueError("seeds must be consecutive per-sample seeds of one run, starting at a block boundary")
    again = np.empty_like(images)
    for start in range(0, len(seeds), batch_size):
        block = int(seeds[start]) + np.arange(batch_size, dtype=np.int64)
        take = min(batch_size, len(seeds) - start)
        again[start : start + take] = _generate_block(model.eval(), block, label, options)[:take]
    difference = np.abs(again.astype(np.int16) - images.astype(np.int16))
    distance = pixel_distances(again, images)
    return {
        "n": len(images),
        "identical": int((difference.reshape(len(images), -1).max(1) == 0).sum()),
        "pixels_differing": int((difference > 0).sum()),
        "max_grey_levels": int(difference.max()),
        "max_distance": float(distance.max()),
        "distance_percentiles": {str(q): float(np.percentile(distance, q)) for q in (50, 90, 99)},
    }


def images_per_second(model: FamilyModel, n: int = 128, batch_size: int = DEFAULT_BATCH_SIZE, **options) -> float:
    """Measured sampling throughput on the model's device (for benchmarks and manifests)."""
    import time

    start = time.perf_counter()
    sample(model, n, seed=0, batch_size=batch_size, progress=False, **options)
    return n / (time.perf_counter() - start)
