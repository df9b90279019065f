"""A trip to a lent GPU machine: what travels there, and how results come back.

The GPU machine (one H200, some sessions only) gets a copy of the git-tracked tree plus a few carried,
untracked paths — 64 MiB in all — runs one command of at most ten minutes, and returns at most 8 files of
at most 16 MiB each. It has Python 3.12 and CUDA torch but neither diffusers nor the MNIST package, and no
registry. So:

* `prepare` (here, on the CPU machine) makes the carried paths: the verified MNIST cache `data/mnist/`
  (compressed uint8; `mnistmem.data` checks its pinned SHA-256 when it loads it there), wheels of what the
  GPU machine lacks in `.trip/wheels/`, `.trip/bootstrap.sh`, which installs them into `.trip/site`
  offline, and `data/results/gpu/` as earlier trips left it. It checks that tree plus carry fits the
  64 MiB (tracked and carried bytes counted once each; a tracked file inside a carried folder is counted
  twice, which errs on the safe side) and returns the paths to carry.
* `pack` (there, at the end of a step) puts what the step made under `data/results/<scale>/` (files that came
  with the trip unchanged stay behind: `prepare` lists their SHA-256 in `.trip/carried.json`) into at most
  `MAX_ARCHIVES - 1` gzip'd tar archives of at most `MAX_ARCHIVE_BYTES`, 64 MiB in all, plus `trip.json` naming
  each archive's SHA-256 and files. Finished stages must fit. The state of a paused training (its `scratch/`)
  travels only if it fits too; one that does not is named in `trip.json` and started again by the next step, so
  such a training must finish within one step. Sizes that decide this: a paused training keeps its weights,
  their moving average and Adam's two moments, 16 bytes per parameter in float32 (the `gpu` plan's GAN: 29
  MiB), and a trip carries 64 MiB in all, most of it the tracked tree.
* `unpack` (back here) checks every archive against `trip.json` and refuses a mismatch, a missing archive
  or a member that would land outside the results folder; then extracts into `data/results/<scale>/`.

A step is `mnistmem reproduce --scale gpu --minutes M` between an unpack and a pack: a training that the
budget interrupts pauses at a checkpoint, travels back in the archives, and continues on the next trip
(`tests/test_trip.py` rehearses two such trips on the CPU and checks they end where one run ends).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from mnistmem.atomic import write_atomic
from mnistmem.integrity import sha256_file

TRIP_DIR = ".trip"
MAX_TREE_BYTES = 64 * 2**20
MAX_ARCHIVES = 8
MAX_ARCHIVE_BYTES = 16 * 2**20
#: what one call brings back in all (the device tool's limit), less a margin for trip.json
MAX_RETURN_BYTES = 64 * 2**20
RETURN_MARGIN = 2**20
MANIFEST = "trip.json"
#: in .trip/: the SHA-256 of every results file `prepare` carried, so `pack` brings back only what changed
CARRIED = "carried.json"
#: what the GPU machine lacks (see shared CONTEXT.md §3): pure Python or abi3 wheels, at the versions installed
#: here (the ones the tests ran with)
WHEELS = ("diffusers", "huggingface-hub", "safetensors")


def pinned_wheels() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return [f"{name}=={version(name)}" for name in WHEELS]
    except PackageNotFoundError as error:
        raise TripError(f"{error.name} is not installed here, so its version is unknown. Fix: make setup") from None


class TripError(RuntimeError):
    """A trip that cannot be made or an archive that cannot be trusted; the message names the file and fix."""


@dataclass
class Prepared:
    carry: list[str]
    tree_bytes: int
    carry_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.tree_bytes + self.carry_bytes


def tracked_bytes(repo: Path) -> int:
    """Bytes of the git-tracked files of the working tree (what the device tool copies)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout
    names = [name for name in listed.decode().split("\0") if name]
    return sum((repo / name).stat().st_size for name in names if (repo / name).is_file())


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def prepare(repo: Path, wheels: bool = True) -> Prepared:
    """Write the carried paths under `repo` and check the trip's size (see the module docstring)."""
    from mnistmem import data

    for split in data.SPLITS:
        data.load_mnist(split)  # converts and verifies the cache if needed
    trip = repo / TRIP_DIR
    (trip / "wheels").mkdir(parents=True, exist_ok=True)
    if wheels:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        command += ["--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux2014_x86_64"]
        command += ["-d", str(trip / "wheels"), *pinned_wheels()]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise TripError(f"pip could not fetch the wheels {WHEELS}: {done.stderr.strip().splitlines()[-1:]}")
    bootstrap = (
        "#!/usr/bin/env bash\n"
        "# Installs the carried wheels offline into .trip/site (run from the repository root on the GPU machine).\n"
        "set -euo pipefail\n"
        "python3 -m pip install --quiet --no-index --no-deps --target .trip/site .trip/wheels/*.whl\n"
    )
    (trip / "bootstrap.sh").write_text(bootstrap)
    carry = [TRIP_DIR, "data/mnist"]
    earlier = repo / "data" / "results" / "gpu"
    hashes = {}
    if earlier.is_dir():  # what earlier trips brought back: the step continues it, and packs only what changed
        carry.append("data/results/gpu")
        hashes = {p.relative_to(earlier).as_posix(): sha256_file(p) for p in sorted(earlier.rglob("*")) if p.is_file()}
    (trip / CARRIED).write_text(json.dumps({"gpu": hashes}))
    prepared = Prepared(carry, tracked_bytes(repo), sum(folder_bytes(repo / path) for path in carry))
    if prepared.total_bytes > MAX_TREE_BYTES:
        largest = ""
        if earlier.is_dir():  # name what earlier trips brought back that weighs most: usually trained models
            weights = {p: folder_bytes(p) for p in earlier.glob("*/*") if p.is_dir()}
            stages = sorted(weights, key=weights.__getitem__, reverse=True)[:3]
            largest = "; the largest carried stages: " + ", ".join(
                f"{p.relative_to(repo).as_posix()} ({weights[p] / 2**20:.1f} MiB)" for p in stages
            )
        raise TripError(
            f"the trip holds {prepared.total_bytes / 2**20:.1f} MiB (tracked {prepared.tree_bytes / 2**20:.1f} + "
            f"carried {prepared.carry_bytes / 2**20:.1f}){largest}; the device takes "
            f"{MAX_TREE_BYTES / 2**20:.0f} MiB. Fix: shrink git-tracked data/ (its budget is 40 MB) or carry less"
        )
    return prepared


#: the device tool stops a command after 10 minutes and then brings back only what lies in $OUT, so the step's
#: parts are bounded to end well before: bootstrap (seconds), the throughput measurement (`bench/gpu_plan.py`,
#: under a minute on a GPU), `reproduce` killed at its budget plus `GRACE_SECONDS` (a stage that is not a training
#: does not pause; a kill leaves finished stages intact, as the runner's writes are atomic), then `pack`
COMMAND_LIMIT_SECONDS = 600
MEASURE_SECONDS = 90
GRACE_SECONDS = 60


def step_command(scale: str = "gpu", minutes: float = 6.0, measure: bool = True) -> str:
    """The one command a loan runs: install the wheels, measure the device's throughput at the plan's sizes,
    step within the budget, pack into $OUT.

    What earlier trips brought back was unpacked here into `data/results/<scale>/` and travels as a carried
    path, so the step continues from it. `python3`, not `python`: on the GPU machine a plain `python3` is the
    interpreter that holds its torch (the device tool's KINDS.md). `timeout` bounds the measurement and the
    step, so `pack` runs before the tool's 10-minute limit whatever a stage does."""
    hard = int(minutes * 60 + GRACE_SECONDS)
    if 30 + (MEASURE_SECONDS if measure else 0) + hard + 60 > COMMAND_LIMIT_SECONDS:
        raise TripError(f"a step of {minutes:g} minutes cannot end and pack within the device's 10 minutes")
    measuring = (
        f"timeout -k 10 {MEASURE_SECONDS} python3 bench/gpu_plan.py --out data/results/{scale}/throughput; "
        if measure
        else ""
    )
    return (
        "bash .trip/bootstrap.sh && export PYTHONPATH=src:.trip/site && "
        + measuring
        + f"timeout -k 20 {hard} python3 -m mnistmem reproduce --scale {scale} --minutes {minutes:g} --no-progress; "
        f'python3 -m mnistmem trip pack "$OUT" --scale {scale}'
    )


# ------------------------------------------------------------------------------------------ pack / unpack
@dataclass
class Packed:
    """What `pack` wrote, and what it could not bring back: `left_behind` maps the scratch folder of each paused
    training whose state does not fit the trip's return to its size in bytes."""

    written: list[Path]
    left_behind: dict[str, int]
    unchanged: int


def carried_hashes(repo: Path, scale: str) -> dict[str, str]:
    """The SHA-256 of each file under `data/results/<scale>/` as `prepare` carried it (relative paths), read from
    `.trip/carried.json`; empty when nothing was carried."""
    path = repo / TRIP_DIR / CARRIED
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text()).get(scale, {})
    except ValueError as error:
        raise TripError(f"{path} is not readable ({error}). Fix: run mnistmem trip prepare again") from error


def _archives(files: list[Path]) -> list[list[Path]] | None:
    """`files` in order, cut into archives of at most MAX_ARCHIVE_BYTES (counted before compression), or None when
    one file is larger than an archive, more than MAX_ARCHIVES - 1 archives are needed (one file back is
    trip.json), or they hold more than a call brings back (MAX_RETURN_BYTES)."""
    groups: list[list[Path]] = [[]]
    sizes = [0]
    for path in files:
        size = path.stat().st_size
        if size > MAX_ARCHIVE_BYTES:
            return None
        if sizes[-1] + size > MAX_ARCHIVE_BYTES:
            groups.append([])
            sizes.append(0)
        groups[-1].append(path)
        sizes[-1] += size
    if len(groups) > MAX_ARCHIVES - 1 or sum(sizes) > MAX_RETURN_BYTES - RETURN_MARGIN:
        return None
    return groups


def pack(results_root: Path, scale: str, out: Path, carried: dict[str, str] | None = None) -> Packed:
    """Archive what a step made under `results_root/<scale>/` into `out` (see the module docstring).

    Files that arrived with the trip unchanged (`carried`: relative path -> SHA-256) stay behind: they are
    already at home. Finished stages must all fit, or nothing is packed and the error says so. The state of a
    paused training (a stage's `scratch/` folder) travels whole or not at all, smallest first, while it fits; one
    left behind is named in `trip.json` and the returned `Packed`, and the next step starts that training again."""
    source = results_root / scale
    if not source.is_dir():
        raise TripError(f"nothing to pack: {source} does not exist. Fix: run a step first")
    carried = carried or {}
    finished: list[Path] = []
    paused: dict[str, list[Path]] = {}  # scratch folder -> its files
    unchanged = 0
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.name.endswith(".tmp") or path.name == ".lock":
            continue
        parts = path.relative_to(source).parts
        relative = "/".join(parts)
        if relative in carried and carried[relative] == sha256_file(path):  # hashed only where it was carried
            unchanged += 1
        elif "scratch" in parts:
            paused.setdefault("/".join(parts[: parts.index("scratch") + 1]), []).append(path)
        else:
            finished.append(path)
    if _archives(finished) is None:
        largest = max(finished, key=lambda p: p.stat().st_size)
        total = sum(p.stat().st_size for p in finished)
        raise TripError(
            f"the finished stages under {source} hold {total / 2**20:.1f} MiB (largest file {largest}, "
            f"{largest.stat().st_size / 2**20:.1f} MiB); a trip brings back {MAX_ARCHIVES - 1} archives of "
            f"{MAX_ARCHIVE_BYTES / 2**20:.0f} MiB, {MAX_RETURN_BYTES / 2**20:.0f} MiB in all. "
            "Fix: plan fewer stages per step (a smaller --minutes) or smaller outputs"
        )
    chosen, left_behind = list(finished), {}
    sizes = {folder: sum(p.stat().st_size for p in group) for folder, group in paused.items()}
    for folder in sorted(paused, key=sizes.__getitem__):
        if _archives(sorted(chosen + paused[folder])) is None:
            left_behind[folder] = sizes[folder]
        else:
            chosen += paused[folder]
    groups = _archives(sorted(chosen))
    assert groups is not None  # every addition above was checked
    out.mkdir(parents=True, exist_ok=True)
    written, entries = [], []
    for number, group in enumerate(g for g in groups if g):
        archive = out / f"results-{scale}-{number}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in group:
                tar.add(path, arcname=str(path.relative_to(source)))
        entries.append(
            {
                "archive": archive.name,
                "sha256": sha256_file(archive),
                "files": [str(p.relative_to(source)) for p in group],
            }
        )
        written.append(archive)
    manifest = out / MANIFEST
    record = {"scale": scale, "archives": entries, "left_behind": left_behind, "unchanged": unchanged}
    write_atomic(manifest, lambda handle: handle.write(json.dumps(record).encode()))
    return Packed([*written, manifest], left_behind, unchanged)


class Unpacked(NamedTuple):
    """What `unpack` extracted, and the paused trainings' states the trip left on the GPU machine (`Packed`)."""

    files: int
    left_behind: dict[str, int]


def unpack(folder: Path, results_root: Path, scale: str) -> Unpacked:
    """Verify and extract a trip's archives from `folder` into `results_root/<scale>/`."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise TripError(f"{manifest_path} is missing: nothing came back from the trip, or not all of it")
    try:
        manifest = json.loads(manifest_path.read_text())
        entries, came_as = manifest["archives"], manifest["scale"]
    except (ValueError, KeyError, TypeError) as error:
        raise TripError(f"{manifest_path} is not a trip manifest ({error}). Fix: rerun the step") from error
    if came_as != scale:
        raise TripError(f"{folder} holds {came_as!r} results, not {scale!r}. Fix: unpack with --scale {came_as}")
    target = results_root / scale
    for entry in entries:  # every archive checked before anything is extracted
        archive = folder / entry["archive"]
        if not archive.is_file():
            raise TripError(f"{archive} is missing (named in {manifest_path}). Fix: fetch every file of the trip")
        found = sha256_file(archive)
        if found != entry["sha256"]:
            raise TripError(
                f"{archive} has SHA-256 {found}, {manifest_path} says {entry['sha256']}: refused. Fix: rerun the step"
            )
    count = 0
    target.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        with tarfile.open(folder / entry["archive"], "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                destination = (target / member.name).resolve()
                if not member.isfile() or not str(destination).startswith(str(target.resolve()) + os.sep):
                    raise TripError(f"{folder / entry['archive']} holds {member.name!r}, outside a results folder")
            tar.extractall(target, members=members, filter="data")
            count += len(members)
    return Unpacked(count, manifest.get("left_behind", {}))
