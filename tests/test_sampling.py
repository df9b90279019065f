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
