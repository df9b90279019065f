"""Fixed pseudo-random numbers from integers: the one hash that SISA's shard assignment and the mixture
sampler's choice of shard model both use, so that either is a pure function of a row's source or a sample's
seed (no random state to carry, nothing that differs between runs or machines)."""

from __future__ import annotations

import numpy as np

_MIX = np.uint64(0x9E3779B97F4A7C15)


def hash01(values: np.ndarray, salt: int) -> np.ndarray:
    """A fixed pseudo-random number in [0, 1) for each int64 value (the splitmix64 finaliser, salted)."""
    with np.errstate(over="ignore"):
        z = np.asarray(values, dtype=np.int64).astype(np.uint64) + np.uint64(salt) * _MIX
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)
