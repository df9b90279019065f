"""Confidence intervals for the rates the book reports.

Every rate of "copies" is a binomial proportion, often a tiny one (0 or a handful out of 10,000), where the
textbook normal interval fails. We use Wilson's score interval (Wilson 1927, JASA 22:209), as computed by
`scipy.stats.binomtest(...).proportion_ci(method="wilson")`, and for the excess of a model's rate over the
MNIST baseline, Newcombe's hybrid score interval for a difference of independent proportions (Newcombe 1998,
Statistics in Medicine 17:873, method 10), which is built from the two Wilson intervals.
"""

from __future__ import annotations

import math

from scipy.stats import binomtest


def wilson_interval(count: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for `count` successes out of `n` trials (n >= 1)."""
    count, n = int(count), int(n)
    if n < 1 or not 0 <= count <= n:
        raise ValueError(f"need 0 <= count <= n and n >= 1, got count={count}, n={n}")
    ci = binomtest(count, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def newcombe_difference_interval(
    count1: int, n1: int, count2: int, n2: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Interval for p1 - p2 (Newcombe's method 10: hybrid of the two Wilson intervals)."""
    p1, p2 = count1 / n1, count2 / n2
    l1, u1 = wilson_interval(count1, n1, confidence)
    l2, u2 = wilson_interval(count2, n2, confidence)
    diff = p1 - p2
    return diff - math.hypot(p1 - l1, u2 - p2), diff + math.hypot(u1 - p1, p2 - l2)
