"""Running experiments as resumable stages, with provenance.

An experiment is a list of `Stage`s (train, sample, search, score, ...). Each stage's output folder is
named after a hash of its configuration and of the stages it depends on, so:
- a rerun skips every stage whose folder is complete (it holds `stage.json`, written last, atomically);
- a killed run resumes at the first unfinished stage (and a training stage resumes from its own
  checkpoints inside its folder);
- a changed configuration reruns exactly the stages it affects and those that depend on them.
When an experiment finishes, folders of configurations no longer in the plan are removed and
`manifest.json` records config, commit, package versions, hardware, seeds, sample counts and wall times.
Each stage's record also names the machine it ran on (CPU model, kind and flags, device, threads): the
manifest's top-level `hardware` is that of the latest run, which may have skipped stages finished elsewhere.

Layout: `data/results/<scale>/<experiment>/manifest.json` and `.../<experiment>/<stage>-<hash>/`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnistmem import integrity, provenance
from mnistmem.atomic import exclusive, write_json
from mnistmem.paths import results_dir
from mnistmem.results import SCRATCH, STAGE_FILE

MANIFEST_SCHEMA = 1
#: In a stage's scratch folder: the wall seconds of each sitting that paused at a time budget (`--minutes`).
SITTINGS_FILE = "sittings.json"
#: Stage folders are `<stage name>-<12 hex digits>`; a stage's `scratch/` subfolder is never committed.
_STAGE_FOLDER = re.compile(r"^[A-Za-z0-9_]+-[0-9a-f]{12}$")


class PlanError(ValueError):
    """Stages asked for that the experiment's plan does not have."""


@dataclass
class Stage:
    """One step of an experiment. `run(ctx)` writes files into `ctx.dir` and returns a JSON-able summary."""

    name: str
    config: dict[str, Any]
    run: Callable[[StageContext], dict[str, Any]]
    after: tuple[str, ...] = ()


@dataclass
class StageContext:
    """What a running stage can see: its folder, its config, and the folders/summaries of earlier stages."""

    dir: Path
    config: dict[str, Any]
    scale: str
    root: Path
    inputs: dict[str, Path] = field(default_factory=dict)
    summaries: dict[str, dict] = field(default_factory=dict)
    progress: bool = True
    #: a `time.monotonic()` value: a training stage pauses at a checkpoint once past it (None = no budget)
    deadline: float | None = None

    def input(self, stage: str) -> Path:
        return self.inputs[stage]

    def upstream(self, experiment: str):
        """The results of an experiment this one `requires`, at the same scale."""
        from mnistmem import results

        return results.load(experiment, self.scale, root=self.root)

    @property
    def scratch(self) -> Path:
        """A folder for large intermediate files (checkpoints): kept for resuming, never committed."""
        path = self.dir / SCRATCH
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class Experiment:
    """A named question with a plan of stages for each scale."""

    name: str
    question: str
    plan: Callable[[str], list[Stage]]  # scale -> stages, in an order that respects `after`
    requires: tuple[str, ...] = ()  # experiments whose results (at the same scale) this one reads


def config_hash(config: dict[str, Any], parents: list[str]) -> str:
    """A short, stable hash of a stage's configuration and its parents' hashes."""
    text = json.dumps({"config": config, "parents": parents}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def experiment_dir(scale: str, experiment: str, root: Path | None = None) -> Path:
    return (root or results_dir()) / scale / experiment


class ExperimentBusyError(RuntimeError):
    """Another process is running the same experiment into the same folder."""


def run_experiment(
    experiment: Experiment,
    scale: str,
    root: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    only: set[str] | None = None,
    deadline: float | None = None,
    rerun: tuple[str, ...] = (),
) -> dict[str, Any] | None:
    """Run (or resume) every stage of `experiment` at `scale`; write and return its manifest.

    `rerun`: glob patterns (`fnmatch`) of finished stages to run again in place, with the same configuration
    and hash (so nothing downstream is invalidated): for new code that computes the same stage better, such as
    a new copy criterion scored on the same samples. Only the matching stages run.

    `only`: run just these stages (the stages they read must be finished); the manifest is written, and
    folders of configurations no longer planned are removed, only once every stage of the plan is finished,
    so until then this returns None. `deadline` (`time.monotonic()`): training stages pause at a checkpoint
    past it and `training.TrainingPaused` propagates; rerunning continues where they stopped.
    """
    root = root or results_dir()
    out = experiment_dir(scale, experiment.name, root)
    busy = f"{out} is being written by another run of {experiment.name} at scale {scale}; wait for it to finish"
    with exclusive(out, lambda: ExperimentBusyError(busy + " (it resumes nothing you would lose), then rerun")):
        return _run_locked(experiment, scale, root, out, progress, log, only, deadline, rerun)


def _run_locked(experiment, scale, root, out, progress, log, only, deadline, rerun=()) -> dict[str, Any] | None:
    from mnistmem.training import TrainingPaused  # imports torch: only when a plan is run

    upstream = _upstream_digest(experiment, scale, root)
    out.mkdir(parents=True, exist_ok=True)
    stages = experiment.plan(scale)
    names = [stage.name for stage in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"experiment {experiment.name}: duplicate stage names {names}")
    if rerun:
        again = {n for n in names if any(fnmatch.fnmatchcase(n, pattern) for pattern in rerun)}
        if not again:
            raise PlanError(f"--rerun {' '.join(rerun)} matches no stage of {experiment.name}; stages: {names}")
        only = again
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        raise PlanError(f"experiment {experiment.name} has no stage(s) {unknown} at scale {scale}; stages: {names}")
    hashes: dict[str, str] = {}
    folders: dict[str, Path] = {}
    summaries: dict[str, dict] = {}
    records = []
    started = provenance.now()
    for stage in stages:
        missing = [p for p in stage.after if p not in hashes]
        if missing:
            raise ValueError(f"stage {stage.name} depends on {missing}, which must come earlier in the plan")
        digest = config_hash(stage.config, [hashes[p] for p in stage.after] + upstream)
        folder = out / f"{stage.name}-{digest}"
        hashes[stage.name], folders[stage.name] = digest, folder
        done = folder / STAGE_FILE
        if rerun and stage.name in only and done.exists():
            done.unlink()  # run again in place; its old files are overwritten, the record rewritten
        if done.exists():
            record = json.loads(done.read_text())
            fix = f"Delete {folder} and rerun: mnistmem reproduce --scale {scale} --only {experiment.name}"
            integrity.check_seal(record, str(done), fix)
            if record["files"]:
                integrity.verify_files(folder, record["files"], folder, fix, skip=(STAGE_FILE, SCRATCH))
            log(f"[{experiment.name}/{scale}] {stage.name}: done earlier ({record['wall_seconds']:.1f} s), skipped")
        elif only is not None and stage.name not in only:
            continue  # not asked for now; stages that read it will say so
        else:
            unfinished = [p for p in stage.after if p not in summaries]
            if unfinished:
                raise ValueError(
                    f"stage {stage.name} of {experiment.name} reads {unfinished}, which are not finished; "
                    f"run them first (--stages {' '.join(unfinished)})"
                )
            folder.mkdir(parents=True, exist_ok=True)
            log(f"[{experiment.name}/{scale}] {stage.name}: running")
            context = StageContext(
                dir=folder,
                config=stage.config,
                scale=scale,
                root=root,
                inputs={p: folders[p] for p in stage.after},
                summaries={p: summaries[p] for p in stage.after},
                progress=progress,
                deadline=deadline,
            )
            tick = time.perf_counter()
            try:
                summary = stage.run(context) or {}
            except TrainingPaused:
                _log_sitting(folder, time.perf_counter() - tick)
                raise
            earlier = _earlier_sittings(folder)
            record = {
                "stage": stage.name,
                "hash": digest,
                "config": stage.config,
                "after": list(stage.after),
                "summary": summary,
                # every sitting that ended at a time budget, and this last one (a killed sitting is not counted)
                "wall_seconds": round(sum(earlier) + time.perf_counter() - tick, 3),
                "sittings": len(earlier) + 1,
                "finished": provenance.now(),
                # per stage: a rerun elsewhere keeps finished stages, so the manifest's machine may not be theirs
                "hardware": _hardware(),
                "code": provenance.code_commit(),
                # what the stage wrote, by content (mnistmem.integrity); checked whenever it is read
                "files": integrity.hash_folder(folder, skip=(STAGE_FILE, SCRATCH)),
            }
            record = integrity.seal(record)
            write_json(done, record)
            log(f"[{experiment.name}/{scale}] {stage.name}: finished in {record['wall_seconds']:.1f} s")
        summaries[stage.name] = record["summary"]
        records.append(record)
    if len(records) < len(stages):
        log(f"[{experiment.name}/{scale}] {len(records)} of {len(stages)} stages finished; manifest not written yet")
        return None
    _prune(out, set(folders.values()))
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "experiment": experiment.name,
        "question": experiment.question,
        "scale": scale,
        "stages": {r["stage"]: {**r, "folder": folders[r["stage"]].name} for r in records},
        "wall_seconds_total": round(sum(r["wall_seconds"] for r in records), 3),
        "code": provenance.code_commit(),
        "packages": provenance.package_versions(),
        "hardware": _hardware(),
        "run_started": started,
        "run_finished": provenance.now(),
    }
    write_json(out / "manifest.json", manifest)
    return manifest


def planned_hashes(experiment: Experiment, scale: str, root: Path | None = None) -> dict[str, str]:
    """The hash every stage of `experiment` would have at `scale` under this code's plan (reading the required
    experiments' manifests under `root`): a committed manifest whose hashes differ was made by another plan."""
    upstream = _upstream_digest(experiment, scale, root or results_dir())
    hashes: dict[str, str] = {}
    for stage in experiment.plan(scale):
        hashes[stage.name] = config_hash(stage.config, [hashes[p] for p in stage.after] + upstream)
    return hashes


def _upstream_digest(experiment: Experiment, scale: str, root: Path) -> list[str]:
    """Stage hashes of the experiments this one reads, so that a change upstream reruns it too."""
    from mnistmem import results

    digests = []
    for name in experiment.requires:
        try:
            manifest = results.load(name, scale, root=root).manifest
        except results.ResultError as error:
            raise results.ResultError(f"experiment {experiment.name!r} reads {name!r} results first: {error}") from None
        digests += [f"{name}:{record['hash']}" for record in manifest["stages"].values()]
    return digests


def _log_sitting(folder: Path, seconds: float) -> None:
    """Add one paused sitting's wall time to the ledger of the stage in `folder`, so that its record can give
    the total of all its sittings."""
    write_json(folder / SCRATCH / SITTINGS_FILE, [*_earlier_sittings(folder), round(seconds, 3)])


def _earlier_sittings(folder: Path) -> list[float]:
    """Wall seconds of the earlier sittings of the stage in `folder` that paused at a time budget (empty for a
    fresh stage). The ledger is written atomically, so one that does not read as a list of numbers was altered:
    refused in one line rather than silently dropped."""
    from mnistmem.results import ResultError

    path = folder / SCRATCH / SITTINGS_FILE
    if not path.exists():
        return []
    try:
        seconds = json.loads(path.read_text())
        if not isinstance(seconds, list):
            raise TypeError
        return [float(s) for s in seconds]
    except (OSError, ValueError, TypeError):
        raise ResultError(
            f"{path} is not a list of sitting times in seconds (altered?). Fix: delete it to continue without "
            "the time of the earlier sittings, or restore it"
        ) from None


def _hardware() -> dict:
    from mnistmem.devices import hardware_summary

    return hardware_summary()


def _prune(out: Path, keep: set[Path]) -> None:
    """Remove stage folders (finished or not) of configurations that are no longer in the plan."""
    for child in out.iterdir():
        if child.is_dir() and child not in keep and _STAGE_FOLDER.match(child.name):
            shutil.rmtree(child)
