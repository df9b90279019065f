"""Each chapter notebook runs top to bottom in a fresh kernel, as on Colab or Binder (at smoke scale).

Both paths are exercised: reading precomputed results (default) and "rerun this chapter", which recomputes
the chapter's experiments at smoke scale into a temporary results folder.
"""

from __future__ import annotations

import os
import shutil

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
def rerun_results(smoke_results, tmp_path_factory):
    """One results folder for all reruns, seeded with the session's smoke results minus `calibration`.

    The first chapter's rerun therefore really recomputes an experiment (calibration), and every later
    rerun goes through the same path, finding the other experiments' stages done (a full recomputation per
    chapter would cost CI the smoke scale eleven times over).
    """
    folder = tmp_path_factory.mktemp("rerun") / "results"
    shutil.copytree(smoke_results, folder)
    shutil.rmtree(folder / "smoke" / "calibration")
    return folder


@pytest.mark.parametrize("notebook_path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_reruns_its_experiments(notebook_path, rerun_results):
    env = {"MNISTMEM_RESULTS": str(rerun_results), "MNISTMEM_RERUN": "1", "MNISTMEM_RERUN_SCALE": "smoke"}
    notebook = execute(notebook_path, env)
    if any("chapter.setup(" in c.source and "[]" not in c.source for c in notebook.cells):
        assert (rerun_results / "smoke" / "calibration" / "manifest.json").exists(), "the rerun path computed nothing"
