"""Shared fixtures. The built book is made once per test session, fresh (see `built_book`)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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
