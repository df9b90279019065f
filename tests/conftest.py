"""Shared fixtures: the built book (made once per session, fresh), smoke-scale results, and tiny model sizes so
every family trains in seconds on 2 CPU cores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent

#: Small versions of each family (same code paths, a fraction of the compute).
TINY = {
    "gan": {"nz": 16, "ngf": 16, "ndf": 16},
    "vae": {"latent": 8, "width": 8, "hidden": 64},
    "diffusion": {"channels": [16, 32, 32], "norm_num_groups": 8},
    "classifier": {"width": 8, "features": 32},
}


@pytest.fixture(autouse=True)
def _fixed_threads():
    """Tests compare bits; keep the thread count fixed within the test session."""
    torch.set_num_threads(2)
    yield


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def built_book() -> Path:
    """Build the book from scratch once for the whole session and return book/_build/html.

    Fresh, because jupyter-book's execution cache does not notice changes in imported modules or data.
    """
    from mnistmem import bookbuild

    return bookbuild.build(fresh=True, strict=True)


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory) -> Path:
    """Every experiment at smoke scale, computed once per test session into a temporary results folder."""
    from mnistmem import experiments
    from mnistmem.experiments.runner import run_experiment

    root = tmp_path_factory.mktemp("results")
    for name in experiments.REGISTRY:
        run_experiment(experiments.get(name), "smoke", root=root, progress=False, log=lambda _: None)
    return root
