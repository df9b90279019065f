"""Training sets described, not hand-built: which MNIST rows, minus which, plus which canaries how often.

A `DataSpec` is small, JSON-serialisable and saved with every model, so a result can always say exactly
what its model was trained on. `DataSpec.build()` turns it into arrays:

* all 60,000 training digits, or a deterministic subset of `n` drawn with `seed` (`data.subset_indices`);
* plus the training indices in `extra` (digits outside the subset, e.g. a relearning attack's handful);
* minus the training indices in `exclude` (unlearning: "the model trained without image i");
* plus canaries (`CanarySpec(glyph, count)`), each glyph rendered by `mnistmem.canaries` and appended
  `count` times, with label `canaries.CANARY_LABEL` (10, "not a digit");
* and, with `only`, just the rows of the listed sources (a SISA shard's slices, or one item's rows as the
  forget set of NegGrad): a filter on the built rows that keeps their order.

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
    """Which training set: `n` digits drawn with `seed` (None = all 60k), minus `exclude`, plus `canaries`,
    restricted to the rows of the sources in `only` (None = every row). `part` (k, m): only the k-th of m
    disjoint parts of the `n` digits (a seeded shuffle cut into m blocks of nearly equal size), so that two
    models trained on parts (0, 2) and (1, 2) share no training digit (Kadkhodaie et al., ICLR 2024).
    `extra`: MNIST training indices added to the drawn digits (each must lie outside them), e.g. the handful of
    digits near a forgotten item that a relearning attack trains on."""

    n: int | None = None
    seed: int = 0
    exclude: tuple[int, ...] = ()
    canaries: tuple[CanarySpec, ...] = ()
    #: "train" only in practice; kept explicit so a spec can never silently mean the test split.
    split: str = field(default="train")
    only: tuple[int, ...] | None = None
    part: tuple[int, int] | None = None
    extra: tuple[int, ...] = ()

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
        if isinstance(self.extra, (str, bytes)) or not all(_is_int(v) for v in self.extra):
            raise DataSpecError(f"data spec extra: a list of MNIST training indices, got {self.extra!r}")
        extra = tuple(sorted({int(v) for v in self.extra}))
        if len(extra) != len(self.extra) or any(not 0 <= i < total for i in extra):
            raise DataSpecError(
                f"data spec extra: distinct training indices in 0..{total - 1}, got {list(self.extra)[:5]}"
            )
        object.__setattr__(self, "extra", extra)
        if self.only is not None:
            if isinstance(self.only, (str, bytes)) or not all(_is_int(v) for v in self.only):
                raise DataSpecError(f"data spec only: a list of row sources (integers), got {self.only!r}")
            only = tuple(sorted({int(v) for v in self.only}))
            if not only:
                raise DataSpecError("data spec only: an empty list selects no rows; leave it out to keep every row")
            object.__setattr__(self, "only", only)
        if self.part is not None:
            part = tuple(self.part) if isinstance(self.part, (list, tuple)) else ()
            size = total if self.n is None else self.n
            if (
                len(part) != 2
                or not all(_is_int(v) for v in part)
                or not (0 <= part[0] < part[1] <= size and part[1] >= 2)
            ):
                raise DataSpecError(
                    f"data spec part must be [k, m] with 0 <= k < m <= n and m >= 2 (the k-th of m disjoint parts), "
                    f"got {self.part!r}"
                )
            object.__setattr__(self, "part", (int(part[0]), int(part[1])))

    def indices(self) -> np.ndarray:
        """The MNIST training indices in this set, in order (before canaries)."""
        chosen = data.subset_indices(self.n, self.seed)
        if self.part is not None:
            k, m = self.part
            shuffled = np.random.default_rng([self.seed, m]).permutation(chosen)
            chosen = np.sort(np.array_split(shuffled, m)[k])
        if self.extra:
            clash = np.intersect1d(chosen, np.asarray(self.extra, dtype=np.int64))
            if clash.size:
                raise DataSpecError(
                    f"data spec extra: indices {clash[:5].tolist()} are already among the drawn digits "
                    f"(n={self.n}, seed={self.seed}); add only digits outside them"
                )
            chosen = np.sort(np.concatenate([chosen, np.asarray(self.extra, dtype=np.int64)]))
        if self.exclude:
            try:
                chosen = data.without_indices(chosen, np.asarray(self.exclude))
            except ValueError as error:
                raise DataSpecError(f"data spec exclude: {error} (with n={self.n}, seed={self.seed})") from error
        if self.only is not None:
            self._check_only(chosen)
            chosen = chosen[np.isin(chosen, np.asarray(self.only, dtype=np.int64))]
        return chosen

    def _check_only(self, digits: np.ndarray) -> None:
        """Every source in `only` must be a row of the spec without it: a digit it holds or a planted canary."""
        held = set(digits.tolist()) | {-(k + 1) for k, c in enumerate(self.canaries) if c.count > 0}
        missing = sorted(set(self.only) - held)
        if missing:
            raise DataSpecError(
                f"data spec only: sources {missing[:5]} are not rows of this spec (n={self.n}, seed={self.seed}, "
                f"{len(self.canaries)} canaries); list only sources the spec holds"
            )

    def build(self) -> TrainingData:
        """The arrays this spec describes (MNIST is loaded and verified on first use)."""
        images, labels = data.load_mnist("train")
        chosen = self.indices()
        out = (images[chosen], labels[chosen], chosen.copy())
        canaries = [
            (k, c)
            for k, c in enumerate(self.canaries)
            if self.only is None or -(k + 1) in self.only  # a canary left out keeps its source id -(k + 1)
        ]
        if canaries:
            glyphs = [c.glyph for _, c in canaries]
            counts = [c.count for _, c in canaries]
            out = data.with_duplicates(*out, render_canaries(glyphs), [CANARY_LABEL] * len(glyphs), counts)
            sources = out[2].copy()
            planted = sources < 0  # with_duplicates numbers the planted glyphs -1, -2, ... in the order given
            sources[planted] = np.asarray([-(k + 1) for k, _ in canaries])[-sources[planted] - 1]
            out = (out[0], out[1], sources)
        return TrainingData(np.ascontiguousarray(out[0]), out[1].astype(np.int64), out[2].astype(np.int64))

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON; `only` appears only when set, so specs written before it existed read the same."""
        out: dict[str, Any] = {
            "n": self.n,
            "seed": self.seed,
            "exclude": list(self.exclude),
            "canaries": [{"glyph": c.glyph, "count": c.count} for c in self.canaries],
            "split": self.split,
        }
        if self.only is not None:
            out["only"] = list(self.only)
        if self.part is not None:
            out["part"] = list(self.part)
        if self.extra:
            out["extra"] = list(self.extra)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataSpec:
        unknown = set(values) - {"n", "seed", "exclude", "canaries", "split", "only", "part", "extra"}
        if unknown:
            raise DataSpecError(
                f"data spec has unknown fields {sorted(unknown)}; allowed: n, seed, exclude, canaries, only, part, "
                f"extra"
            )
        values = dict(values)
        values["exclude"] = tuple(values.get("exclude", ()))
        values["canaries"] = tuple(CanarySpec(**c) for c in values.get("canaries", ()))
        if values.get("only") is not None:
            values["only"] = tuple(values["only"])
        values["extra"] = tuple(values.get("extra", ()))
        return cls(**values)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
