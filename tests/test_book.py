"""The book builds from scratch, and its pages carry working, offline plotly figures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mnistmem import bookbuild

pytestmark = pytest.mark.book


def test_chapter_notebooks_are_in_sync_with_their_markdown(repo):
    """Colab opens the .ipynb; it must say what the .md says."""
    assert bookbuild.chapter_sources(repo), "no chapters found"
    assert bookbuild.unsynced_pairs(repo) == [], "run `mnistmem book sync` and commit the .ipynb files"


def test_every_chapter_is_in_the_table_of_contents(repo):
    toc = yaml.safe_load((repo / "book" / "_toc.yml").read_text())
    listed = {toc["root"]}
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        listed |= {entry["file"] for entry in part.get("chapters", [])}
    on_disk = {f"chapters/{path.stem}" for path in bookbuild.chapter_sources(repo)}
    assert on_disk == listed


def test_colab_setup_cells_clone_the_configured_repository(repo):
    """The repository URL is configured once (book/_config.yml); every chapter's Colab cell uses it."""
    url = yaml.safe_load((repo / "book" / "_config.yml").read_text())["repository"]["url"]
    for chapter in bookbuild.chapter_sources(repo):
        clones = re.findall(r"git clone [^\n]*?(https://\S+)", chapter.read_text())
        assert clones, f"{chapter.name} has no Colab set-up cell"
        assert set(clones) == {url}, f"{chapter.name} clones {clones}, config says {url}"


def test_intro_page_has_a_drawn_plotly_figure_without_cdn(built_book: Path):
    page = (built_book / "chapters" / "01_introduction.html").read_text()
    assert "plotly-graph-div" in page and "Plotly.newPlot" in page
    assert "cdn.plot.ly" not in page and "cdn.jsdelivr" not in page
    assert (built_book / "_static" / "plotly.min.js").stat().st_size > 1_000_000
    assert "_static/plotly.min.js" in page
    assert "<figcaption" in page


def test_pages_are_small_enough(built_book: Path):
    for page in built_book.rglob("*.html"):
        assert page.stat().st_size <= 5 * 1024 * 1024, f"{page} is over 5 MB"


def test_the_execution_cache_is_dropped_when_code_or_results_change(tmp_path):
    """jupyter-book's cache keys on a notebook's cells only; the build also keys on the package's source and
    the committed manifests, so a changed view or a rescored result never leaves a stale page."""
    (tmp_path / "src" / "mnistmem").mkdir(parents=True)
    (tmp_path / "data" / "results" / "cpu" / "main").mkdir(parents=True)
    code = tmp_path / "src" / "mnistmem" / "views.py"
    manifest = tmp_path / "data" / "results" / "cpu" / "main" / "manifest.json"
    code.write_text("x = 1\n")
    manifest.write_text("{}")
    first = bookbuild.inputs_digest(tmp_path)
    assert bookbuild.inputs_digest(tmp_path) == first
    code.write_text("x = 2\n")
    second = bookbuild.inputs_digest(tmp_path)
    manifest.write_text('{"rescored": true}')
    assert len({first, second, bookbuild.inputs_digest(tmp_path)}) == 3


def test_a_result_file_altered_after_its_manifest_also_reruns_the_chapters(tmp_path):
    """Not only the manifests: a table changed on disk must make the pages run again (and then be refused by
    the results door), never leave the page built from the unaltered file. Scratch folders do not count."""
    stage = tmp_path / "data" / "results" / "cpu" / "main" / "score_gan-1"
    stage.mkdir(parents=True)
    (tmp_path / "src" / "mnistmem").mkdir(parents=True)
    table = stage / "table.npz"
    table.write_bytes(b"one")
    first = bookbuild.inputs_digest(tmp_path)
    (stage / "scratch").mkdir()
    (stage / "scratch" / "checkpoint").write_bytes(b"training state")
    assert bookbuild.inputs_digest(tmp_path) == first
    table.write_bytes(b"two")
    assert bookbuild.inputs_digest(tmp_path) != first


@pytest.mark.parametrize("failure", ["exit code", "error report"])
def test_a_failed_build_leaves_no_finished_looking_page_and_the_next_plain_build_starts_over(
    failure, tmp_path, monkeypatch
):
    """After a failed build (a chapter raised, e.g. on a corrupt results table), a plain `mnistmem book build`
    once said "no targets are out of date" and kept the broken page. Now the failed build removes its HTML and
    its stamp, so the next build runs every chapter again. A build whose exit code is 0 but which left
    jupyter-book's error report of a chapter (a non-strict build) fails too."""
    import subprocess
    from types import SimpleNamespace

    (tmp_path / "src" / "mnistmem").mkdir(parents=True)
    builds: list[bool] = []  # for each jupyter-book run: did it find the previous build's HTML?

    def jupyter_book(command, cwd, env):
        html = tmp_path / "book" / "_build" / "html"
        builds.append(html.exists())
        html.mkdir(parents=True, exist_ok=True)
        (html / "chapter.html").write_text("<p>Its generator has  adjustable numbers</p>")
        broken = len(builds) == 1
        if broken and failure == "error report":
            (html / "reports").mkdir()
            (html / "reports" / "chapter.err.log").write_text("Traceback ...")
        return SimpleNamespace(returncode=1 if broken and failure == "exit code" else 0)

    monkeypatch.setattr(bookbuild, "_root", lambda: tmp_path)
    monkeypatch.setattr(bookbuild, "unsynced_pairs", lambda root: [])
    monkeypatch.setattr(bookbuild, "bundle_plotly_js", lambda root: None)
    monkeypatch.setattr(subprocess, "run", jupyter_book)
    with pytest.raises(bookbuild.BookError, match="failed"):
        bookbuild.build()
    assert not (tmp_path / "book" / "_build" / "html").exists()
    assert not (tmp_path / "book" / "_build" / bookbuild.INPUTS_STAMP).exists()
    assert bookbuild.build() == tmp_path / "book" / "_build" / "html"
    assert builds == [False, False]  # the second build started from nothing


def test_a_chapter_reads_all_its_experiments_at_one_scale(smoke_results, tmp_path, monkeypatch):
    """A trip that brought back only `calibration` at a larger scale does not make a chapter that also reads
    `main` show one experiment beside the other at different scales: both stay at the scale they share."""
    import shutil

    from mnistmem import results
    from mnistmem.book import chapter

    root = tmp_path / "results"
    for name in ("calibration", "main"):
        shutil.copytree(smoke_results / "smoke" / name, root / "smoke" / name)
    shutil.copytree(smoke_results / "smoke" / "calibration", root / "cpu" / "calibration")  # a partial larger scale
    monkeypatch.setenv("MNISTMEM_RESULTS", str(root))
    monkeypatch.delenv(results.SCALE_ENV, raising=False)
    assert results.choose_scale("calibration") == "cpu"  # alone, the largest present
    assert chapter.common_scale(["calibration", "main"]) == "smoke"
    assert chapter.setup(["calibration", "main"], verbose=False).scales == {"calibration": "smoke", "main": "smoke"}
    assert chapter.common_scale(["calibration"]) == "cpu"
    monkeypatch.setenv(results.SCALE_ENV, "smoke")  # an explicit choice wins
    assert chapter.common_scale(["calibration"]) is None
