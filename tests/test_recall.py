"""The planted-copy benchmark: degradations, ROC/AUC, thresholds at a false-alarm rate, the held-out split."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from mnistmem import data, degrade, recall


@pytest.fixture(scope="module")
def digits():
    return data.load_mnist("train")[0][:40]


@pytest.fixture(scope="module")
def textures():
    rng = np.random.default_rng(0)
    return degrade.texture_residuals(rng.integers(0, 256, (10, 28, 28)).astype(np.uint8))


@pytest.mark.parametrize("name", list(degrade.DEGRADATIONS))
def test_each_degradation_is_deterministic_graded_and_the_identity_at_zero(name, digits, textures):
    kind = degrade.DEGRADATIONS[name]
    runs = [degrade.degrade(digits, name, kind.strength("moderate"), degrade.level_rng(7, name, "moderate"), textures)]
    runs.append(
        degrade.degrade(digits, name, kind.strength("moderate"), degrade.level_rng(7, name, "moderate"), textures)
    )
    np.testing.assert_array_equal(runs[0], runs[1])  # same seed, same bytes
    assert runs[0].dtype == np.uint8 and runs[0].shape == digits.shape
    distance = {
        level: np.linalg.norm(
            (degrade.degrade(digits, name, kind.strength(level), degrade.level_rng(7, name, level), textures) / 255.0)
            - digits / 255.0,
            axis=(1, 2),
        ).mean()
        for level in degrade.LEVELS
    }
    assert 0 < distance["mild"] < distance["strong"], distance  # graded: the strong level moves pixels more
    same = degrade.degrade(digits, name, 0.0, degrade.level_rng(7, name, "mild"), textures)
    np.testing.assert_array_equal(same, digits)  # strength 0 changes nothing


def test_degrade_refuses_bad_input(digits):
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade.degrade(digits, "melt", 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="uint8"):
        degrade.degrade(digits.astype(float), "blur", 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="textures"):
        degrade.degrade(digits, "gan_texture", 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match=">= 0"):
        degrade.degrade(digits, "blur", -1.0, np.random.default_rng(0))


@pytest.mark.parametrize("direction", ["below", "above"])
def test_auc_and_roc_match_scikit_learn_with_ties(direction):
    rng = np.random.default_rng(3)
    positive = rng.integers(0, 12, 300).astype(float)
    negative = rng.integers(4, 20, 500).astype(float)
    if direction == "above":
        positive, negative = -positive, -negative
    labels = np.r_[np.ones(len(positive)), np.zeros(len(negative))]
    likeness = np.r_[recall.copy_likeness(positive, direction), recall.copy_likeness(negative, direction)]
    assert recall.auc(positive, negative, direction) == pytest.approx(roc_auc_score(labels, likeness), abs=1e-12)
    fpr, tpr = recall.roc_curve(positive, negative, direction)
    ref_fpr, ref_tpr, _ = roc_curve(labels, likeness, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)


@pytest.mark.parametrize("direction", ["below", "above"])
@pytest.mark.parametrize("rate", [0.0, 0.001, 0.01, 0.1])
def test_threshold_at_rate_is_the_loosest_that_keeps_the_rate(direction, rate):
    rng = np.random.default_rng(5)
    negative = np.round(rng.normal(size=2000), 2)  # many ties
    t = recall.threshold_at_rate(negative, rate, direction)
    flags = recall.flagged(negative, t, direction)
    assert flags.mean() <= rate
    # Any looser threshold (up to the next negative value) flags more than the rate allows.
    values = np.unique(negative)
    looser = values[values > t].min() if direction == "below" else values[values < t].max()
    assert recall.flagged(negative, looser, direction).mean() > rate


@pytest.mark.parametrize("direction", ["below", "above"])
def test_readable_threshold_never_flags_more(direction):
    rng = np.random.default_rng(9)
    scores = rng.uniform(0.5, 3.0, 5000)
    for t in rng.uniform(0.5, 3.0, 50):
        r = recall.readable_threshold(t, direction)
        assert recall.flagged(scores, r, direction).sum() <= recall.flagged(scores, t, direction).sum()
        assert abs(r - t) <= 0.01 * abs(t)
    assert recall.readable_threshold(0.99968, "above") == 0.9997
    assert recall.readable_threshold(0.75126, "below") == 0.7512


def test_calibration_split_never_mixes_and_covers_everything():
    fit, report = recall.calibration_split(10_000)
    assert len(fit) == len(report) == 5000
    assert not set(fit) & set(report)
    assert sorted(np.r_[fit, report]) == list(range(10_000))
    # Both halves draw on the two MNIST test writer pools (first and last 5,000).
    for half in (fit, report):
        assert (half < 5000).sum() == (half >= 5000).sum()


def test_criterion_report_counts_recall_per_cell_and_false_alarms_on_the_report_half():
    positive = np.r_[np.full(10, 0.1), np.full(10, 5.0)]
    cells = np.array(["blur/mild"] * 10 + ["blur/strong"] * 10)
    fit = np.linspace(1.0, 10.0, 1000)
    report = np.r_[np.full(3, 0.5), np.linspace(1.0, 10.0, 997)]
    out = recall.criterion_report(positive, cells, fit, report, "below", book_threshold=0.75, rates=(0.01,))
    at = out["at_rate"]["0.01"]
    assert at["false_alarms_fit_half"]["count"] <= 10
    assert at["recall_by_cell"] == {"blur/mild": 1.0, "blur/strong": 0.0}
    book = out["at_book_threshold"]
    assert book["false_alarms"]["count"] == 3 and book["recall"]["count"] == 10
    assert recall.recall_at(out, "book", "mild") == 1.0 and recall.recall_at(out, "book", "strong") == 0.0
    assert 0.5 < out["auc"] < 1.0


def test_planted_copies_cover_every_cell_and_exact_copies_are_caught(digits, textures):
    """A positive control: every kind at every strength is planted, and the pixel criterion at its book
    threshold catches a copy that was not degraded at all."""
    from mnistmem import copies
    from mnistmem.experiments.recall import planted_copies

    train = data.load_mnist("train")[0][:2000]
    rows = np.arange(5)
    images, cells, originals = planted_copies(train, rows, textures, seed=0)
    assert len(images) == len(degrade.DEGRADATIONS) * len(degrade.LEVELS) * len(rows)
    assert len(set(cells)) == len(degrade.DEGRADATIONS) * len(degrade.LEVELS)
    np.testing.assert_array_equal(originals[: len(rows)], rows)
    exact = copies.score_samples(train[rows], None, train)
    assert exact.flags["l2"].all() and exact.flags["calibrated_l2"].all()
