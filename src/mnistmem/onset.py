"""When does copying begin? The onset of memorisation read off a curve of copy shares over training steps.

Bonnaire et al. (NeurIPS 2025, "Why diffusion models don't memorize") show that a diffusion model's time to
good samples stays roughly fixed as the training-set size n grows, while the time at which it starts to copy
grows linearly with n: between the two lies a window in which the model generalises. To test this on MNIST,
each training run keeps checkpoints; at each, samples are drawn and the share that are copies is measured
with its 95% interval (Wilson). Here:

- the *onset step* of a run is its first checkpoint whose copy share exceeds a bar: the upper end of the 95%
  interval of the share that independent test digits reach under the same definition (the false-alarm rate),
  so a share counts as copying only when chance cannot give it;
- a run whose share never crosses the bar has no onset within its budget: it is kept as a censored point
  (the onset is later than its last checkpoint), never dropped and never drawn as if it had crossed;
- the *good-samples step* is the first checkpoint at which the model's samples meet a quality gate (the
  share its classifier recognises); a run that never meets it is kept *below the gate*, with the best share it
  reached, so a reader can tell a model that drew noise from one that drew digits a little short of the gate;
- the line onset ≈ slope · n + intercept is fitted by least squares on the runs with an onset that met the
  gate, and (`gated=False`) on every run with an onset, so the book can show what the runs below the gate add.

Nothing here trains or samples; it only reads curves (lists of dicts), so it can be tested on synthetic ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from mnistmem.stats import wilson_interval


@dataclass(frozen=True)
class Onset:
    """One run's onset. `step` None: the share stayed at or below the bar up to `budget` (censored)."""

    n: int
    step: int | None
    budget: int
    #: every checkpoint from the onset on stays above the bar (a crossing that falls back is a weak onset)
    sustained: bool
    #: first checkpoint whose recognised share meets the quality gate; None: never within the budget
    good_samples_step: int | None
    #: the run met the quality gate at some checkpoint (else it is shown as below the gate, not as a data point)
    learned: bool
    #: the highest quality share the run reached at any checkpoint (how far short of the gate a run stayed)
    best_quality: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def gate_share(recognised_share: float, handwriting_share: float | None) -> float:
    """The share of samples that pass the quality gate's two tests: recognised by the classifier *and*
    handwriting-like (the classifier alone is confident on noise). A summary written before the second test was
    recorded gives None for it, and then only the first counts."""
    return recognised_share if handwriting_share is None else min(recognised_share, handwriting_share)


def share_interval(count: int, total: int) -> tuple[float, float, float]:
    """(share, low, high): a count of `total` samples with its 95% Wilson interval."""
    if total <= 0:
        raise ValueError(f"a share needs at least one sample, got total={total}")
    low, high = wilson_interval(count, total)
    return count / total, low, high


def first_step_above(curve: list[dict], key: str, bar: float) -> int | None:
    """The first checkpoint (by step) whose `key` exceeds `bar`, or None."""
    for row in sorted(curve, key=lambda r: r["step"]):
        if row[key] > bar:
            return int(row["step"])
    return None


def first_step_at_least(curve: list[dict], key: str, gate: float) -> int | None:
    """The first checkpoint (by step) whose `key` reaches `gate`, or None."""
    for row in sorted(curve, key=lambda r: r["step"]):
        if row[key] >= gate:
            return int(row["step"])
    return None


def onset(
    n: int, curve: list[dict], bar: float, gate: float, share: str = "share", quality: str = "recognised"
) -> Onset:
    """The onset of one run of `n` training images from its `curve` (one dict per checkpoint with `step`, the
    copy `share` and the `quality` share): see the module docstring for each field."""
    if not curve:
        raise ValueError(f"the curve of the run on {n} images has no checkpoint")
    rows = sorted(curve, key=lambda r: r["step"])
    step = first_step_above(rows, share, bar)
    sustained = step is not None and all(r[share] > bar for r in rows if r["step"] >= step)
    good = first_step_at_least(rows, quality, gate)
    return Onset(
        n=int(n),
        step=step,
        budget=int(rows[-1]["step"]),
        sustained=bool(sustained),
        good_samples_step=good,
        learned=good is not None,
        best_quality=float(max(r[quality] for r in rows)),
    )


def fit_line(onsets: list[Onset], gated: bool = True) -> dict | None:
    """Least squares onset ≈ slope · n + intercept over the runs that crossed the bar and (`gated`, the default)
    met the quality gate; None with fewer than two such sizes. Also R² and the sizes used, so a reader sees what
    the line rests on; the runs without an onset are not in the fit but bound it (their onset is later than
    their budget), and `censored_below_line` names those whose budget already lies above the fitted line (they
    contradict it). `gated=False` fits every run with an onset, those below the quality gate included."""
    admitted = [o for o in onsets if o.learned or not gated]
    used = [o for o in admitted if o.step is not None]
    if len({o.n for o in used}) < 2:
        return None
    x = np.array([o.n for o in used], dtype=float)
    y = np.array([o.step for o in used], dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    fitted = slope * x + intercept
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - fitted) ** 2).sum()) / total if total > 0 else 1.0
    censored = [o for o in admitted if o.step is None]
    return {
        "slope": float(slope),
        "intercept": float(intercept),
        "r2": r2,
        "sizes": [o.n for o in used],
        "censored": [o.n for o in censored],
        # steps are whole numbers: a run whose budget ends exactly at the predicted step has not passed it
        "censored_below_line": [o.n for o in censored if o.budget > round(slope * o.n + intercept)],
    }
