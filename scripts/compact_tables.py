"""Rewrite committed result tables in the compact version-2 format (`mnistmem.tables`), keeping the first
`STORED_NEIGHBOURS` neighbours per sample as the experiments now do, and check that every array reads back
identical, bit for bit, to what the old file held (the neighbour columns kept included).

    .venv/bin/python scripts/compact_tables.py data/results      # every table.npz under the folder

Run once after the format change (2026-12-01) to bring git-tracked data/ within the 40 MB budget.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mnistmem import tables


def same(a: tables.SampleTable, b: tables.SampleTable) -> bool:
    k = b.k

    def arrays(t):
        return [
            t.sample_id,
            t.seed,
            t.nn_index[:, :k],
            t.nn_distance[:, :k],
            *t.scores.values(),
            *t.flags.values(),
        ]

    return (
        all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(arrays(a), arrays(b), strict=True))
        and a.thresholds == b.thresholds
        and all(np.array_equal(a.extra[k], b.extra[k]) for k in a.extra)
        and set(a.extra) == set(b.extra)
    )


def main(root: str) -> int:
    before = after = 0
    for path in sorted(Path(root).rglob("*.npz")):
        try:
            old = tables.load_table(path)
        except tables.TableFormatError:
            continue  # not a sample table (samples, canaries, ...)
        size = path.stat().st_size
        tables.save_table(old.first_neighbours(tables.STORED_NEIGHBOURS), path)
        new = tables.load_table(path)
        if not same(old, new):
            print(f"{path}: the rewritten table differs; restore it from git", file=sys.stderr)
            return 1
        before, after = before + size, after + path.stat().st_size
        print(f"{path}: {size / 1e6:.2f} MB -> {path.stat().st_size / 1e6:.2f} MB, identical on reading")
    print(f"total {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "data/results"))
