"""Where a result came from: code commit, package versions, hardware. Written into every manifest."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from datetime import datetime, timezone

from mnistmem.paths import repo_root

PACKAGES = (
    "mnistmem",
    "torch",
    "numpy",
    "scipy",
    "scikit-learn",
    "scikit-image",
    "diffusers",
    "accelerate",
    "safetensors",
    "faiss-cpu",
    "plotly",
)


def code_commit() -> dict:
    """The git commit of the checkout and whether it had uncommitted changes (None outside a checkout)."""
    root = repo_root()
    if root is None:
        return {"commit": None, "dirty": None}

    def git(*args: str) -> str:
        # safe.directory: git refuses a checkout owned by another user ("dubious ownership") and prints nothing
        # on stdout, and the record would say "not recorded"; reading HEAD is safe either way. (Why some earlier
        # sittings recorded no commit is not known; the book says "not recorded" for them.)
        command = ["git", "-c", "safe.directory=*", *args]
        return subprocess.run(command, cwd=root, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("rev-parse", "HEAD") or None
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "src")) if commit else None
    return {"commit": commit, "dirty": dirty}


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
