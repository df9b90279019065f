"""Copy criteria: planted copies are found and flagged, test digits mostly are not, C_T separates the two."""

from __future__ import annotations

import numpy as np
import pytest

from mnistmem import copies, ctest
from mnistmem.data import load_mnist
from mnistmem.neighbors import NeighborsInputError
from mnistmem.stats import newcombe_difference_interval, wilson_interval

SOURCES = [11, 222, 3333, 4444]
PIXEL_CRITERIA = ("l2", "nn_ratio", "calibrated_l2")


def pooled_features(images: np.ndarray) -> np.ndarray:
    """A stand-in for the classifier: 4×4 average pooling, which tolerates one-pixel shifts."""
    x = images.astype(np.float64).reshape(len(images), 7, 4, 7, 4).mean((2, 4))
    return x.reshape(len(images), -1)


@pytest.fixture(scope="module")
def data():
    train, _ = load_mnist("train")
    test, _ = load_mnist("test")
    return train[:6000], test


@pytest.fixture(scope="module")
def planted(data):
    train, _ = data
    rng = np.random.default_rng(0)
    src = train[SOURCES]
    kinds = {
        "exact": src.copy(),
        "noisy": np.clip(src.astype(int) + rng.normal(0, 4, src.shape).round(), 0, 255).astype(np.uint8),
        "shifted": np.roll(src, 1, axis=2),
        "contrast": (src * 0.9).round().astype(np.uint8),
    }
    samples = np.concatenate(list(kinds.values()))
    table = copies.score_samples(samples, np.arange(len(samples)) + 100, train, features=pooled_features)
    return {kind: slice(4 * n, 4 * n + 4) for n, kind in enumerate(kinds)}, table


def test_planted_copies_found_with_the_right_training_index(planted):
    rows, table = planted
    for kind, rows_of_kind in rows.items():
        assert list(table.nn_index[rows_of_kind, 0]) == SOURCES, kind
    assert list(table.seed[:3]) == [100, 101, 102]


@pytest.mark.parametrize(
    ("kind", "flagging"),
    [
        ("exact", ("l2", "nn_ratio", "calibrated_l2", "ssim", "feature_cosine")),
        ("noisy", ("l2", "nn_ratio", "calibrated_l2")),
        ("contrast", ("nn_ratio", "calibrated_l2")),
    ],
)
def test_planted_copies_flagged_by_the_criteria_that_should(planted, kind, flagging):
    rows, table = planted
    for name in flagging:
        assert table.flags[name][rows[kind]].all(), (kind, name, table.scores[name][rows[kind]])


def test_one_pixel_shift_escapes_pixel_criteria(planted):
    """A documented limitation: pixel distances do not see a shifted copy; feature similarity does."""
    rows, table = planted
    for name in PIXEL_CRITERIA:
        assert not table.flags[name][rows["shifted"]].any(), name
    assert list(table.extra["feature_nn_index"][rows["shifted"]]) == SOURCES


def test_exact_copy_scores(planted):
    rows, table = planted
    exact = rows["exact"]
    assert (table.nn_distance[exact, 0] == 0).all()
    assert (table.scores["nn_ratio"][exact] == 0).all() and (table.scores["calibrated_l2"][exact] == 0).all()
    np.testing.assert_allclose(table.scores["ssim"][exact], 1.0)


def test_test_digits_mostly_not_flagged(data):
    train, test = data
    baseline = copies.baseline_table(test[:300], train, k=50, n_cells=5)
    assert abs(baseline.meta["c_t"]["c_t"]) < 3  # test digits vs test digits: no copying
    assert "feature_cosine" not in baseline.scores  # plug-in skipped without features
    assert baseline.flags["l2"].sum() == 0 and baseline.flags["nn_ratio"].sum() == 0
    assert baseline.flags["calibrated_l2"].mean() <= 0.02 and baseline.flags["ssim"].mean() <= 0.02


def test_summary_rates_intervals_and_sliders(planted, data):
    _, table = planted
    train, test = data
    baseline = copies.baseline_table(test[:200], train, features=pooled_features, n_cells=5)
    summary = {row["criterion"]: row for row in copies.summarize(table, baseline)}
    assert set(summary) == set(table.scores)
    for row in summary.values():
        assert row["ci_low"] <= row["rate"] <= row["ci_high"]
        assert row["baseline_ci_low"] <= row["baseline_rate"] <= row["baseline_ci_high"]
        assert row["excess"] == pytest.approx(row["rate"] - row["baseline_rate"])
        assert row["excess_ci_low"] <= row["excess"] <= row["excess_ci_high"]
    assert summary["nn_ratio"]["count"] == 12  # exact, noisy, contrast
    # sliders: flags follow any threshold, recomputed from stored scores
    loose = copies.with_thresholds(table, {"l2": 10.0})
    assert loose.flags["l2"].all() and loose.thresholds["l2"] == 10.0
    np.testing.assert_array_equal(
        copies.flags_at(table, "l2", copies.CRITERIA["l2"].default_threshold), table.flags["l2"]
    )
    assert copies.summarize(table, baseline, {"l2": 10.0})[0]["rate"] == 1.0


def test_wilson_interval_known_values():
    low, high = wilson_interval(0, 10_000)
    assert low == 0 and high == pytest.approx(3.84e-4, rel=0.01)  # z²/(n+z²)
    low, high = newcombe_difference_interval(50, 1000, 10, 1000)
    assert low < 0.04 < high and low > 0


def test_c_t_negative_for_training_images_and_near_zero_for_test(data):
    train, test = data
    train = train[:3000]
    cells = ctest.fit_cells(train, n_cells=10, seed=0)
    copied = ctest.c_t_test(train[:1000], test[:1000], train, cells=cells)
    fresh = ctest.c_t_test(test[1000:2000], test[:1000], train, cells=cells)
    assert copied.c_t < -5, copied.c_t
    assert abs(fresh.c_t) < 3, fresh.c_t
    assert copied.cell_used.sum() >= 5 and np.isclose(copied.cell_test_share.sum(), 1)


def test_c_t_skips_cells_with_few_generated_samples(data):
    train, test = data
    cells = ctest.fit_cells(train[:3000], n_cells=10, seed=0)
    result = ctest.c_t_test(train[:30], test[:1000], train[:3000], cells=cells)
    assert (result.cell_used == (result.cell_generated_count > ctest.MIN_GENERATED_PER_CELL)).all()


def test_bad_samples_and_seeds(data):
    train, _ = data
    with pytest.raises(NeighborsInputError, match="samples has NaN"):
        copies.score_samples(np.full((2, 28, 28), np.nan), None, train)
    with pytest.raises(NeighborsInputError, match="seeds"):
        copies.score_samples(train[:3], np.arange(2), train)
    with pytest.raises(NeighborsInputError, match="k=10"):
        copies.score_samples(train[:3], None, train, k=10)


def test_mnist_near_duplicates_finds_a_planted_duplicate(data):
    train, test = data
    train = train[:2000].copy()
    train[1500] = train[40]  # an exact duplicate, and a near one
    train[1600] = np.clip(train[41].astype(int) + 1, 0, 255)
    result = copies.mnist_near_duplicates(train, test[:100], n_pairs=5)
    assert result["train_nn_index"][1500] == 40 and result["train_nn_index"][40] == 1500
    assert list(result["closest_train_pairs"][0]) == [40, 1500]
    assert result["closest_train_pair_distance"][0] == 0
    assert list(result["closest_train_pairs"][1]) == [41, 1600]
    assert (result["train_nn_index"] != np.arange(2000)).all()
    assert (np.diff(result["closest_test_distance"]) >= 0).all()


def test_feature_cosine_is_a_cosine_even_with_raw_cached_features(data):
    """Cached training features may be raw (not unit length): the score must still be a cosine in [-1, 1],
    exactly 1 for an exact copy. (A bug once passed raw features through and scored test digits at ~60.)"""
    train, _ = data
    reference = train[:500]
    raw = pooled_features(reference) * 37.0
    samples = np.concatenate([reference[:3], train[500:510]])
    score, index = copies.feature_cosine_score(samples, reference, pooled_features, train_features=raw)
    assert (score <= 1 + 1e-9).all() and (score >= -1 - 1e-9).all()
    np.testing.assert_allclose(score[:3], 1.0)
    assert list(index[:3]) == [0, 1, 2]


def test_the_ratio_test_counts_a_copy_of_a_duplicated_training_image(data):
    """A training image planted 100 times, and a sample that is that image with slight noise: searched over
    distinct images its second neighbour is another image, so the ratio test flags it (searched over the raw
    set, d2 = d1 and the ratio is 1: the copy was missed)."""
    train, _ = data
    duplicated = np.concatenate([train[:3000], np.repeat(train[SOURCES[-1:]], 100, axis=0)])  # 4444: not in :3000
    rng = np.random.default_rng(1)
    sample = np.clip(train[SOURCES[-1]].astype(int) + rng.normal(0, 6, (28, 28)).round(), 0, 255).astype(np.uint8)
    table = copies.score_samples(sample[None], None, duplicated)
    assert table.meta["n_train_distinct"] == 3001
    assert table.nn_index[0, 0] == 3000  # the first occurrence of the duplicated image
    assert table.flags["nn_ratio"][0] and table.scores["nn_ratio"][0] < 1 / 3
    assert len(set(table.nn_index[0].tolist())) == table.k  # no neighbour listed twice
    first, counts = copies.distinct_images(duplicated)
    assert len(first) == 3001 and counts[first.tolist().index(3000)] == 100


def test_descriptor_score_is_high_for_planted_copies_and_names_their_source(data):
    """The normalised descriptor similarity (closest minus the mean of the next ten) with a stand-in descriptor:
    exact copies stand out from independent test digits, and the named neighbour is the copied image."""
    train, test = data
    exact = train[SOURCES]
    score, nearest = copies.descriptor_score(exact, pooled_features, pooled_features(train))
    assert list(nearest) == SOURCES
    test_score, _ = copies.descriptor_score(test[:500], pooled_features, pooled_features(train))
    assert score.min() > np.median(test_score) and np.median(score) > np.quantile(test_score, 0.95)
    table = copies.score_samples(exact, None, train, descriptor=pooled_features)
    np.testing.assert_allclose(table.scores["copy_descriptor"], score)
    assert list(copies.nearest_under(table, "copy_descriptor")) == SOURCES
