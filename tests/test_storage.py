"""The generate-and-filter check of the storage experiment: clusters are judged by their medoid."""

from __future__ import annotations

import numpy as np
import pytest

from mnistmem.experiments import storage

#: 64 pixels shifted by v grey levels move an image 8·v/255 in [0,1] pixel units.
PIXELS = slice(0, 64)


def _shifted(image: np.ndarray, grey_levels: int) -> np.ndarray:
    out = image.reshape(-1).astype(np.int64)
    out[PIXELS] += grey_levels
    return out.reshape(28, 28).astype(np.uint8)


@pytest.fixture
def planted():
    """Training images far apart, and samples holding one cluster around training image 7 whose first member
    lies 0.82 from it (beyond the 0.75 radius) while its medoid lies 0.41 from it, among unrelated noise."""
    rng = np.random.default_rng(0)
    train = rng.integers(40, 200, size=(50, 28, 28), dtype=np.uint8)
    noise = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    target = train[7]
    # sample order puts the edge member first: 26, 13 and 3 grey levels = 0.82, 0.41 and 0.09 from the target
    members = np.stack([_shifted(target, 26), _shifted(target, 13), _shifted(target, 3)])
    samples = np.concatenate([members[:1], noise[:10], members[1:2], noise[10:20], members[2:], noise[20:]])
    return samples, train, np.array([0, 11, 22])


def test_medoid_is_the_member_with_the_smallest_summed_distance(planted):
    samples, _, members = planted
    assert storage.medoid(samples[members]) == 1  # the middle one, not the first
    assert storage.medoid(samples[members[:1]]) == 0
    # ties go to the earlier member
    assert storage.medoid(samples[[members[1], members[1]]]) == 0
    with pytest.raises(ValueError):
        storage.medoid(samples[:0])


def test_medoid_matches_a_brute_force_on_random_groups():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    flat = images.reshape(40, -1).astype(np.float64) / 255
    brute = np.sqrt(((flat[:, None] - flat[None]) ** 2).sum(-1)).sum(1).argmin()
    assert storage.medoid(images) == brute


def test_a_cluster_whose_first_member_misses_counts_through_its_medoid(planted):
    samples, train, members = planted
    groups = storage.clusters(samples, storage.CLUSTER_DISTANCE, storage.MIN_CLUSTER)
    assert [g.tolist() for g in groups] == [members.tolist()]
    first = np.sqrt(((samples[0].astype(float) - train[7]) ** 2).sum()) / 255
    assert first > storage.CLUSTER_DISTANCE  # the old rule (first member) would call this no match

    matched = storage.match_clusters(samples, groups, train, storage.CLUSTER_DISTANCE)
    assert matched["clusters_matching_training_images"] == 1
    assert matched["cluster_medoid"] == [11]
    assert matched["cluster_training_index"] == [7]
    assert matched["cluster_medoid_distance"] == pytest.approx([8 * 13 / 255])
    assert matched["cluster_closest_member_distance"] == pytest.approx([8 * 3 / 255])


def test_no_clusters_no_matches(planted):
    samples, train, _ = planted
    matched = storage.match_clusters(samples, [], train, storage.CLUSTER_DISTANCE)
    assert matched["clusters_matching_training_images"] == 0
    assert all(matched[key] == [] for key in matched if key.startswith("cluster_"))


def test_the_sampler_size_needs_no_weights():
    """The size of a model's sampler (a GAN's generator) follows from the architecture its record names."""
    from mnistmem.models import build_model, sampler_size

    from .conftest import TINY

    generator = build_model("gan", **TINY["gan"]).generator
    tensors = [*generator.parameters(), *generator.buffers()]  # buffers: batch-norm statistics and counters
    bits = sum(t.numel() * t.element_size() * 8 for t in tensors)
    assert sampler_size("gan", TINY["gan"]) == (sum(t.numel() for t in tensors), bits)
