"""What each copy criterion catches and what it misses: ROC, AUC, and recall at a fixed false-alarm rate.

A criterion calibrated only against false alarms can be blind: it may never fire on independent handwriting
and never fire on a slightly noisy copy either. Here both error rates are measured on the same scale, as the
simsim copy-detection benchmark does (ROC AUC, and recall at a fixed false-positive rate):

* positives: training digits degraded the way generators degrade them (`mnistmem.degrade`), each scored
  against all 60,000 training images (its own original among them);
* negatives: MNIST test digits, independent handwriting that was never trained on, split in two halves that
  never mix (`calibration_split`): thresholds are chosen on the *fit* half, false-alarm rates reported on the
  *report* half, so "baseline 0.1%" is a measurement, not true by construction.

Scores follow `mnistmem.copies.CRITERIA`: a "below" criterion flags small scores, an "above" one large scores.
"""

from __future__ import annotations

import math

import numpy as np

from mnistmem.stats import wilson_interval

#: The false-alarm rates at which every criterion's recall is reported; the first sets the book's thresholds.
TARGET_RATES = (0.001, 0.01)


def calibration_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, report) indices of n test digits: even positions choose thresholds, odd ones report rates.

    Interleaving keeps both halves a mix of MNIST's two test writer pools (the first and last 5,000 digits
    come from different populations).
    """
    index = np.arange(n)
    return index[0::2], index[1::2]


def copy_likeness(scores: np.ndarray, direction: str) -> np.ndarray:
    """Scores turned so that larger always means "more like a copy" (NaN, i.e. no score, counts as least)."""
    if direction not in ("below", "above"):
        raise ValueError(f"direction must be 'below' or 'above', got {direction!r}")
    s = np.asarray(scores, np.float64)
    s = -s if direction == "below" else s.copy()
    s[np.isnan(s)] = -np.inf
    return s


def auc(positive: np.ndarray, negative: np.ndarray, direction: str) -> float:
    """Area under the ROC curve: the chance that a random positive looks more like a copy than a random
    negative, ties counted half (the Mann-Whitney statistic; equals scikit-learn's roc_auc_score)."""
    p, q = copy_likeness(positive, direction), copy_likeness(negative, direction)
    if len(p) == 0 or len(q) == 0:
        raise ValueError("auc needs at least one positive and one negative")
    q = np.sort(q)
    below = np.searchsorted(q, p, side="left")
    at_or_below = np.searchsorted(q, p, side="right")
    return float((below + 0.5 * (at_or_below - below)).sum() / (len(p) * len(q)))


def roc_curve(positive: np.ndarray, negative: np.ndarray, direction: str) -> tuple[np.ndarray, np.ndarray]:
    """(false-alarm rate, recall) at every distinct threshold, from the strictest to the loosest."""
    p, q = copy_likeness(positive, direction), copy_likeness(negative, direction)
    cuts = np.unique(np.concatenate([p, q]))[::-1]
    tpr = np.searchsorted(np.sort(-p), -cuts, side="right") / len(p)
    fpr = np.searchsorted(np.sort(-q), -cuts, side="right") / len(q)
    return np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])


def threshold_at_rate(negative: np.ndarray, rate: float, direction: str) -> float:
    """The loosest threshold that flags at most `rate` of the `negative` scores (flags inclusive: a "below"
    criterion flags score <= threshold). Halfway between the last allowed and the first refused negative."""
    if not 0 <= rate < 1:
        raise ValueError(f"rate must be in [0, 1), got {rate}")
    q = np.sort(copy_likeness(negative, direction))[::-1]  # most copy-like first
    allowed = math.floor(rate * len(q))
    refused = q[allowed]  # the first negative that must not be flagged, with all its ties
    inside = q[q > refused]
    if len(inside):
        cut = (inside.min() + refused) / 2.0
    else:
        cut = np.nextafter(refused, np.inf)
    return float(-cut if direction == "below" else cut)


def readable_threshold(threshold: float, direction: str, digits: int = 4) -> float:
    """`threshold` rounded to `digits` significant digits in the strict direction (so it never flags more)."""
    if threshold == 0 or not np.isfinite(threshold):
        return float(threshold)
    scale = 10 ** (digits - 1 - math.floor(math.log10(abs(threshold))))
    rounded = (math.floor if direction == "below" else math.ceil)(threshold * scale) / scale
    return float(round(rounded, digits + 6))


def flagged(scores: np.ndarray, threshold: float, direction: str, inclusive: bool = True) -> np.ndarray:
    """Which scores a threshold flags (`copies.Criterion.flag` for a bare direction): inclusive by default,
    as `threshold_at_rate` assumes; the ratio test's published threshold is strict (`inclusive=False`)."""
    s = np.asarray(scores, np.float64)
    with np.errstate(invalid="ignore"):
        if direction == "below":
            return s <= threshold if inclusive else s < threshold
        return s >= threshold if inclusive else s > threshold


def rate_with_interval(flags: np.ndarray) -> dict:
    count, n = int(np.sum(flags)), len(flags)
    low, high = wilson_interval(count, n)
    return {"count": count, "n": n, "rate": count / n if n else float("nan"), "ci_low": low, "ci_high": high}


def criterion_report(
    positive: np.ndarray,
    groups: np.ndarray,
    negative_fit: np.ndarray,
    negative_report: np.ndarray,
    direction: str,
    book_threshold: float,
    rates: tuple[float, ...] = TARGET_RATES,
    curve_points: int = 200,
    book_inclusive: bool = True,
) -> dict:
    """One criterion's errors: AUC, and at each target false-alarm rate (threshold chosen on the fit half) and
    at the book's threshold (flagging as the criterion does: `book_inclusive`), the false-alarm rate on the
    report half and the recall overall and per group.

    `groups` names each positive's (degradation, level) cell, e.g. "blur/moderate".
    """
    groups = np.asarray(groups)
    cells = sorted(set(groups.tolist()))

    def point(threshold: float, inclusive: bool = True) -> dict:
        hits = flagged(positive, threshold, direction, inclusive)
        return {
            "threshold": threshold,
            "false_alarms": rate_with_interval(flagged(negative_report, threshold, direction, inclusive)),
            "false_alarms_fit_half": rate_with_interval(flagged(negative_fit, threshold, direction, inclusive)),
            "recall": rate_with_interval(hits),
            "recall_by_cell": {cell: float(hits[groups == cell].mean()) for cell in cells},
        }

    fpr, tpr = roc_curve(positive, negative_report, direction)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(curve_points, len(fpr))).round().astype(int))
    return {
        "direction": direction,
        "auc": auc(positive, negative_report, direction),
        "auc_by_cell": {cell: auc(positive[groups == cell], negative_report, direction) for cell in cells},
        "at_rate": {str(rate): point(threshold_at_rate(negative_fit, rate, direction)) for rate in rates},
        "at_book_threshold": point(float(book_threshold), book_inclusive),
        "roc": {"false_alarm_rate": fpr[keep].tolist(), "recall": tpr[keep].tolist()},
    }


def recall_at(report: dict, where: str, level: str, names: list[str] | None = None) -> float:
    """Mean recall over the (degradation, `level`) cells of `names` (all when None) at `where` ("0.001",
    "book", ...): the headline numbers, such as recall on moderate degradations at a 0.1% false-alarm rate."""
    point = report["at_book_threshold"] if where == "book" else report["at_rate"][where]
    cells = {c: r for c, r in point["recall_by_cell"].items() if c.endswith(f"/{level}")}
    if names is not None:
        cells = {c: r for c, r in cells.items() if c.split("/")[0] in names}
    return float(np.mean(list(cells.values()))) if cells else float("nan")
