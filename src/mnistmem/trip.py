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
* `pack` (there, at the end of a step) puts everything under `data/results/<scale>/` — finished stages and
  the scratch checkpoints of a paused training alike — into at most `MAX_ARCHIVES - 1` gzip'd tar archives
  of at most `MAX_ARCHIVE_BYTES`, plus `trip.json` naming each archive's SHA-256 and files.
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

from mnistmem.atomic import write_atomic
from mnistmem.integrity import sha256_file

TRIP_DIR = ".trip"
MAX_TREE_BYTES = 64 * 2**20
MAX_ARCHIVES = 8
MAX_ARCHIVE_BYTES = 16 * 2**20
MANIFEST = "trip.json"
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
        "python -m pip install --quiet --no-index --no-deps --target .trip/site .trip/wheels/*.whl\n"
    )
    (trip / "bootstrap.sh").write_text(bootstrap)
    carry = [TRIP_DIR, "data/mnist"]
    if (repo / "data" / "results" / "gpu").is_dir():  # what earlier trips brought back: the step continues it
        carry.append("data/results/gpu")
    prepared = Prepared(carry, tracked_bytes(repo), sum(folder_bytes(repo / path) for path in carry))
    if prepared.total_bytes > MAX_TREE_BYTES:
        raise TripError(
            f"the trip holds {prepared.total_bytes / 2**20:.1f} MiB (tracked {prepared.tree_bytes / 2**20:.1f} + "
            f"carried {prepared.carry_bytes / 2**20:.1f}); the device takes {MAX_TREE_BYTES / 2**20:.0f} MiB. "
            "Fix: shrink git-tracked data/ (its budget is 40 MB) or carry less"
        )
    return prepared


def step_command(scale: str = "gpu", minutes: float = 7.0) -> str:
    """The one command a loan runs: install the wheels, step within the budget, pack into $OUT.

    What earlier trips brought back was unpacked here into `data/results/<scale>/` and travels as a carried
    path, so the step continues from it (a paused training from its checkpoint)."""
    return (
        "bash .trip/bootstrap.sh && export PYTHONPATH=src:.trip/site && "
        f"python -m mnistmem reproduce --scale {scale} --minutes {minutes:g} --no-progress; "
        f'python -m mnistmem trip pack "$OUT" --scale {scale}'
    )


# ------------------------------------------------------------------------------------------ pack / unpack
def pack(results_root: Path, scale: str, out: Path) -> list[Path]:
    """Archive `results_root/<scale>/` into `out` (see the module docstring); return the files written."""
    source = results_root / scale
    if not source.is_dir():
        raise TripError(f"nothing to pack: {source} does not exist. Fix: run a step first")
    files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.endswith(".tmp") and p.name != ".lock")
    groups: list[list[Path]] = [[]]
    sizes = [0]
    for path in files:
        size = path.stat().st_size
        if size > MAX_ARCHIVE_BYTES:
            raise TripError(f"{path} is {size / 2**20:.1f} MiB; one archive holds at most 16 MiB")
        if sizes[-1] + size > MAX_ARCHIVE_BYTES:
            groups.append([])
            sizes.append(0)
        groups[-1].append(path)
        sizes[-1] += size
    if len(groups) > MAX_ARCHIVES - 1:
        raise TripError(f"{source} needs {len(groups)} archives of 16 MiB; a trip brings back {MAX_ARCHIVES - 1}")
    out.mkdir(parents=True, exist_ok=True)
    written, entries = [], []
    for number, group in enumerate(groups):
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
    write_atomic(manifest, lambda handle: handle.write(json.dumps({"scale": scale, "archives": entries}).encode()))
    return [*written, manifest]


def unpack(folder: Path, results_root: Path, scale: str) -> int:
    """Verify and extract a trip's archives from `folder` into `results_root/<scale>/`; return files extracted."""
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
    return count
