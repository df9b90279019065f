"""Training sets described, not hand-built: which MNIST rows, minus which, plus which canaries how often.

A `DataSpec` is small, JSON-serialisable and saved with every model, so a result can always say exactly
what its model was trained on. `DataSpec.build()` turns it into arrays:

* all 60,000 training digits, or a deterministic subset of `n` drawn with `seed` (`data.subset_indices`);
* minus the training indices in `exclude` (unlearning: "the model trained without image i");
* plus canaries (`CanarySpec(glyph, count)`), each glyph rendered by `mnistmem.canaries` and appended
  `count` times, with label `canaries.CANARY_LABEL` (10, "not a digit").

Every row carries its source: the MNIST training index (>= 0), or `-(k + 1)` for canary k of `canaries`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from mnistmem import data
from mnistmem.canaries import CANARY_LABEL, render_canaries, resolve_glyph


class DataSpecError(ValueError):
    """A data spec that cannot be built; the message names the field and the fix."""


class TrainingData(NamedTuple):
    """A built training set: images uint8 [M,28,28], labels int64 [M], sources int64 [M]."""

    images: np.ndarray
    labels: np.ndarray
    sources: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class CanarySpec:
    """One canary: a glyph (name such as "copyright" or the character "©") appended `count` times."""

    glyph: str
    count: int

    def __post_init__(self) -> None:
        try:
            resolve_glyph(self.glyph)
        except ValueError as error:
            raise DataSpecError(f"canary glyph: {error}") from error
        if not isinstance(self.count, int) or isinstance(self.count, bool) or self.count < 0:
            raise DataSpecError(f"canary count for {self.glyph!r} must be an integer >= 0, got {self.count!r}")

    @classmethod
    def parse(cls, text: str) -> CanarySpec:
        """Parse "GLYPH:COUNT", e.g. "©:100" or "copyright:100" (the CLI's --canary)."""
        glyph, sep, count = text.rpartition(":")
        if not sep or not glyph or not count.strip().isdigit():
            raise DataSpecError(f"canary must look like GLYPH:COUNT (e.g. copyright:100 or ©:10), got {text!r}")
        return cls(glyph, int(count))


@dataclass(frozen=True)
class DataSpec:
    """Which training set: `n` digits drawn with `seed` (None = all 60k), minus `exclude`, plus `canaries`."""

    n: int | None = None
    seed: int = 0
    exclude: tuple[int, ...] = ()
    canaries: tuple[CanarySpec, ...] = ()
    #: "train" only in practice; kept explicit so a spec can never silently mean the test split.
    split: str = field(default="train")

    def __post_init__(self) -> None:
        total = data.SPLIT_SIZES["train"]
        if self.split != "train":
            raise DataSpecError(f"data spec split must be 'train' (test digits are for evaluation), got {self.split!r}")
        if self.n is not None and (not isinstance(self.n, int) or not 0 < self.n <= total):
            raise DataSpecError(f"data spec n must be None (all) or an integer in 1..{total}, got {self.n!r}")
        object.__setattr__(self, "exclude", tuple(int(i) for i in self.exclude))
        bad = [i for i in self.exclude if not 0 <= i < total]
        if bad:
            raise DataSpecError(f"data spec exclude: training indices must be in 0..{total - 1}, got {bad[:5]}")
        canaries = tuple(c if isinstance(c, CanarySpec) else CanarySpec(**c) for c in self.canaries)
        object.__setattr__(self, "canaries", canaries)

    def indices(self) -> np.ndarray:
        """The MNIST training indices in this set, in order (before canaries)."""
        chosen = data.subset_indices(self.n, self.seed)
        if self.exclude:
            try:
                chosen = data.without_indices(chosen, np.asarray(self.exclude))
            except ValueError as error:
                raise DataSpecError(f"data spec exclude: {error} (with n={self.n}, seed={self.seed})") from error
        return chosen

    def build(self) -> TrainingData:
        """The arrays this spec describes (MNIST is loaded and verified on first use)."""
        images, labels = data.load_mnist("train")
        chosen = self.indices()
        out = (images[chosen], labels[chosen], chosen.copy())
        if self.canaries:
            glyphs = [c.glyph for c in self.canaries]
            counts = [c.count for c in self.canaries]
            out = data.with_duplicates(*out, render_canaries(glyphs), [CANARY_LABEL] * len(glyphs), counts)
        return TrainingData(np.ascontiguousarray(out[0]), out[1].astype(np.int64), out[2].astype(np.int64))

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "seed": self.seed,
            "exclude": list(self.exclude),
            "canaries": [{"glyph": c.glyph, "count": c.count} for c in self.canaries],
            "split": self.split,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataSpec:
        unknown = set(values) - {"n", "seed", "exclude", "canaries", "split"}
        if unknown:
            raise DataSpecError(f"data spec has unknown fields {sorted(unknown)}; allowed: n, seed, exclude, canaries")
        values = dict(values)
        values["exclude"] = tuple(values.get("exclude", ()))
        values["canaries"] = tuple(CanarySpec(**c) for c in values.get("canaries", ()))
        return cls(**values)
