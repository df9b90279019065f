"""Samples: shape, dtype, determinism, and exact regeneration of one sample from its seed alone."""

import numpy as np
import pytest
import torch

from mnistmem.models import build_model
from mnistmem.sampling import regenerate, sample, sample_seeds

from .conftest import TINY

OPTIONS = {"gan": {}, "vae": {}, "diffusion": {"steps": 2}}


@pytest.mark.parametrize("family", ["gan", "vae", "diffusion"])
def test_samples_are_deterministic_and_regenerable(family):
    torch.manual_seed(0)
    model = build_model(family, **TINY[family])
    images, seeds = sample(model, 11, seed=5, batch_size=4, progress=False, **OPTIONS[family])
    assert images.shape == (11, 28, 28) and images.dtype == np.uint8
    assert seeds.dtype == np.int64 and np.array_equal(seeds, sample_seeds(5, 11))
    assert len(np.unique(images.reshape(11, -1), axis=0)) == 11  # each seed its own noise
    again, _ = sample(model, 11, seed=5, batch_size=4, progress=False, **OPTIONS[family])
    assert np.array_equal(images, again)
    _, other_seeds = sample(model, 2, seed=6, batch_size=4, progress=False, **OPTIONS[family])
    assert not np.isin(other_seeds, seeds).any()
    for i in (0, 3, 6, 10):  # first, block end, middle, padded last block
        alone = regenerate(model, seeds[i], batch_size=4, **OPTIONS[family])
        assert alone.tobytes() == images[i].tobytes()
    # a prefix of a longer run is the shorter run: samples do not depend on n
    more, _ = sample(model, 12, seed=5, batch_size=4, progress=False, **OPTIONS[family])
    assert np.array_equal(more[:11], images)


def test_conditional_diffusion_draws_labels():
    model = build_model("diffusion", num_classes=11, **TINY["diffusion"])
    sevens, seeds = sample(model, 3, seed=0, batch_size=3, progress=False, label=7, steps=3)
    plain, _ = sample(model, 3, seed=0, batch_size=3, progress=False, steps=3)
    assert not np.array_equal(sevens, plain)
    assert np.array_equal(regenerate(model, seeds[1], batch_size=3, label=7, steps=3), sevens[1])
    with pytest.raises(ValueError, match="labels must be in"):
        sample(model, 1, seed=0, progress=False, label=11, steps=2)
    with pytest.raises(ValueError, match="unconditional"):
        sample(build_model("diffusion", **TINY["diffusion"]), 1, seed=0, progress=False, label=3, steps=2)


def test_classifier_cannot_be_sampled_and_seed_range():
    with pytest.raises(TypeError, match="not generative"):
        sample(build_model("classifier", **TINY["classifier"]), 2, seed=0, progress=False)
    with pytest.raises(ValueError, match="seed"):
        sample_seeds(-1, 3)


class _NearOracle(torch.nn.Module):
    """A noise predictor that knows the one clean image but is off by a little, differently at every pixel:
    the position of an almost-trained network. Exact would be ε = (x − √ᾱ·x₀)/√(1−ᾱ)."""

    def __init__(self, target: torch.Tensor, alphas_cumprod: torch.Tensor, error: float) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the stub a device
        self.target, self.alphas_cumprod = target, alphas_cumprod
        self.error = error * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))

    def forward(self, x, t, class_labels=None):
        abar = self.alphas_cumprod[int(t)]
        eps = (x - abar.sqrt() * self.target) / (1 - abar).sqrt() + self.error
        # A network's output is bounded by what it saw in training (ε ~ N(0, 1)): it cannot cancel an input
        # that has been blown far out of range, which is how a small error turns into a saturated image.
        eps = eps.clamp(-4.0, 4.0)
        return type("Output", (), {"sample": eps})()


@pytest.mark.parametrize("sampler", ["dpm", "ddim"])
def test_diffusion_sampler_stays_in_range_when_the_network_is_slightly_wrong(sampler):
    """At the last training step of the cosine schedule almost no signal is left, so a small error in ε̂
    becomes an enormous error in the clean-image estimate. Unclipped, DPM-Solver++ turned a half-trained
    model's samples into pure black-and-white noise; with the estimate kept in range, a near-oracle
    network must give back (nearly) its image."""
    model = build_model("diffusion", **TINY["diffusion"])
    target = torch.full((1, 1, 28, 28), -1.0)
    target[..., 8:20, 12:16] = 1.0  # a white bar on black: a crude "1"
    model.unet = _NearOracle(target, model.scheduler.alphas_cumprod, error=0.1)
    images, _ = sample(model, 4, seed=0, batch_size=4, progress=False, sampler=sampler, steps=15)
    expected = ((target[0, 0] + 1) * 127.5).round().numpy()
    assert np.abs(images.astype(float) - expected).mean() < 0.05 * 255


@pytest.mark.parametrize("family", ["diffusion", "gan"])
def test_committed_samples_regenerate_from_their_seeds(family):
    """The committed weights and stored seeds regenerate the committed samples: bit for bit on the CPU kind
    that drew them, within `CROSS_CPU_GREY_LEVELS` (and far below every copy threshold) on another kind.

    Which branch runs depends on this machine's CPU; both are stated here so a reader of the log knows."""
    from mnistmem import checkpoints, results
    from mnistmem.devices import cpu_summary, torch_threads
    from mnistmem.experiments.randomness import drawn_on, drawn_threads
    from mnistmem.experiments.stages import MODEL_DIR, SAMPLES_FILE, load_samples, sample_batch_size
    from mnistmem.sampling import CROSS_CPU_GREY_LEVELS, compare_regenerated

    try:
        main = results.load("main", "cpu")
    except results.ResultError:
        pytest.skip("no committed cpu-scale results")
    stage = main.stage(f"sample_{family}")
    model = checkpoints.load_model(main.path(stage["config"]["from"], MODEL_DIR))
    images, seeds = load_samples(main.path(f"sample_{family}", SAMPLES_FILE))
    batch = sample_batch_size(stage["config"])
    with torch_threads(drawn_threads(main.manifest, stage)):
        found = compare_regenerated(model, images[:batch], seeds[:batch], batch, **stage["config"].get("sampler", {}))
    here, there = cpu_summary()["kind"], (drawn_on(stage) or {}).get("kind")
    if there == here:
        print(f"same CPU kind ({here}) as the manifest: bit-exact expected")
        assert found["identical"] == found["n"], found
    else:
        print(f"drawn on {there or 'an unrecorded CPU'}, regenerated on {here}: within bound")
        assert found["max_grey_levels"] <= CROSS_CPU_GREY_LEVELS, found
        assert found["max_distance"] < 0.1, found  # the loosest pixel threshold in the book is 0.75
        assert found["identical"] >= found["n"] // 2, found
