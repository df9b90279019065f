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
        epilog="mnistmem --debug COMMAND ... shows a traceback instead of a one-line error.",
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


#: the project's own error types, by module and name (imported only when one is raised): each carries a
#: one-line message naming the file or argument and the fix, so the command line prints it and exits 2
PROJECT_ERRORS = {
    ("mnistmem.integrity", "IntegrityError"),
    ("mnistmem.devices", "DeviceError"),
    ("mnistmem.neighbors", "NeighborsInputError"),
    ("mnistmem.dataspec", "DataSpecError"),
    ("mnistmem.tables", "TableFormatError"),
    ("mnistmem.bookbuild", "BookError"),
    ("mnistmem.training", "ConfigError"),
    ("mnistmem.trip", "TripError"),
    ("mnistmem.results", "ResultError"),
    ("mnistmem.data", "MnistDataError"),
    ("mnistmem.models", "UnknownModelError"),
    ("mnistmem.unlearn.items", "ItemError"),
    ("mnistmem.checkpoints", "CheckpointError"),
    ("mnistmem.experiments.runner", "ExperimentBusyError"),
    ("mnistmem.experiments.runner", "PlanError"),
    ("mnistmem.commands.search", "SearchInputError"),
    ("mnistmem.commands.unlearn", "UnlearnArgumentError"),
}


def _is_project_error(error: BaseException) -> bool:
    return any((cls.__module__, cls.__name__) in PROJECT_ERRORS for cls in type(error).__mro__)


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; return its exit status (2 for a usage error or one of the project's own errors,
    printed as one line; `--debug` before the command shows the traceback instead)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv[:1]
    if debug:
        argv = argv[1:]
    command = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except Exception as error:
        if debug or not _is_project_error(error):
            raise
        message = " ".join(str(error).split())  # one line
        print(f"mnistmem {command}: {message}", file=sys.stderr)
        return 2
