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


def snapshot(folder) -> dict[str, tuple[int, int]]:
    """(size, modification time) of every file under `folder`: what a run that writes anything changes."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("notebook_path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_with_precomputed_results(notebook_path, smoke_results):
    """Every cell runs (`execute` raises on the first cell error), and reading precomputed results writes
    nothing: a chapter that quietly recomputed an experiment would change the results folder."""
    before = snapshot(smoke_results)
    notebook = execute(notebook_path, {"MNISTMEM_RESULTS": str(smoke_results), "MNISTMEM_SCALE": "smoke"})
    assert all(c.execution_count is not None for c in notebook.cells if c.cell_type == "code")
    assert snapshot(smoke_results) == before
    assert not bare_values(notebook), f"{notebook_path.name}: cells show a bare Python value to the reader"


def bare_values(notebook: nbformat.NotebookNode) -> list[str]:
    """The plain-text results of cells whose last line is an expression (a dict, a number, a list): the
    rendered book prints them as code output under the prose, where a reader sees `{'counts': ...}`. A cell
    that shows something does it through HTML, a figure or a widget; one that only glues ends with `;`."""
    return [
        output["data"]["text/plain"][:80]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "execute_result" and set(output.get("data", {})) <= {"text/plain"}
    ]


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
    """With the rerun switch, the chapter runs each experiment it reads through the runner (which takes the
    experiment folder's lock, rewriting `.lock`, even when every stage is already done); the first one to read
    `calibration` recomputes it, since the seeded folder lacks it."""
    from .conftest import chapter_experiments

    names = chapter_experiments(notebook_path.with_suffix(".md"))
    locks = {name: rerun_results / "smoke" / name / ".lock" for name in names}
    before = {name: lock.stat().st_mtime_ns if lock.exists() else None for name, lock in locks.items()}
    env = {"MNISTMEM_RESULTS": str(rerun_results), "MNISTMEM_RERUN": "1", "MNISTMEM_RERUN_SCALE": "smoke"}
    execute(notebook_path, env)
    for name, lock in locks.items():
        assert lock.exists() and lock.stat().st_mtime_ns != before[name], f"{name} did not go through the runner"
        assert (rerun_results / "smoke" / name / "manifest.json").exists(), f"{name} has no results after a rerun"
