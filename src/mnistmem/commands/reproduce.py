"""`mnistmem reproduce --scale {smoke,cpu,gpu} [--only NAME ...]`: produce the book's results."""

from __future__ import annotations

import argparse
import time

from mnistmem import experiments
from mnistmem.results import SCALES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", choices=SCALES, default="smoke", help="smoke: minutes; cpu: hours; gpu: one GPU")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments (default: all)")
    parser.add_argument("--list", action="store_true", help="list the experiments and their questions, then exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")


def run(args: argparse.Namespace) -> int:
    if args.list:
        for name in experiments.REGISTRY:
            print(f"{name:12s} {experiments.get(name).question}")
        return 0
    names = args.only or list(experiments.REGISTRY)
    unknown = [n for n in names if n not in experiments.REGISTRY]
    if unknown:
        print(f"mnistmem reproduce: unknown experiment(s) {unknown}; known: {list(experiments.REGISTRY)}")
        return 2
    timings = []
    for name in experiments.REGISTRY:  # registry order: later experiments read earlier ones
        if name not in names:
            continue
        tick = time.perf_counter()
        manifest = experiments.run_experiment(experiments.get(name), args.scale, progress=not args.no_progress)
        timings.append((name, time.perf_counter() - tick, manifest["wall_seconds_total"]))
    print(f"\nWall time at scale {args.scale!r} (this run / all stages as recorded):")
    for name, this_run, recorded in timings:
        print(f"  {name:12s} {this_run:8.1f} s / {recorded:8.1f} s")
    print(f"  {'total':12s} {sum(t[1] for t in timings):8.1f} s / {sum(t[2] for t in timings):8.1f} s")
    return 0
