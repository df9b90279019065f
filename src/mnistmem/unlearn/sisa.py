"""SISA training (Bourtoule et al., "Machine Unlearning", IEEE S&P 2021, arXiv 1912.03817).

Sharded, Isolated, Sliced, Aggregated: the training set is split into S disjoint *shards*, one model per
shard, trained in isolation. Each shard is further split into R *slices*; its model is trained on slice 1,
checkpointed, then on slices 1–2, checkpointed, and so on. To forget an item, only the shard that held it is
retrained, and only from the checkpoint taken *before* the item's slice was first used: the other shards are
untouched (bit-identical), and the earlier slices' work is reused.

Assignment is by source, so all copies of a duplicated item (a canary planted 30 times) land in the same
shard and slice: forgetting one item then touches one shard, as in the paper, where a user's records are
grouped. Each shard trains for `steps` steps split evenly over its slices.

Aggregation for a generative model: the paper aggregates classifiers by voting; a generator cannot vote.
Here the ensemble is a *mixture*: each sample picks one shard model, with probability proportional to the
shard's size, by a hash of the sample's own seed, and that model draws the sample from the same seed. So the
ensemble samples the mixture of the shard models' distributions, and every sample is reproducible.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistmem.dataspec import TrainingData
from mnistmem.unlearn.trainer import Cost, TrainState, fit, load_state, new_state, save_state

_MIX = np.uint64(0x9E3779B97F4A7C15)


def _hash01(values: np.ndarray, salt: int) -> np.ndarray:
    """A fixed pseudo-random number in [0, 1) for each int64 value (splitmix64 finaliser)."""
    with np.errstate(over="ignore"):
        z = np.asarray(values, dtype=np.int64).astype(np.uint64) + np.uint64(salt) * _MIX
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def assign(sources: np.ndarray, shards: int, slices: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(shard, slice) of every row, a function of its source only: copies of one item share both."""
    if shards < 1 or slices < 1:
        raise ValueError(f"shards and slices must be >= 1, got {shards} and {slices}")
    sources = np.asarray(sources, dtype=np.int64)
    shard = np.minimum((_hash01(sources, 2 * seed + 1) * shards).astype(np.int64), shards - 1)
    part = np.minimum((_hash01(sources, 2 * seed + 2) * slices).astype(np.int64), slices - 1)
    return shard, part


@dataclass
class SisaLayout:
    """Where a SISA ensemble lives: `folder/shard_<k>/slice_<r>/` holds the full state after slice r
    (slice_-1 is the initial weights); `shard_<k>/final` the state used for sampling."""

    folder: Path
    shards: int
    slices: int

    def slice_dir(self, shard: int, part: int) -> Path:
        return self.folder / f"shard_{shard}" / f"slice_{part}"

    def final(self, shard: int) -> Path:
        return self.slice_dir(shard, self.slices - 1)


def _slice_steps(steps: int, slices: int) -> list[int]:
    base, extra = divmod(steps, slices)
    return [base + (1 if r < extra else 0) for r in range(slices)]


def _train_shard(
    state: TrainState,
    data: TrainingData,
    mask_shard: np.ndarray,
    parts: np.ndarray,
    start: int,
    layout: SisaLayout,
    shard: int,
    steps: int,
    seed: int,
) -> Cost:
    """Train slices start..R-1 of one shard (slice r on the union of slices <= r), checkpointing each."""
    cost = Cost()
    for r, n_steps in enumerate(_slice_steps(steps, layout.slices)):
        if r < start:
            continue
        rows = mask_shard & (parts <= r)
        if rows.any():
            cost = cost + fit(state, data.images[rows], data.labels[rows], n_steps, seed * 1000 + shard * 10 + r)
        save_state(state, layout.slice_dir(shard, r))
    return cost


def train(
    data: TrainingData, settings: dict, shards: int, slices: int, steps: int, seed: int, folder: str | Path
) -> tuple[SisaLayout, Cost]:
    """Train a SISA ensemble of `shards` models into `folder`; each shard trains `steps` steps over its slices."""
    layout = SisaLayout(Path(folder), shards, slices)
    shard_of, part_of = assign(data.sources, shards, slices, seed)
    cost = Cost()
    for k in range(shards):
        mask = shard_of == k
        if not mask.any():
            raise ValueError(f"shard {k} of {shards} is empty: use fewer shards for {len(data)} rows")
        state = new_state(
            settings["family"],
            settings.get("model_kwargs", {}),
            seed * 100 + k,
            settings["batch_size"],
            settings.get("lr"),
            settings.get("ema", "auto"),
        )
        save_state(state, layout.slice_dir(k, -1))
        cost = cost + _train_shard(state, data, mask, part_of, 0, layout, k, steps, seed)
    return layout, cost


def forget(
    layout: SisaLayout, data: TrainingData, source: int, steps: int, seed: int, folder: str | Path
) -> tuple[SisaLayout, Cost, dict]:
    """A new ensemble in `folder` without the item: its shard is retrained from the checkpoint before its slice,
    every other shard is copied unchanged. Returns (layout, cost, {"shard", "slice", "retrained_steps"})."""
    new = SisaLayout(Path(folder), layout.shards, layout.slices)
    shard_of, part_of = assign(data.sources, layout.shards, layout.slices, seed)
    rows = np.asarray(data.sources) == int(source)
    if not rows.any():
        raise ValueError(f"source {source} is not in this training set; nothing to forget")
    k, r = int(shard_of[rows][0]), int(part_of[rows][0])
    for j in range(layout.shards):
        if j != k:
            shutil.copytree(layout.folder / f"shard_{j}", new.folder / f"shard_{j}", dirs_exist_ok=True)
    for part in range(-1, r):  # the checkpoints before the item's slice are still valid
        shutil.copytree(layout.slice_dir(k, part), new.slice_dir(k, part), dirs_exist_ok=True)
    state = load_state(layout.slice_dir(k, r - 1))
    kept = TrainingData(data.images[~rows], data.labels[~rows], data.sources[~rows])
    cost = _train_shard(state, kept, shard_of[~rows] == k, part_of[~rows], r, new, k, steps, seed)
    return new, cost, {"shard": k, "slice": r, "retrained_steps": cost.steps}


def load_models(layout: SisaLayout) -> list:
    """The shard models (EMA weights, eval mode), for sampling."""
    return [load_state(layout.final(k)).sampling_model() for k in range(layout.shards)]


def load_states(layout: SisaLayout) -> list[TrainState]:
    return [load_state(layout.final(k)) for k in range(layout.shards)]


def shard_sizes(data: TrainingData, shards: int, slices: int, seed: int) -> np.ndarray:
    shard_of, _ = assign(data.sources, shards, slices, seed)
    return np.bincount(shard_of, minlength=shards)


def choose_shards(seeds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The shard model that draws each sample: proportional to `weights`, by a hash of the sample's seed."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or len(weights) == 0 or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"shard weights must be non-negative with a positive sum, got {weights}")
    edges = np.cumsum(weights / weights.sum())
    return np.minimum(np.searchsorted(edges, _hash01(seeds, 0x51A), side="right"), len(weights) - 1)


def relearn(
    layout: SisaLayout, data: TrainingData, source: int, steps: int, seed: int, assign_seed: int
) -> tuple[list, Cost]:
    """Every shard model trained `steps // shards` more steps on its own shard's data without the item
    (the relearning check for a mixture: the same total compute as relearning one model)."""
    shard_of, _ = assign(data.sources, layout.shards, layout.slices, assign_seed)
    keep = np.asarray(data.sources) != int(source)
    steps_each = max(1, steps // layout.shards)
    models, cost = [], Cost()
    for k, state in enumerate(load_states(layout)):
        rows = keep & (shard_of == k)
        cost = cost + fit(state, data.images[rows], data.labels[rows], steps_each, seed * 100 + k, note="relearn shard")
        models.append(state.sampling_model())
    return models, cost
