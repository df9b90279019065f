"""The onset estimator on synthetic curves: the first crossing of the false-alarm bar, censored runs kept as
such, failed runs kept out of the fit, and a planted linear law recovered."""

from __future__ import annotations

import pytest

from mnistmem import onset


def _curve(steps, shares, recognised=0.95):
    return [{"step": s, "share": v, "recognised": recognised} for s, v in zip(steps, shares, strict=True)]


def test_the_onset_is_the_first_checkpoint_above_the_bar_and_says_whether_it_held():
    steps = [500, 1000, 1500, 2000]
    held = onset.onset(100, _curve(steps, [0.0, 0.001, 0.05, 0.2]), bar=0.002, gate=0.9)
    assert held.step == 1500 and held.sustained and held.budget == 2000 and held.learned
    fell = onset.onset(100, _curve(steps, [0.0, 0.01, 0.001, 0.2]), bar=0.002, gate=0.9)
    assert fell.step == 1000 and not fell.sustained
    never = onset.onset(100, _curve(steps, [0.0, 0.001, 0.0, 0.002]), bar=0.002, gate=0.9)
    assert never.step is None and never.budget == 2000 and not never.sustained  # at the bar is not above it


def test_a_run_that_never_meets_the_quality_gate_is_marked_and_kept_out_of_the_fit():
    curve = [{"step": s, "share": 0.5, "recognised": 0.4} for s in (500, 1000)]
    failed = onset.onset(10, curve, bar=0.01, gate=0.9)
    assert not failed.learned and failed.good_samples_step is None and failed.step == 500
    good = [onset.onset(n, _curve([n, 2 * n], [0.0, 0.5]), bar=0.01, gate=0.9) for n in (100, 200)]
    line = onset.fit_line([failed, *good])
    assert line["sizes"] == [100, 200]


def test_a_planted_linear_law_is_recovered_and_a_censored_run_that_contradicts_it_is_named():
    slope, intercept, steps = 4.0, 300, list(range(250, 20_001, 250))
    runs = []
    for n in (100, 200, 400, 800, 1600):
        start = slope * n + intercept
        runs.append(onset.onset(n, _curve(steps, [0.3 if s >= start else 0.0 for s in steps]), bar=0.01, gate=0.9))
    late = onset.onset(6400, _curve(steps[:20], [0.0] * 20), bar=0.01, gate=0.9)  # budget 5,000: not yet
    early = onset.onset(3200, _curve(steps, [0.0] * len(steps)), bar=0.01, gate=0.9)  # budget 20,000 > 13,100
    line = onset.fit_line([*runs, late, early])
    assert line["slope"] == pytest.approx(slope, rel=0.05) and line["r2"] > 0.99
    assert line["censored"] == [6400, 3200] and line["censored_below_line"] == [3200]
    assert onset.fit_line(runs[:1]) is None


def test_share_interval_brackets_the_share_and_refuses_an_empty_count():
    share, low, high = onset.share_interval(5, 2000)
    assert low < share == 0.0025 < high
    assert onset.share_interval(0, 2000)[1] == 0.0
    with pytest.raises(ValueError, match="at least one sample"):
        onset.share_interval(0, 0)
