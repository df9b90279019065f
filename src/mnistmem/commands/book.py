"""`mnistmem book sync|build|check`: the developer side of `make book`."""

from __future__ import annotations

import argparse

from mnistmem import bookbuild


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=["sync", "build", "check"],
        help="sync: write chapters/*.ipynb from chapters/*.md; build: build the HTML; check: fail if pairs differ",
    )
    parser.add_argument("--fresh", action="store_true", help="rerun every chapter (drop the execution cache)")
    parser.add_argument("--no-strict", action="store_true", help="do not treat Sphinx warnings as errors")


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "sync":
            for path in bookbuild.sync_pairs():
                print(f"wrote {path}")
            return 0
        if args.action == "check":
            problems = bookbuild.unsynced_pairs()
            for problem in problems:
                print(problem)
            return 1 if problems else 0
        html_dir = bookbuild.build(fresh=args.fresh, strict=not args.no_strict)
    except bookbuild.BookError as error:
        print(f"mnistmem book: {error}")
        return 1
    print(f"Book built: open {html_dir / 'index.html'}")
    return 0
