"""The result table of one sample set, and its file format.

One row per generated image: sample id, seed, its k nearest training images (indices and distances), and
for every copy criterion its score and its flag at the stated threshold. Model-level results (Meehan's C_T)
and provenance go into JSON metadata.

File format: a `.npz` of plain arrays, read with `allow_pickle=False` (no code can run on load), holding
the metadata as UTF-8 JSON bytes in `meta_json`; written atomically (temporary file in the same folder, then
`os.replace`) so a crash never leaves half a table. The metadata carries `SCHEMA_VERSION`; a file of another
schema, or a corrupt one, raises `TableFormatError` with the fix.

The experiments store the first `STORED_NEIGHBOURS` neighbours of each sample (`first_neighbours`); the
search's `k` (50) is recorded in the metadata as `neighbours_searched`. Version 2 stores the neighbours
compactly and exactly (the data budget): indices as uint16 when the
reference has at most 65,536 images, and distances as the exact integer squared byte distances they come
from (`mnistmem.neighbors`: d = sqrt(d2)/255, d2 < 784·255² < 2³²) as uint32. Loading rebuilds int64
indices and float64 distances bit for bit — the same arrays as before, at about a third of the size. A
distance that is not of that form (none from the search is) is stored as float64 instead. Version 1
files (int64 and float64 columns) are still read.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnistmem.atomic import write_atomic

SCHEMA = "mnistmem.sample_table"
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
#: neighbours per sample kept in the experiments' stored tables: the book reads the first two; scores that
#: need more (Carlini's calibrated distance uses 50) are computed from the full search and stored per sample
STORED_NEIGHBOURS = 10
_SCORE = "score__"
_FLAG = "flag__"


class TableFormatError(ValueError):
    """A table file is not a readable table of this schema; the message names the file and the fix."""


@dataclass
class SampleTable:
    """Per-sample search results and copy-criterion scores for one sample set.

    `scores[name]` is float64 [N]; `flags[name]` is bool [N] at `thresholds[name]`; `meta` is JSON-able.
    """

    sample_id: np.ndarray  # int64 [N]
    seed: np.ndarray  # int64 [N] (-1 where unknown)
    nn_index: np.ndarray  # int64 [N, k]
    nn_distance: np.ndarray  # float64 [N, k], [0,1]-pixel Euclidean, ascending
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    flags: dict[str, np.ndarray] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # other per-sample columns
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sample_id)

    @property
    def k(self) -> int:
        return self.nn_index.shape[1]

    def first_neighbours(self, k: int) -> SampleTable:
        """The same table keeping only the k nearest training images of each sample (scores and flags,
        computed from all neighbours the search returned, are kept as they are)."""
        meta = dict(self.meta)
        meta.setdefault("neighbours_searched", self.k)
        return SampleTable(
            self.sample_id,
            self.seed,
            self.nn_index[:, :k],
            self.nn_distance[:, :k],
            dict(self.scores),
            dict(self.flags),
            dict(self.thresholds),
            dict(self.extra),
            meta,
        )

    def columns(self) -> dict[str, np.ndarray]:
        """Flat tidy columns (one per score/flag; the first neighbour only) for display or a DataFrame."""
        cols = {
            "sample_id": self.sample_id,
            "seed": self.seed,
            "nn1_index": self.nn_index[:, 0],
            "nn1_distance": self.nn_distance[:, 0],
        }
        for name in self.scores:
            cols[f"{name}_score"] = self.scores[name]
            cols[f"{name}_flag"] = self.flags[name]
        cols.update(self.extra)
        return cols


def exact_squared_bytes(nn_distance: np.ndarray) -> np.ndarray | None:
    """uint32 d2 with sqrt(d2)/255 == nn_distance bit for bit, or None if the distances are not of that form."""
    distance = np.asarray(nn_distance, np.float64)
    if not np.isfinite(distance).all() or (distance < 0).any() or (distance > 28.0).any():  # 28 = sqrt(784)
        return None
    d2 = np.rint((distance * 255.0) ** 2)
    if not np.array_equal(np.sqrt(d2) / 255.0, distance):
        return None
    return d2.astype(np.uint32)


def _neighbour_arrays(table: SampleTable) -> dict[str, np.ndarray]:
    index = np.asarray(table.nn_index, np.int64)
    arrays = {}
    if index.size == 0 or (index.min() >= 0 and index.max() < 2**16):
        arrays["nn_index_u16"] = index.astype(np.uint16)
    else:
        arrays["nn_index"] = index
    d2 = exact_squared_bytes(table.nn_distance)
    if d2 is None:
        arrays["nn_distance"] = np.asarray(table.nn_distance, np.float64)
    else:
        arrays["nn_d2_u32"] = d2
    return arrays


def _neighbours(data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    index = data["nn_index_u16"].astype(np.int64) if "nn_index_u16" in data else data["nn_index"]
    if "nn_d2_u32" in data:
        distance = np.sqrt(data["nn_d2_u32"].astype(np.float64)) / 255.0
    else:
        distance = data["nn_distance"]
    return index, distance


def save_table(table: SampleTable, path: str | os.PathLike) -> Path:
    """Write `table` to `path` (.npz) atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(table.meta)
    meta.update(
        schema=SCHEMA,
        schema_version=SCHEMA_VERSION,
        thresholds={k: float(v) for k, v in table.thresholds.items()},
        criteria=list(table.scores),
        extra_columns=list(table.extra),
    )
    arrays = {
        "sample_id": np.asarray(table.sample_id, np.int64),
        "seed": np.asarray(table.seed, np.int64),
        **_neighbour_arrays(table),
        "meta_json": np.frombuffer(json.dumps(meta, allow_nan=True).encode(), dtype=np.uint8),
    }
    for name, values in table.scores.items():
        arrays[_SCORE + name] = np.asarray(values, np.float64)
        arrays[_FLAG + name] = np.asarray(table.flags[name], bool)
    for name, values in table.extra.items():
        arrays["extra__" + name] = np.asarray(values)
    write_atomic(path, lambda handle: np.savez_compressed(handle, **arrays))
    return path


def load_table(path: str | os.PathLike) -> SampleTable:
    """Read a table written by `save_table`; a wrong schema or a damaged file raises `TableFormatError`."""
    path = Path(path)
    fix = "Fix: recompute it with `mnistmem search` (or copies.score_samples) and save it again."
    if not path.is_file():
        raise TableFormatError(f"{path}: no such table file. {fix}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as error:
        raise TableFormatError(f"{path} is not a readable table file ({error}). {fix}") from error
    try:
        meta = json.loads(bytes(data["meta_json"]).decode())
    except (KeyError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TableFormatError(f"{path} has no valid metadata ({error!r}). {fix}") from error
    if meta.get("schema") != SCHEMA or meta.get("schema_version") not in READABLE_VERSIONS:
        raise TableFormatError(
            f"{path} is schema {meta.get('schema')!r} version {meta.get('schema_version')!r}; this version "
            f"of mnistmem reads {SCHEMA!r} versions {READABLE_VERSIONS}. {fix}"
        )
    try:
        n = len(data["sample_id"])
        nn_index, nn_distance = _neighbours(data)
        table = SampleTable(
            sample_id=data["sample_id"],
            seed=data["seed"],
            nn_index=nn_index,
            nn_distance=nn_distance,
            scores={name: data[_SCORE + name] for name in meta["criteria"]},
            flags={name: data[_FLAG + name] for name in meta["criteria"]},
            thresholds=dict(meta["thresholds"]),
            extra={name: data["extra__" + name] for name in meta["extra_columns"]},
            meta=meta,
        )
    except KeyError as error:
        raise TableFormatError(f"{path} lacks the column {error}. {fix}") from error
    lengths = {len(v) for v in [table.seed, table.nn_index, table.nn_distance, *table.scores.values()]}
    if lengths - {n}:
        raise TableFormatError(f"{path} has columns of different lengths {sorted(lengths | {n})}. {fix}")
    return table
