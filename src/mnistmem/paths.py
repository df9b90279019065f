"""Where things live: the repository, the data directory and the results directory.

The data directory holds the converted MNIST cache and, under `results/`, the precomputed experiment
results the book reads. It defaults to `data/` in the repository and can be moved with `MNISTMEM_DATA`
(for example on Colab, or to keep a large cache outside the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path | None:
    """The repository checkout this package was installed from (editable install), or None."""
    candidate = PACKAGE_DIR.parent.parent
    if (candidate / "pyproject.toml").is_file() and (candidate / "book").is_dir():
        return candidate
    return None


def data_dir() -> Path:
    """The data directory: `$MNISTMEM_DATA`, else `<repo>/data`, else `~/.cache/mnistmem`."""
    env = os.environ.get("MNISTMEM_DATA")
    if env:
        return Path(env).expanduser().resolve()
    root = repo_root()
    if root is not None:
        return root / "data"
    return Path.home() / ".cache" / "mnistmem"


def results_dir() -> Path:
    """Where `mnistmem reproduce` writes and `mnistmem.results` reads.

    `$MNISTMEM_RESULTS` if set (the tests point it at a temporary folder), else `<data dir>/results`.
    """
    env = os.environ.get("MNISTMEM_RESULTS")
    return Path(env).expanduser().resolve() if env else data_dir() / "results"
