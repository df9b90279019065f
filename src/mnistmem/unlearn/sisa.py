"""SISA training (Bourtoule et al., "Machine Unlearning", IEEE S&P 2021, arXiv 1912.03817).

Sharded, Isolated, Sliced, Aggregated: the training set is split into S disjoint *shards*, one model per
shard, trained in isolation. Each shard is further split into R *slices*; its model is trained on slice 1,
checkpointed, then on slices 1–2, checkpointed, and so on. To forget an item, only the shard that held it is
retrained, and only from the checkpoint taken *before* the item's slice was first used: the other shards are
untouched (bit-identical), and the earlier slices' work is reused.

Every slice is one run of the project's trainer (`mnistmem.training.train`): slice 0 starts from the
shard's initial weights (its seed), slice r continues slice r - 1's checkpoint (`init_from`) on the rows of
slices 0..r (a `DataSpec` with `only` the shard's sources there). So a SISA ensemble is resumable like any
run, and every one of its models records exactly what it was trained on.

Assignment is by source, so all copies of a duplicated item (a canary planted 30 times) land in the same
shard and slice: forgetting one item then touches one shard, as in the paper, where a user's records are
grouped. Each shard trains for `steps` steps split evenly over its slices.

Aggregation for a generative model: the paper aggregates classifiers by voting; a generator cannot vote.
Here the ensemble is a *mixture* (`mnistmem.sampling.sample_mixture`): each sample's shard model is chosen,
with probability proportional to the shard's size, by a hash of the sample's own seed, and that model draws
the sample from the same seed. So the ensemble samples the mixture of the shard models' distributions, and
every sample regenerates from its seed.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mnistmem import checkpoints
from mnistmem.seeds import hash01
from mnistmem.training import Cost, TrainConfig
from mnistmem.unlearn.items import ItemError, spec_without
from mnistmem.unlearn.methods import continued, run


def assign(sources: np.ndarray, shards: int, slices: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(shard, slice) of every row, a function of its source only: copies of one item share both."""
    if shards < 1 or slices < 1:
        raise ValueError(f"shards and slices must be >= 1, got {shards} and {slices}")
    sources = np.asarray(sources, dtype=np.int64)
    shard = np.minimum((hash01(sources, 2 * seed + 1) * shards).astype(np.int64), shards - 1)
    part = np.minimum((hash01(sources, 2 * seed + 2) * slices).astype(np.int64), slices - 1)
    return shard, part


@dataclass
class SisaLayout:
    """Where a SISA ensemble lives: `folder/shard_<k>/slice_<r>/` is the trainer's run folder of slice r of
    shard k; the last slice's final checkpoint is the shard model the ensemble samples."""

    folder: Path
    shards: int
    slices: int

    def slice_dir(self, shard: int, part: int) -> Path:
        return self.folder / f"shard_{shard}" / f"slice_{part}"

    def final(self, shard: int) -> Path:
        return checkpoints.resolve_checkpoint(self.slice_dir(shard, self.slices - 1))


def _slice_steps(steps: int, slices: int) -> list[int]:
    if steps < slices:
        raise ValueError(f"SISA trains each slice at least one step: steps ({steps}) must be >= slices ({slices})")
    base, extra = divmod(steps, slices)
    return [base + (1 if r < extra else 0) for r in range(slices)]


def shard_seed(seed: int, shard: int) -> int:
    """The seed of shard `shard`'s runs: its initial weights, batches and noise."""
    return seed * 100 + shard


def _train_slices(
    original: TrainConfig,
    layout: SisaLayout,
    shard: int,
    first: int,
    steps: int,
    seed: int,
    start: Path | None,
    deadline: float | None = None,
) -> Cost:
    """Train slices `first`..R-1 of one shard (slice r on the original's rows of its slices <= r), each
    continuing the previous slice's checkpoint (`start` for the first; None = the shard's initial weights)."""
    spec = original.data
    sources = spec.build().sources
    shard_of, part_of = assign(sources, layout.shards, layout.slices, seed)
    cost = Cost()
    for r, n_steps in enumerate(_slice_steps(steps, layout.slices)):
        if r < first:
            continue
        held = np.unique(sources[(shard_of == shard) & (part_of <= r)])
        if not len(held):
            raise ValueError(
                f"SISA shard {shard}, slices 0..{r} hold no rows of {len(sources)}: use fewer shards or slices"
            )
        data = replace(spec, only=tuple(int(s) for s in held))
        if start is None:
            config = replace(original, data=data, steps=n_steps, seed=shard_seed(seed, shard), checkpoint_every=n_steps)
        else:
            config = continued(original, start, data, n_steps, shard_seed(seed, shard))
        start, spent = run(config, layout.slice_dir(shard, r), deadline=deadline)
        cost = cost + spent
    return cost


def train(
    original: TrainConfig,
    shards: int,
    slices: int,
    steps: int,
    seed: int,
    folder: str | os.PathLike,
    deadline: float | None = None,
) -> tuple[SisaLayout, Cost]:
    """Train a SISA ensemble of `shards` models of the original's family on its data into `folder`; each shard
    trains `steps` steps over its slices."""
    layout = SisaLayout(Path(folder), shards, slices)
    sizes = shard_sizes(original, shards, slices, seed)
    if (sizes == 0).any():
        empty = np.flatnonzero(sizes == 0).tolist()
        raise ValueError(f"SISA shards {empty} of {shards} are empty: use fewer shards for {sizes.sum()} rows")
    cost = Cost()
    for k in range(shards):
        cost = cost + _train_slices(original, layout, k, 0, steps, seed, None, deadline)
    return layout, cost


def forget(
    layout: SisaLayout,
    original: TrainConfig,
    source: int,
    steps: int,
    seed: int,
    folder: str | os.PathLike,
    deadline: float | None = None,
) -> tuple[SisaLayout, Cost, dict]:
    """A new ensemble in `folder` without the item: its shard is retrained from the checkpoint before its slice,
    every other shard is copied unchanged. Returns (layout, cost, {"shard", "slice", "retrained_steps"})."""
    new = SisaLayout(Path(folder), layout.shards, layout.slices)
    built = original.data.build()
    shard_of, part_of = assign(built.sources, layout.shards, layout.slices, seed)
    rows = built.sources == int(source)
    if not rows.any():
        raise ItemError(f"source {source} is not in this training set; nothing to forget")
    k, r = int(shard_of[rows][0]), int(part_of[rows][0])
    for j in range(layout.shards):
        if j != k:
            shutil.copytree(layout.folder / f"shard_{j}", new.folder / f"shard_{j}", dirs_exist_ok=True)
    for part in range(r):  # the slices before the item's were trained without it: still valid
        shutil.copytree(layout.slice_dir(k, part), new.slice_dir(k, part), dirs_exist_ok=True)
    start = checkpoints.resolve_checkpoint(new.slice_dir(k, r - 1)) if r > 0 else None
    kept = replace(original, data=spec_without(original.data, source))
    cost = _train_slices(kept, new, k, r, steps, seed, start, deadline)
    return new, cost, {"shard": k, "slice": r, "retrained_steps": cost.steps}


def relearn(
    layout: SisaLayout,
    original: TrainConfig,
    source: int,
    steps: int,
    seed: int,
    assign_seed: int,
    folder,
    nearby: tuple[int, ...] = (),
    deadline: float | None = None,
) -> tuple[list[Path], Cost]:
    """Every shard model trained `steps // shards` more steps on its own shard's data without the item, plus the
    look-alike digits `nearby` (the relearning attack on a mixture: the attacker trains every shard, with the
    same total compute as relearning one model); returns the shard models' final checkpoints."""
    kept = spec_without(original.data, source)
    built = kept.build()
    shard_of, _ = assign(built.sources, layout.shards, layout.slices, assign_seed)
    steps_each = max(1, steps // layout.shards)
    nearby = tuple(int(i) for i in nearby)
    finals, cost = [], Cost()
    for k in range(layout.shards):
        held = tuple(int(s) for s in np.unique(built.sources[shard_of == k]))
        data = replace(kept, extra=nearby, only=held + nearby)
        config = continued(original, layout.final(k), data, steps_each, shard_seed(seed, k))
        final, spent = run(config, Path(folder) / f"shard_{k}", deadline=deadline)
        finals.append(final)
        cost = cost + spent
    return finals, cost


def load_models(finals: SisaLayout | list[Path]) -> list:
    """The shard models (EMA weights, eval mode) of a layout or of a list of final checkpoints, for sampling."""
    if isinstance(finals, SisaLayout):
        finals = [finals.final(k) for k in range(finals.shards)]
    return [checkpoints.load_model(path) for path in finals]


def shard_sizes(original: TrainConfig, shards: int, slices: int, seed: int) -> np.ndarray:
    """Rows per shard of the original's data (the mixture's weights)."""
    shard_of, _ = assign(original.data.build().sources, shards, slices, seed)
    return np.bincount(shard_of, minlength=shards)
