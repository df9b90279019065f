"""Each chapter notebook runs top to bottom in a fresh kernel, as on Colab or Binder (at smoke scale).

Both paths are exercised: reading precomputed results (default) and "rerun this chapter", which recomputes
the chapter's experiments at smoke scale into a temporary results folder.
"""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from mnistmem import bookbuild

pytestmark = pytest.mark.book

CHAPTERS = [path.with_suffix(".ipynb") for path in bookbuild.chapter_sources()]


def execute(notebook_path, env: dict[str, str]) -> nbformat.NotebookNode:
    notebook = nbformat.read(notebook_path, as_version=4)
    old = dict(os.environ)
    os.environ.update(env)  # the kernel inherits the environment of this process
    try:
        NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(notebook_path.parent)}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return notebook


@pytest.mark.parametrize("notebook_path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_with_precomputed_results(notebook_path, smoke_results):
    notebook = execute(notebook_path, {"MNISTMEM_RESULTS": str(smoke_results), "MNISTMEM_SCALE": "smoke"})
    errors = [
        o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"
    ]
    assert errors == []


@pytest.fixture(scope="module")
def rerun_results(tmp_path_factory):
    """One results folder for all reruns: the first chapter that needs an experiment computes it."""
    return tmp_path_factory.mktemp("rerun")


@pytest.mark.parametrize("notebook_path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_reruns_its_experiments(notebook_path, rerun_results):
    env = {"MNISTMEM_RESULTS": str(rerun_results), "MNISTMEM_RERUN": "1", "MNISTMEM_RERUN_SCALE": "smoke"}
    notebook = execute(notebook_path, env)
    chapter_cells = [c for c in notebook.cells if "chapter.setup(" in c.source]
    if chapter_cells:
        assert (rerun_results / "smoke").is_dir(), "the rerun path wrote no results"
