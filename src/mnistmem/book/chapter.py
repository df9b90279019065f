"""The first code cell of every chapter: which results to read, or whether to recompute them.

`setup(["main"], rerun=False)` loads the precomputed results of the named experiments (the largest scale at
which all of them are present) and says which scale and hardware produced them. With `rerun=True` (or
`MNISTMEM_RERUN=1`) it runs those experiments first, on this machine's best device, at the scale
`MNISTMEM_RERUN_SCALE` (default "cpu": about ten minutes per chapter on a free Colab GPU), then reads what it
produced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from mnistmem import results
from mnistmem.book.display import in_book_build

RERUN_ENV = "MNISTMEM_RERUN"
RERUN_SCALE_ENV = "MNISTMEM_RERUN_SCALE"


@dataclass
class Chapter:
    """The results a chapter reads, by experiment name."""

    results: dict[str, results.ExperimentResult] = field(default_factory=dict)

    def __getitem__(self, experiment: str) -> results.ExperimentResult:
        try:
            return self.results[experiment]
        except KeyError:
            raise KeyError(f"this chapter loaded {sorted(self.results)}, not {experiment!r}") from None

    @property
    def scales(self) -> dict[str, str]:
        return {name: result.scale for name, result in self.results.items()}


def setup(experiments: list[str], rerun: bool = False, verbose: bool | None = None) -> Chapter:
    """Load (or, with `rerun`, first recompute) the results of `experiments`."""
    rerun = rerun or os.environ.get(RERUN_ENV) == "1"
    verbose = (not in_book_build()) if verbose is None else verbose
    if rerun:
        from mnistmem import experiments as registry
        from mnistmem.devices import pick_device

        scale = os.environ.get(RERUN_SCALE_ENV, "cpu")
        pick_device(verbose=True)
        for name in registry.REGISTRY:  # registry order: later experiments read earlier ones
            if name in experiments or _needed_by(name, experiments):
                registry.run_experiment(registry.get(name), scale)
        os.environ[results.SCALE_ENV] = scale
    scale = common_scale(experiments)
    chapter = Chapter({name: results.load(name, scale) for name in experiments})
    if verbose:
        for name, result in chapter.results.items():
            from mnistmem.book.common import device_text

            hardware = device_text(result)
            print(f"{name}: {result.scale} scale, computed on {hardware}, {result.wall_seconds / 60:.1f} min")
    return chapter


def common_scale(experiments: list[str]) -> str | None:
    """The largest scale at which every one of `experiments` has results, so that a chapter compares like with
    like: once a GPU trip has brought back only some experiments at the `gpu` scale, a chapter that also reads
    others stays at the `cpu` scale for all of them. None where `$MNISTMEM_SCALE` chooses, or where no scale holds
    them all (then each loads its largest, and a missing one says how to produce it)."""
    if os.environ.get(results.SCALE_ENV):
        return None
    shared = set(results.SCALES)
    for name in experiments:
        shared &= set(results.available_scales(name))
    return max(shared, key=results.SCALES.index) if shared else None


def _needed_by(name: str, experiments: list[str]) -> bool:
    from mnistmem import experiments as registry

    return any(name in getattr(registry.get(e), "requires", ()) for e in experiments)
