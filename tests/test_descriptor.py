"""The copy descriptor: trains only on the kinds of damage it is allowed to see, deterministically, and its
committed weights load only with the pinned hash."""

from __future__ import annotations

import numpy as np
import pytest

from mnistmem import data, degrade
from mnistmem.dataspec import DataSpec
from mnistmem.models import descriptor
from mnistmem.training import TrainConfig, train


def test_training_views_never_use_a_held_out_kind_and_are_reproducible(monkeypatch):
    digits = data.load_mnist("train")[0][:64]
    used: list[str] = []
    real = degrade.degrade

    def spy(images, name, strength, rng, textures=None):
        used.append(name)
        return real(images, name, strength, rng, textures)

    monkeypatch.setattr(degrade, "degrade", spy)
    names = descriptor.training_degradations()
    a = descriptor.degraded_views(digits, np.random.default_rng(4), names)
    b = descriptor.degraded_views(digits, np.random.default_rng(4), names)
    np.testing.assert_array_equal(a, b)
    held_out = {n for n, d in degrade.DEGRADATIONS.items() if d.held_out}
    assert held_out and not held_out & set(used)
    assert set(used) == set(names)  # 64 images, one or two kinds each: every allowed kind is drawn
    assert (a != digits).any(axis=(1, 2)).mean() > 0.9


def test_a_short_training_run_is_deterministic_and_embeds_to_unit_vectors(tmp_path):
    config = TrainConfig(
        model="descriptor",
        model_kwargs={"width": 8, "dim": 16},
        data=DataSpec(n=64, seed=0),
        steps=4,
        batch_size=16,
        checkpoint_every=4,
        log_every=2,
        precision="fp32",
    )
    from mnistmem.checkpoints import load_model

    one = load_model(train(config, tmp_path / "a", progress=False), family="descriptor")
    two = load_model(train(config, tmp_path / "b", progress=False), family="descriptor")
    digits = data.load_mnist("train")[0][:10]
    e1, e2 = one.embed(digits), two.embed(digits)
    np.testing.assert_array_equal(e1, e2)
    np.testing.assert_allclose(np.linalg.norm(e1, axis=1), 1.0, rtol=1e-5)


def test_nearest_other_images_skips_self_and_identical_copies(tmp_path, monkeypatch):
    """The hard negatives of `neighbour_pairs`: each image's nearest *different* image, exact, never itself or
    an identical copy, and cached by the images' hash."""
    from mnistmem.training import nearest_other_images

    monkeypatch.setenv("MNISTMEM_DATA", str(tmp_path))
    digits = data.load_mnist("train")[0][:300]
    images = np.concatenate([digits, digits[:2]])  # rows 300, 301 duplicate rows 0, 1
    nearest = nearest_other_images(images)
    flat = images.reshape(len(images), -1).astype(np.int64)
    for row in (0, 1, 5, 300):
        d = np.sqrt(((flat - flat[row]) ** 2).sum(1))
        d[d == 0] = np.inf  # itself and identical copies are not negatives
        assert d[nearest[row]] == d.min()
    assert list((tmp_path / "cache").glob("nearest-other-*.npy"))
    np.testing.assert_array_equal(nearest_other_images(images), nearest)


def test_neighbour_pairs_need_an_even_batch():
    from mnistmem.training import ConfigError

    with pytest.raises(ConfigError, match="even batch_size"):
        TrainConfig(model="descriptor", batch_size=15, neighbour_pairs=True)
