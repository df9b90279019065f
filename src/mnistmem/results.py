"""Reading precomputed results: the only way the book gets its numbers.

`load("main")` returns the results of one experiment at the largest scale present (gpu > cpu > smoke),
or at the scale named by the argument or by `$MNISTMEM_SCALE`. A result that is missing, incomplete, of
another schema, or not what its stage recorded (`mnistmem.integrity`: every stage record is sealed and
every file checked against its SHA-256 when it is opened) raises `ResultError` with the command that
produces it.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from mnistmem import integrity
from mnistmem.paths import results_dir

SCALES = ("smoke", "cpu", "gpu")  # smallest first

# The stored layout, owned here: the runner and the stages write these names, the book reads them.
#: a finished stage's sealed record, written last (see `mnistmem.integrity`)
STAGE_FILE = "stage.json"
#: a stage's large intermediate files (training checkpoints): kept for resuming, never committed or verified
SCRATCH = "scratch"
#: a stage's generated images with their per-sample seeds (`save_samples` / `load_samples`)
SAMPLES_FILE = "samples.npz"
#: a score stage's per-sample table (`mnistmem.tables`)
TABLE_FILE = "table.npz"
#: a subset model's samples judged against its own training set
OWN_TABLE_FILE = "table_own.npz"
#: a train stage's weights (a checkpoint without the optimizer's state)
MODEL_DIR = "model"
#: (path, sizes and modification times) already checked against their recorded hashes in this process
_VERIFIED: set = set()
SCALE_ENV = "MNISTMEM_SCALE"
MANIFEST_SCHEMA = 1


class ResultError(FileNotFoundError):
    """A result the caller asked for is missing or unreadable; the message names the command to run."""


def save_samples(path, images: np.ndarray, seeds: np.ndarray, **extra: np.ndarray) -> None:
    """The one samples format: compressed uint8 images [N,28,28] with their per-sample seeds (atomic)."""
    from mnistmem.atomic import write_atomic

    write_atomic(path, lambda handle: np.savez_compressed(handle, images=images, seeds=seeds, **extra))


def load_samples(path) -> tuple[np.ndarray, np.ndarray]:
    """Images and seeds of a samples file written by `save_samples` (nothing unpickled)."""
    with np.load(path, allow_pickle=False) as archive:
        return archive["images"], archive["seeds"]


def reproduce_command(experiment: str, scale: str) -> str:
    return f"mnistmem reproduce --scale {scale} --only {experiment}"


def available_scales(experiment: str, root: Path | None = None) -> list[str]:
    """Scales at which `experiment` has a manifest, smallest first."""
    base = root or results_dir()
    return [s for s in SCALES if (base / s / experiment / "manifest.json").exists()]


def choose_scale(experiment: str, scale: str | None = None, root: Path | None = None) -> str:
    """The requested scale, else `$MNISTMEM_SCALE`, else the largest one present."""
    scale = scale or os.environ.get(SCALE_ENV) or None
    if scale is not None:
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        return scale
    present = available_scales(experiment, root)
    if not present:
        raise ResultError(
            f"no results for experiment {experiment!r} under {root or results_dir()}. "
            f"Produce them with: {reproduce_command(experiment, 'smoke')} (minutes) or --scale cpu (hours)"
        )
    return present[-1]


class Samples(NamedTuple):
    """Generated images (uint8 [N,28,28]) and the seed of each (int64 [N]): seed i regenerates image i.
    A named pair: `images, seeds = result.samples(stage)` works too."""

    images: np.ndarray
    seeds: np.ndarray


@dataclass
class ExperimentResult:
    """One experiment's results at one scale: its manifest and the files of its stages."""

    experiment: str
    scale: str
    dir: Path
    manifest: dict[str, Any]

    def _fix(self) -> str:
        return f"Produce it with: {reproduce_command(self.experiment, self.scale)}"

    def stage(self, name: str) -> dict[str, Any]:
        """The manifest record of stage `name` (config, summary, wall time)."""
        try:
            return self.manifest["stages"][name]
        except KeyError:
            raise ResultError(
                f"{self.dir / 'manifest.json'} has no stage {name!r} (stages: {sorted(self.manifest['stages'])}). "
                + self._fix()
            ) from None

    def summary(self, name: str) -> dict[str, Any]:
        return self.stage(name)["summary"]

    def path(self, stage: str, filename: str) -> Path:
        """A file (or folder) written by `stage`, verified against the SHA-256 its stage recorded
        (`mnistmem.integrity`); an error naming the command if it is missing, altered or unrecorded."""
        record = self.stage(stage)
        folder = self.dir / record["folder"]
        path = folder / filename
        if not path.exists():
            raise ResultError(f"result file {path} is missing. {self._fix()}")
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        key = (str(path), tuple((str(p), (st := p.stat()).st_size, st.st_mtime_ns) for p in files))
        if key not in _VERIFIED:
            try:
                integrity.verify_files(folder, record.get("files") or {}, path, self._fix(), skip=(STAGE_FILE, SCRATCH))
            except integrity.IntegrityError as error:
                raise ResultError(str(error)) from None
            _VERIFIED.add(key)
        return path

    def arrays(self, stage: str, filename: str) -> dict[str, np.ndarray]:
        """All arrays of an `.npz` result file (never unpickled)."""
        path = self.path(stage, filename)
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise ResultError(
                f"result file {path} is corrupt ({error}). Delete it and {self._fix()[0].lower()}{self._fix()[1:]}"
            ) from error

    def samples(self, stage: str, filename: str = SAMPLES_FILE) -> Samples:
        """A stage's generated images and their per-sample seeds (verified, nothing unpickled)."""
        arrays = self.arrays(stage, filename)
        if "images" not in arrays or "seeds" not in arrays:
            raise ResultError(f"result file {self.path(stage, filename)} holds no samples. {self._fix()}")
        return Samples(arrays["images"], arrays["seeds"])

    def table(self, stage: str, filename: str = TABLE_FILE):
        """A score stage's per-sample table (`mnistmem.tables.SampleTable`), verified."""
        from mnistmem import tables

        path = self.path(stage, filename)
        try:
            return tables.load_table(path)
        except tables.TableFormatError as error:
            raise ResultError(f"{error}. {self._fix()}") from error

    def json(self, stage: str, filename: str) -> Any:
        path = self.path(stage, filename)
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ResultError(f"result file {path} is not valid JSON ({error}). {self._fix()}") from error

    def sampler_size(self, train_stage: str) -> tuple[int, int]:
        """(parameters, bits) of the sampling network a training stage trained (or a model stage holds: any
        stage whose config names its `train` config), in 32-bit floats. They follow from the
        architecture its record names (family and size options), not from trained values, so no weights are
        read: the committed results keep the weights of only some models (`models.sampler_size`)."""
        from mnistmem.models import sampler_size

        config = self.stage(train_stage)["config"]["train"]
        return sampler_size(config["model"], config["model_kwargs"])

    def sampler_steps(self, sample_stage: str) -> int:
        """How many denoising steps a diffusion sample stage took: its recorded sampler options, else that
        sampler's default step count (`models.diffusion.SAMPLERS`)."""
        from mnistmem.models.diffusion import SAMPLERS

        options = self.stage(sample_stage)["config"].get("sampler", {})
        return int(options.get("steps") or SAMPLERS[options.get("sampler", "dpm")][1])

    def sibling(self, experiment: str) -> ExperimentResult:
        """Another experiment's results at the same scale and under the same root."""
        return load(experiment, self.scale, root=self.dir.parent.parent)

    @property
    def wall_seconds(self) -> float:
        return float(self.manifest.get("wall_seconds_total", 0.0))


def load(experiment: str, scale: str | None = None, root: Path | None = None) -> ExperimentResult:
    """The results of `experiment` (see module docstring for how the scale is chosen)."""
    scale = choose_scale(experiment, scale, root)
    folder = (root or results_dir()) / scale / experiment
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise ResultError(
            f"no results for {experiment!r} at scale {scale!r} ({manifest_path} is missing). "
            f"Produce them with: {reproduce_command(experiment, scale)}"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as error:
        raise ResultError(
            f"{manifest_path} is not valid JSON ({error}). Rerun {reproduce_command(experiment, scale)}"
        ) from error
    for name, record in manifest.get("stages", {}).items():
        try:
            integrity.check_seal(record, str(manifest_path), f"Rerun {reproduce_command(experiment, scale)}")
        except integrity.IntegrityError as error:
            raise ResultError(str(error)) from None
        except (TypeError, AttributeError):
            raise ResultError(
                f"{manifest_path}: stage {name!r} is not a record. Rerun {reproduce_command(experiment, scale)}"
            ) from None
    if manifest.get("schema") != MANIFEST_SCHEMA:
        raise ResultError(
            f"{manifest_path} has schema {manifest.get('schema')!r}, this code reads schema {MANIFEST_SCHEMA}. "
            f"Rerun {reproduce_command(experiment, scale)}"
        )
    return ExperimentResult(experiment=experiment, scale=scale, dir=folder, manifest=manifest)
