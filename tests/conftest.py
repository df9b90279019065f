"""Shared fixtures: the repository, tiny model sizes, a fixed thread count, and (once per session) smoke
results and the freshly built book."""

from __future__ import annotations

import os
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


def pytest_collection_modifyitems(items):
    """Mark every test that needs the session's smoke-scale results `pipeline`, so `make unit` (which leaves
    them out) never computes the whole smoke pipeline."""
    for item in items:
        if "smoke_results" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.pipeline)


@pytest.fixture(autouse=True)
def _fixed_threads():
    """Tests compare bits; keep the thread count fixed within the test session."""
    torch.set_num_threads(2)
    yield


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def chapter_experiments(source: Path) -> list[str]:
    """The experiments one chapter reads (its `chapter.setup([...])` calls), in order."""
    import ast
    import re

    found: list[str] = []
    for names in re.findall(r"chapter\.setup\((\[[^\]]*\])", source.read_text()):
        found += [name for name in ast.literal_eval(names) if name not in found]
    return found


def book_experiments() -> set[str]:
    """The experiments the chapters read."""
    return {name for source in (REPO / "chapters").glob("*.md") for name in chapter_experiments(source)}


def committed_results_complete() -> bool:
    """True when the repository holds cpu- or gpu-scale results for every experiment the book reads (an
    experiment still running in sittings, such as `training`, does not count until a chapter reads it)."""
    from mnistmem import results

    return all({"cpu", "gpu"} & set(results.available_scales(name)) for name in book_experiments())


@pytest.fixture(scope="session")
def built_book(request) -> Path:
    """Build the book from scratch once for the whole session and return book/_build/html.

    Fresh, because jupyter-book's execution cache does not notice changes in imported modules or data. It
    reads the committed results when they are complete, and otherwise smoke-scale results made for this
    session (so a fresh clone without committed results still tests every page).
    """
    from mnistmem import bookbuild

    if committed_results_complete():
        return bookbuild.build(fresh=True, strict=True)
    smoke = request.getfixturevalue("smoke_results")
    patch = pytest.MonkeyPatch()
    patch.setenv("MNISTMEM_RESULTS", str(smoke))
    patch.setenv("MNISTMEM_SCALE", "smoke")
    try:
        return bookbuild.build(fresh=True, strict=True)
    finally:
        patch.undo()


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory) -> Path:
    """Every experiment at smoke scale, computed once per test session into a temporary results folder.

    Set `MNISTMEM_TEST_RESULTS` to a folder of smoke results made earlier to skip the computation while
    working on the book (the stages found complete there are reused; missing ones are computed into it).
    """
    from mnistmem import experiments
    from mnistmem.experiments.runner import run_experiment

    reuse = os.environ.get("MNISTMEM_TEST_RESULTS")
    root = Path(reuse) if reuse else tmp_path_factory.mktemp("results")
    for name in experiments.REGISTRY:
        run_experiment(experiments.get(name), "smoke", root=root, progress=False, log=lambda _: None)
    return root
