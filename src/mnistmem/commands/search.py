"""`mnistmem search SAMPLES [--out TABLE]`: exact nearest training images and copy criteria for saved samples.

SAMPLES is a `.npy` of uint8 images [N,28,28] (floats in [0,1] are quantised as a PNG would be), or a
`.npz` holding them under `images` (or as its only array), with optional per-sample `seeds`. The result
table (`mnistmem.tables`) is written to `--out`; with `--baseline` the MNIST test digits are scored too
(cached in that file) and the summary table — model rate, baseline rate and excess with 95% intervals — is
printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


class SearchInputError(ValueError):
    """A samples file or option `mnistmem search` cannot use; the message names it and the fix."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("samples", type=Path, help=".npy or .npz of uint8 images [N,28,28]")
    parser.add_argument("--out", type=Path, help="result table (.npz); default: SAMPLES with .table.npz")
    parser.add_argument("--k", type=int, default=50, help="neighbours kept per sample (>= 50)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: best available)")
    parser.add_argument("--no-ct", action="store_true", help="skip Meehan's C_T (k-means on 60k images)")
    parser.add_argument("--baseline", type=Path, help="baseline table file: loaded if present, else computed and saved")


def read_samples(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Images and (optional) seeds from a .npy or .npz file, never unpickling anything."""
    import zipfile

    if path.is_dir():
        raise SearchInputError(f"{path} is a folder. Fix: pass a .npy or .npz file of images.")
    if not path.is_file():
        raise SearchInputError(f"{path} does not exist. Fix: pass a .npy or .npz of images.")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic[:6] != b"\x93NUMPY" and magic[:4] != b"PK\x03\x04":
        kind = "empty" if not magic else "not a NumPy .npy or .npz file"
        raise SearchInputError(
            f"{path} is {kind}. Fix: save the images with numpy "
            "(np.save(path, images) or np.savez(path, images=..., seeds=...))."
        )
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise SearchInputError(f"cannot read {path} ({error}). Fix: save plain arrays.") from error
    if isinstance(loaded, np.ndarray):
        return loaded, None
    with loaded:
        names = loaded.files
        key = "images" if "images" in names else (names[0] if len(names) == 1 else None)
        if key is None:
            raise SearchInputError(
                f"{path} holds {names}; expected an array named 'images'. Fix: np.savez(path, images=..., seeds=...)."
            )
        try:  # an .npz is read member by member: a damaged member shows only now (bad CRC, truncated data)
            return loaded[key], (loaded["seeds"] if "seeds" in names else None)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise SearchInputError(f"cannot read {path} ({error}). Fix: save the samples again.") from error


def run(args: argparse.Namespace) -> int:
    from mnistmem import copies, tables
    from mnistmem.data import load_mnist
    from mnistmem.neighbors import NeighborsInputError

    for option, target in (("--out", args.out), ("--baseline", args.baseline)):
        if target is not None and target.is_dir():
            raise SearchInputError(f"{option} {target} is a folder. Fix: name a file, e.g. {target / 'table.npz'}")
    if args.k < 50:
        raise SearchInputError(f"--k must be at least 50 (Carlini's criterion uses 50), got {args.k}")
    images, seeds = read_samples(args.samples)
    baseline = None
    if args.baseline is not None and args.baseline.is_file():  # read before the search, so a bad file costs nothing
        try:
            baseline = tables.load_table(args.baseline)
        except tables.TableFormatError as error:
            raise SearchInputError(f"--baseline: {error}") from error
    train, _ = load_mnist("train")
    test, _ = load_mnist("test")
    out = args.out or args.samples.with_suffix(".table.npz")
    try:
        table = copies.score_samples(
            images,
            seeds,
            train,
            None if args.no_ct else test,
            k=args.k,
            device=args.device,
            name=args.samples.name,
            progress=True,
        )
    except NeighborsInputError as error:
        raise SearchInputError(f"{args.samples}: {error}") from error
    tables.save_table(table, out)
    print(f"{len(table)} samples searched against {len(train)} training images; table written to {out}")
    if "c_t" in table.meta:
        print(f"Meehan's C_T = {table.meta['c_t']['c_t']:+.2f}  (<< 0: copying; ~0: like held-out data)")
    if args.baseline is not None:
        if baseline is None:
            baseline = copies.baseline_table(test, train, k=args.k, device=args.device, progress=True)
            tables.save_table(baseline, args.baseline)
        print(f"\n{'criterion':15s} {'threshold':>9s} {'rate [95% CI]':>26s} {'MNIST baseline':>26s} {'excess':>8s}")
        for row in copies.summarize(table, baseline):
            print(
                f"{row['criterion']:15s} {row['threshold']:9.3f} "
                f"{row['rate']:8.2%} [{row['ci_low']:6.2%},{row['ci_high']:6.2%}] "
                f"{row['baseline_rate']:8.2%} [{row['baseline_ci_low']:6.2%},{row['baseline_ci_high']:6.2%}] "
                f"{row['excess']:+8.2%}"
            )
    return 0
