"""Atomic file writes: a temporary file in the same folder, then `os.replace`.

A process killed mid-write leaves the previous file (or none) in place, never half a file that a later
run could mistake for a finished result.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

#: the lock file `exclusive` holds in a folder
LOCK = ".lock"


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call `write(handle)` on a temporary file and move it to `path` once complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as indented, key-sorted JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n"
    return write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


@contextlib.contextmanager
def exclusive(folder: Path, busy: Callable[[], Exception]) -> Iterator[None]:
    """Hold an exclusive advisory lock (`fcntl.flock` on `folder/.lock`) while one process writes `folder`; a
    second process is refused at once with the error `busy()` makes, so two runs never both do the work,
    interleave their logs or clean each other's temporary files. The lock ends with the process, even a killed
    one. While it is held, every `*.tmp` file under `folder` is a leftover of a killed write: removed."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy() from None
        try:
            remove_stray_temporaries(folder)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_stray_temporaries(folder: Path) -> list[Path]:
    """Delete the `*.tmp` files under `folder` (what a killed `write_atomic`, or any write here that renames a
    temporary file into place, leaves); only safe while holding `exclusive(folder)`. Returns them."""
    stray = [path for path in folder.rglob("*.tmp") if path.is_file()]
    for path in stray:
        path.unlink(missing_ok=True)
    return stray
