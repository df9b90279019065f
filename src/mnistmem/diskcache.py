"""Arrays computed once and kept under `<data dir>/cache/`, each beside the SHA-256 of its bytes.

What is cached is derived (a network's feature vectors for a set of images, each training image's nearest
other image), so the right answer to a damaged cache file is to compute it again, never to use it: a flipped
byte inside an array of floats would otherwise pass every check of shape and range. The file name says what
the array was computed from (exact hashes of the inputs); the `.sha256` file beside it says what its bytes
must be.
"""

from __future__ import annotations

import hashlib
import io
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mnistmem.atomic import write_atomic


def cache_file(name: str) -> Path:
    """`<data dir>/cache/<name>.npy`."""
    from mnistmem.paths import data_dir

    return data_dir() / "cache" / f"{name}.npy"


def _digest_file(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def cached_array(path: Path, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """The array at `path` if its bytes match the recorded SHA-256, else `compute()`, written (with its hash).
    The file is read once, and written once, for both the array and its hash."""
    digest = _digest_file(path)
    if path.is_file() and digest.is_file():
        payload = path.read_bytes()
        if hashlib.sha256(payload).hexdigest() == digest.read_text().strip():
            return np.load(io.BytesIO(payload), allow_pickle=False)
        print(f"mnistmem: cache file {path} does not match its recorded SHA-256; computing it again", file=sys.stderr)
    array = np.asarray(compute())
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    payload = buffer.getvalue()
    write_atomic(path, lambda handle: handle.write(payload))
    write_atomic(digest, lambda handle: handle.write(hashlib.sha256(payload).hexdigest().encode() + b"\n"))
    return array
