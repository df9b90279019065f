"""Content hashes: every artefact a stage writes is named by its SHA-256, and nothing is used unverified.

A book whose numbers may be quoted in a court filing must be able to show that each number comes from the
artefact it names, unaltered. So:

* when a stage finishes, the runner records the SHA-256 of every file in its folder (`hash_folder`) and a
  SHA-256 of the stage's whole record — configuration, summary (the numbers the book prints), file hashes
  — (`seal`), in `stage.json` and in the experiment's `manifest.json`;
* `mnistmem.results` checks a record's seal when it reads a manifest and a file's hash whenever a file is
  opened (`verify_files`), and refuses a mismatch, a missing file the record names, or an extra file in a
  folder the record covers, with one line naming the file, the expected and the found hash, and the
  command that regenerates it. A record without hashes is refused as unverified.

This detects changed, truncated, replaced or deleted files and hand-edited manifests; it is not a
signature (whoever can rewrite the files can rewrite the hashes too: git history is the record of that).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

#: fields of a stage record that its seal does not cover (added when the manifest is assembled, or the seal)
UNSEALED_FIELDS = ("folder", "record_sha256")


class IntegrityError(ValueError):
    """An artefact whose content does not match its recorded hash (or has none); the message says which."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_folder(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """{relative path: SHA-256} of every file under `folder`, except top-level entries named in `skip`."""
    out = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and relative.parts[0] not in skip:
            out[relative.as_posix()] = sha256_file(path)
    return out


def record_digest(record: dict[str, Any]) -> str:
    """SHA-256 of a stage record's canonical JSON, without the fields the seal does not cover."""
    from mnistmem.atomic import _jsonable  # the same conversion as the files are written with

    body = {k: v for k, v in record.items() if k not in UNSEALED_FIELDS}
    text = json.dumps(body, sort_keys=True, allow_nan=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()


def seal(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "record_sha256": record_digest(record)}


def check_seal(record: dict[str, Any], where: str, fix: str) -> None:
    if "record_sha256" not in record or "files" not in record:
        raise IntegrityError(f"{where}: stage {record.get('stage')!r} has no content hashes (unverified). {fix}")
    found = record_digest(record)
    if found != record["record_sha256"]:
        raise IntegrityError(
            f"{where}: the record of stage {record.get('stage')!r} was changed (seal {record['record_sha256'][:16]}…, "
            f"content {found[:16]}…): refused. {fix}"
        )


def verify_files(stage_dir: Path, files: dict[str, str], target: Path, fix: str, skip: tuple[str, ...] = ()) -> None:
    """Check every recorded file at or under `target` (a file or folder inside `stage_dir`); files under
    top-level entries named in `skip` (the stage's own record, its scratch folder) are not the stage's output."""
    relative = target.relative_to(stage_dir).as_posix() if target != stage_dir else ""
    prefix = "" if relative == "" else relative + "/"
    covered = {name: digest for name, digest in files.items() if name == relative or name.startswith(prefix)}
    if not covered:
        raise IntegrityError(f"{target} is not among the files recorded for its stage (unverified). {fix}")
    for name, expected in covered.items():
        path = stage_dir / name
        if not path.is_file():
            raise IntegrityError(f"{path} is missing (its stage recorded it with SHA-256 {expected[:16]}…). {fix}")
        found = sha256_file(path)
        if found != expected:
            raise IntegrityError(f"{path} has SHA-256 {found[:16]}…, recorded {expected[:16]}…: refused. {fix}")
    if target.is_dir():
        extra = sorted(
            p.relative_to(stage_dir).as_posix()
            for p in target.rglob("*")
            if p.is_file()
            and p.relative_to(stage_dir).as_posix() not in files
            and p.relative_to(stage_dir).parts[0] not in skip
        )
        if extra:
            raise IntegrityError(f"{stage_dir / extra[0]} is not among the files its stage recorded: refused. {fix}")
