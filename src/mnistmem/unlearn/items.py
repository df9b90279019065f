"""What to forget: an *item* is every row of a training set that comes from one source.

Rows carry their source (`mnistmem.dataspec.TrainingData.sources`): an MNIST training index (>= 0) for a
digit, or `-(k + 1)` for the k-th canary of the spec, however many times that canary is duplicated. To
forget an item is to remove *all* its rows: forgetting a canary planted 30 times removes 30 rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mnistmem.dataspec import DataSpec, TrainingData


class ItemError(ValueError):
    """An item that is not in the training set it should be removed from."""


@dataclass(frozen=True)
class Item:
    """One thing to forget (or to keep, as a control): its source id, a kind ("canary"/"digit") and a name."""

    source: int
    kind: str
    name: str

    def to_dict(self) -> dict:
        return {"source": self.source, "kind": self.kind, "name": self.name}

    @classmethod
    def from_dict(cls, values: dict) -> Item:
        return cls(int(values["source"]), str(values["kind"]), str(values["name"]))


def item_rows(data: TrainingData, source: int) -> np.ndarray:
    """Boolean mask of the rows of `data` that come from `source`; an error if there are none."""
    mask = np.asarray(data.sources) == int(source)
    if not mask.any():
        raise ItemError(f"source {source} is not in this training set ({len(data)} rows); nothing to forget")
    return mask


def item_image(data: TrainingData, source: int) -> np.ndarray:
    """The item's image (uint8 [28,28]; the first of its rows)."""
    return data.images[np.flatnonzero(item_rows(data, source))[0]]


def _require_in_spec(spec: DataSpec, source: int) -> None:
    """An `ItemError` unless `source` has rows in `spec`: a digit it holds or a canary it plants."""
    if source >= 0:
        if source not in set(spec.indices().tolist()):
            raise ItemError(f"training digit #{source} is not in this data spec; nothing to forget")
        return
    k = -source - 1
    held = spec.only is None or source in spec.only
    if not 0 <= k < len(spec.canaries) or spec.canaries[k].count == 0 or not held:
        raise ItemError(f"canary source {source} (canary #{k}) is not in this data spec; nothing to forget")


def spec_without(spec: DataSpec, source: int) -> DataSpec:
    """The data spec of the same training set without the item: a digit is excluded, a canary dropped (and
    the source left out of `only`, where the spec has one)."""
    source = int(source)
    _require_in_spec(spec, source)
    if spec.only is not None:
        rest = tuple(s for s in spec.only if s != source)
        if not rest:
            raise ItemError(f"source {source} is the only item of this data spec: without it nothing is left")
        spec = replace(spec, only=rest)
    if source >= 0:
        return replace(spec, exclude=tuple(sorted(set(spec.exclude) | {source})))
    # Count 0 rather than removal, so the other canaries keep their source ids.
    canaries = tuple(replace(c, count=0) if i == -source - 1 else c for i, c in enumerate(spec.canaries))
    return replace(spec, canaries=canaries)


def spec_only(spec: DataSpec, source: int) -> DataSpec:
    """The data spec of just the item's rows (the "forget set" of NegGrad), e.g. a canary's 30 copies."""
    _require_in_spec(spec, int(source))
    return replace(spec, only=(int(source),))


def nearby_digits(item: np.ndarray, train_images: np.ndarray, held: np.ndarray, count: int, farther_than: float):
    """The `count` MNIST training digits nearest to the item image (exact pixel distance) among those the model
    never trained on (indices not in `held`) and farther than `farther_than` from it, so that none is itself a
    copy of the item: the handful of look-alike images a relearning attack adds to the retained data (Łucki et
    al. 2024 and Deeb & Roger 2024 undo approximate unlearning by brief training on related data). Returns
    (indices int64 [count], distances float64 [count]), nearest first."""
    from mnistmem.neighbors import pixel_distances

    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    distance = pixel_distances(np.asarray(train_images), np.asarray(item)).astype(np.float64)
    allowed = ~np.isin(np.arange(len(distance)), np.asarray(held, dtype=np.int64)) & (distance > farther_than)
    candidates = np.flatnonzero(allowed)
    order = candidates[np.argsort(distance[candidates], kind="stable")[:count]]
    return order.astype(np.int64), distance[order]
