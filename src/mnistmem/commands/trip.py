"""`mnistmem trip prepare | pack OUT | unpack FOLDER`: results to and from a lent GPU machine (`mnistmem.trip`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "prepare a trip to a lent GPU machine, pack its results there, unpack them here"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    prepare = actions.add_parser(
        "prepare", help="write .trip/ (wheels, bootstrap), check the 64 MiB, print the command"
    )
    prepare.add_argument("--no-wheels", action="store_true", help="skip fetching wheels (a dry run of the sizes)")
    prepare.add_argument(
        "--minutes",
        type=float,
        default=6.0,
        help="compute budget of the step (default 6: with the measurement and the pack, the device's 10 minutes)",
    )
    pack = actions.add_parser("pack", help="archive data/results/<scale>/ into OUT (at most 8 files of 16 MiB)")
    pack.add_argument("out", type=Path)
    pack.add_argument("--scale", default="gpu")
    unpack = actions.add_parser("unpack", help="verify the archives in FOLDER and extract into data/results/<scale>/")
    unpack.add_argument("folder", type=Path)
    unpack.add_argument("--scale", default="gpu")


def run(args: argparse.Namespace) -> int:
    from mnistmem import trip
    from mnistmem.paths import repo_root, results_dir

    try:
        if args.action == "prepare":
            repo = repo_root()
            if repo is None:
                print("mnistmem trip prepare: run it from a checkout of the repository (editable install)")
                return 2
            prepared = trip.prepare(repo, wheels=not args.no_wheels)
            print(
                f"trip: {prepared.total_bytes / 2**20:.1f} MiB of {trip.MAX_TREE_BYTES / 2**20:.0f} "
                f"(tracked {prepared.tree_bytes / 2**20:.1f}, carried {prepared.carry_bytes / 2**20:.1f})"
            )
            print(f"carry: {prepared.carry}")
            print(f"command: {trip.step_command(minutes=args.minutes)}")
            return 0
        if args.action == "pack":
            repo = repo_root()
            carried = trip.carried_hashes(repo, args.scale) if repo is not None else {}
            packed = trip.pack(results_dir(), args.scale, args.out, carried)
            print(
                f"packed {len(packed.written)} files into {args.out} "
                f"({packed.unchanged} results files came with the trip unchanged and stay behind)"
            )
            for folder, size in packed.left_behind.items():
                print(
                    f"mnistmem trip pack: left behind {folder} ({size / 2**20:.1f} MiB), the state of a paused "
                    f"training larger than what a trip brings back; the next step starts that training again, "
                    "so it must finish within one step",
                    file=sys.stderr,
                )
            return 0
        unpacked = trip.unpack(args.folder, results_dir(), args.scale)
        print(f"unpacked {unpacked.files} files into {results_dir() / args.scale}")
        for folder, size in unpacked.left_behind.items():
            print(f"left behind on the GPU machine: {folder} ({size / 2**20:.1f} MiB), a paused training's state")
        return 0
    except trip.TripError as error:
        print(f"mnistmem trip {args.action}: {error}", file=sys.stderr)
        return 2
