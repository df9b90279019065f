"""The `mnistmem` command line (also `python -m mnistmem`).

Each subcommand lives in its own module under `mnistmem.commands` with `HELP`, `add_arguments(parser)`
and `run(args) -> int`. Modules are imported only when their command runs, so `mnistmem --help` is fast
and a command's heavy dependencies (torch, diffusers) load only when needed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

#: command name -> (module, one-line help). Help lives here so `--help` imports nothing heavy.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("mnistmem.commands.data", "MNIST: prepare the verified cache, show sources, hashes and counts"),
    "train": ("mnistmem.commands.train", "train a GAN, VAE, diffusion model or classifier"),
    "sample": ("mnistmem.commands.sample", "generate images from a trained model, with per-sample seeds"),
    "search": (
        "mnistmem.commands.search",
        "exact nearest training images (and copy criteria) for saved samples",
    ),
    "reproduce": ("mnistmem.commands.reproduce", "run the experiments behind the book at a chosen scale"),
    "unlearn": (
        "mnistmem.commands.unlearn",
        "make a model forget a training image, by one of several methods",
    ),
    "trip": ("mnistmem.commands.trip", "prepare a trip to a lent GPU machine, pack its results, unpack them here"),
    "book": ("mnistmem.commands.book", "build the book (developer tool behind `make book`)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported, to add its own arguments."""
    parser = argparse.ArgumentParser(
        prog="mnistmem",
        description="Do generative models store copies of their training data? An exhaustive check on MNIST.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if importlib.util.find_spec(module_name) is None:
            continue  # a command whose module is not part of this version
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; return its exit status (2 for a usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    return int(args._run(args) or 0)
