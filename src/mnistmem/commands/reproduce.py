"""`mnistmem reproduce --scale {smoke,cpu,gpu} [--only NAME ...] [--jobs N]`: produce the book's results.

`--stages NAME ...` runs just those stages of the one experiment named by `--only`; `--minutes M` gives the
run a wall-clock budget: a training stage still running when it ends writes a checkpoint and stops, the
command exits with 3 and says so, and the same command later continues it (bit-identical to one long run).
Long trainings run in stages of bounded length this way (e.g. `--minutes 85` per sitting). `--rerun PATTERN
...` runs finished stages of one experiment again in place (same configuration and hash, new code).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from mnistmem import experiments
from mnistmem.devices import THREADS_VAR, available_cores, configure_cpu_threads
from mnistmem.results import SCALES
from mnistmem.training import TrainingPaused


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", choices=SCALES, default="smoke", help="smoke: minutes; cpu: hours; gpu: one GPU")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments (default: all)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="run up to N independent experiments at once, each in its own process with cores/N threads "
        "(bench/jobs.py measures the gain on this machine)",
    )
    parser.add_argument("--list", action="store_true", help="list the experiments and their questions, then exit")
    parser.add_argument(
        "--stages", nargs="+", metavar="STAGE", help="run only these stages of the one experiment given to --only"
    )
    parser.add_argument(
        "--rerun",
        nargs="+",
        metavar="PATTERN",
        help="run these finished stages of the one experiment in --only again, in place (glob patterns, e.g. "
        "'score_*'): for new code on the same inputs, such as a new copy criterion",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        metavar="M",
        help="wall-clock budget: training pauses at a checkpoint after M minutes (exit 3); rerun to continue",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")


def run(args: argparse.Namespace) -> int:
    if args.list:
        for name in experiments.REGISTRY:
            print(f"{name:12s} {experiments.get(name).question}")
        return 0
    names = args.only or list(experiments.REGISTRY)
    unknown = [n for n in names if n not in experiments.REGISTRY]
    if unknown:
        print(
            f"mnistmem reproduce: unknown experiment(s) {unknown}; known: {list(experiments.REGISTRY)}", file=sys.stderr
        )
        return 2
    if args.jobs < 1:
        print(f"mnistmem reproduce: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
        return 2
    if args.stages and (not args.only or len(args.only) != 1):
        print(
            "mnistmem reproduce: --stages needs exactly one experiment in --only (e.g. --only main --stages ...)",
            file=sys.stderr,
        )
        return 2
    if args.rerun and (not args.only or len(args.only) != 1 or args.stages):
        print("mnistmem reproduce: --rerun needs exactly one experiment in --only and no --stages", file=sys.stderr)
        return 2
    if args.minutes is not None and not args.minutes > 0:
        print(f"mnistmem reproduce: --minutes must be a positive number, got {args.minutes}", file=sys.stderr)
        return 2
    if (args.stages or args.minutes is not None) and args.jobs != 1:
        print("mnistmem reproduce: --stages and --minutes run in one process; drop --jobs", file=sys.stderr)
        return 2
    deadline = None if args.minutes is None else time.monotonic() + 60 * args.minutes
    ordered = [name for name in experiments.REGISTRY if name in names]  # later experiments read earlier ones
    if args.jobs == 1:
        # Every experiment then runs in this process: apply the thread count (MNISTMEM_THREADS) up front, since
        # not every stage picks a device (the unlearning trainer does not) and torch would take every core.
        configure_cpu_threads()
        timings = []
        for name in ordered:
            tick = time.perf_counter()
            try:
                manifest = experiments.run_experiment(
                    experiments.get(name),
                    args.scale,
                    progress=not args.no_progress,
                    only=set(args.stages) if args.stages else None,
                    deadline=deadline,
                    rerun=tuple(args.rerun or ()),
                )
            except TrainingPaused as paused:
                print(f"mnistmem reproduce: {paused}. Run the same command again to continue.")
                return 3
            if manifest is None:  # --stages: the experiment is not complete yet
                print(
                    f"mnistmem reproduce: stages {args.stages or args.rerun} of {name} finished; "
                    "the rest of its plan is not"
                )
                return 0
            timings.append((name, time.perf_counter() - tick, manifest["wall_seconds_total"]))
    else:
        timings = run_in_parallel(ordered, args.scale, args.jobs)
        if timings is None:
            return 1
    print(f"\nWall time at scale {args.scale!r} (this run / all stages as recorded):")
    for name, this_run, recorded in timings:
        print(f"  {name:12s} {this_run:8.1f} s / {recorded:8.1f} s")
    print(f"  {'total':12s} {sum(t[1] for t in timings):8.1f} s / {sum(t[2] for t in timings):8.1f} s")
    return 0


def run_in_parallel(ordered: list[str], scale: str, jobs: int) -> list[tuple[str, float, float]] | None:
    """Each experiment in a child `mnistmem reproduce --only NAME`, started once the experiments it reads
    (its `requires` among those being run) have finished. None if any child failed (the others finish)."""
    from mnistmem import results

    env = {**os.environ, THREADS_VAR: str(max(1, available_cores() // jobs))}
    pending, running, finished, failed = list(ordered), {}, {}, []
    while pending or running:
        for name in list(pending):
            waits_for = [r for r in experiments.get(name).requires if r in ordered and r not in finished]
            if len(running) < jobs and not waits_for:
                command = [sys.executable, "-m", "mnistmem", "reproduce", "--scale", scale, "--only", name]
                print(f"[reproduce] starting {name} ({env[THREADS_VAR]} thread(s))", flush=True)
                running[name] = (subprocess.Popen([*command, "--no-progress"], env=env), time.perf_counter())
                pending.remove(name)
        for name, (process, tick) in list(running.items()):
            if process.poll() is not None:
                del running[name]
                if process.returncode == 0:
                    finished[name] = time.perf_counter() - tick
                else:
                    failed.append(name)
                    print(f"[reproduce] {name} failed (exit {process.returncode}); rerun it with --only {name}")
        blocked = [n for n in pending if any(r in failed for r in experiments.get(n).requires)]
        for name in blocked:
            print(f"[reproduce] {name} not started: an experiment it reads failed")
            pending.remove(name)
            failed.append(name)
        time.sleep(0.5)
    if failed:
        return None
    return [(n, finished[n], results.load(n, scale=scale).manifest["wall_seconds_total"]) for n in ordered]
