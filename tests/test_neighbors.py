"""Exactness of `mnistmem.neighbors` against a float64 brute force, on random and adversarial inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mnistmem.data import load_mnist
from mnistmem.neighbors import NeighborsInputError, knn, knn_squared, squared_byte_distances, to_uint8


def brute_force(queries: np.ndarray, reference: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 Euclidean distances in [0,1] units; ties broken by the lower reference index."""
    q = queries.reshape(len(queries), -1).astype(np.float64) / 255
    r = reference.reshape(len(reference), -1).astype(np.float64) / 255
    d = np.stack([np.sqrt(((r - row) ** 2).sum(1)) for row in q])
    order = np.lexsort((np.broadcast_to(np.arange(len(r)), d.shape), d), axis=1)[:, :k]
    return np.take_along_axis(d, order, 1), order


@pytest.fixture(scope="module")
def mnist():
    train, _ = load_mnist("train")
    test, _ = load_mnist("test")
    return train, test


@pytest.mark.parametrize("method", ["direct", "screen", "direct-int8"])
def test_matches_brute_force_on_mnist(mnist, method):
    train, test = mnist
    reference, queries = train[:5000], test[:150]
    d, i = knn(queries, reference, k=50, method=method)
    bd, bi = brute_force(queries, reference, 50)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=0, atol=1e-12)
    assert d.dtype == np.float64 and i.dtype == np.int64 and d.shape == (150, 50)


@pytest.mark.parametrize("method", ["direct", "screen", "direct-int8"])
def test_random_bytes_including_extreme_values(method):
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 256, (4200, 28, 28), dtype=np.uint8)
    reference[:100] = rng.choice(np.array([0, 255], np.uint8), (100, 28, 28))  # extremes: largest products
    queries = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    queries[:5] = 255
    queries[5:10] = 0
    d, i = knn(queries, reference, k=7, method=method)
    bd, bi = brute_force(queries, reference, 7)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["direct", "screen", "direct-int8"])
def test_ties_duplicates_and_all_black(mnist, method):
    train, _ = mnist
    reference = train[:4500].copy()
    reference[[10, 700, 3000, 4499]] = 0  # several all-black images
    reference[[20, 21, 2000, 4000]] = reference[5]  # duplicates of image 5 (lower index first)
    # equidistant images: one pixel set to the same value at different places on black
    for n, j in enumerate(range(4100, 4160)):
        reference[j] = 0
        reference[j].flat[n * 7] = 90
    queries = np.stack(
        [np.zeros((28, 28), np.uint8), reference[5], reference[4100]] + [train[4600 + j] for j in range(5)]
    )
    d, i = knn(queries, reference, k=70, method=method)
    bd, bi = brute_force(queries, reference, 70)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=0, atol=1e-12)
    assert list(i[0, :4]) == [10, 700, 3000, 4499] and (d[0, :4] == 0).all()
    assert list(i[1, :5]) == [5, 20, 21, 2000, 4000]
    # many rows tie at the k-th place: the lowest indices win
    assert (np.diff(d, axis=1) >= 0).all()


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.float32])
@pytest.mark.parametrize(("rows", "columns", "k"), [(7, 5000, 50), (3, 4133, 196), (5, 300, 10), (2, 6400, 1)])
def test_block_minima_select_what_topk_selects(dtype, rows, columns, k):
    """`_smallest` returns the same k smallest values as torch.topk, with columns that hold them,
    including rows full of ties and a partial last block."""
    from mnistmem.neighbors import _smallest

    generator = torch.Generator().manual_seed(rows * columns + k)
    values = torch.randint(0, 50, (rows, columns), generator=generator).to(dtype)  # many ties
    values[0] = 7  # a row of one value
    values[-1, -3:] = -1  # the smallest values in the partial last block
    got, where = _smallest(values, k)
    expected = torch.topk(values, k, dim=1, largest=False).values
    assert torch.equal(torch.sort(got, 1).values, torch.sort(expected, 1).values)
    assert torch.equal(values.gather(1, where), got)
    assert all(len(set(row.tolist())) == k for row in where)  # distinct columns


def test_auto_picks_the_kernel_the_hardware_makes_fast(monkeypatch):
    """Both branches, whatever this CPU: int8 where int8 products are fast, else the float32 screen."""
    from mnistmem import neighbors

    monkeypatch.setitem(neighbors._int8_fast_cache, "cpu", True)
    assert neighbors.choose_method(10_000, 60_000, 50, "cpu") == "direct-int8"
    assert neighbors.choose_method(100, 3_000, 50, "cpu") == "direct-int8"  # no setup cost: every job
    monkeypatch.setitem(neighbors._int8_fast_cache, "cpu", False)
    assert neighbors.choose_method(10_000, 60_000, 50, "cpu") == "screen"
    assert neighbors.choose_method(100, 60_000, 50, "cpu") == "direct"  # too few queries to prepare a screen
    assert neighbors.choose_method(100, 60_000, 50, "cpu", prepared=True) == "screen"
    assert neighbors.choose_method(10_000, 3_000, 50, "cpu") == "direct"
    assert neighbors.choose_method(10_000, 60_000, 50, "cuda") == "direct"
    assert isinstance(neighbors.int8_matmul_is_fast(), bool)


def test_squared_distances_are_exact_integers(mnist):
    train, test = mnist
    d2 = squared_byte_distances(test[:20], train[:300])
    expected = ((test[:20, None].astype(np.int64) - train[None, :300].astype(np.int64)) ** 2).sum((2, 3))
    np.testing.assert_array_equal(d2, expected)
    s2, si = knn_squared(test[:20], train[:300], k=5)
    np.testing.assert_array_equal(s2, np.take_along_axis(expected, si, 1))


def test_float_queries_are_quantised_like_a_png():
    x = np.zeros((3, 28, 28), np.float32)
    x[0, 0, 0] = 0.5 / 255  # exactly half way: rounds up, as torchvision.utils.save_image does
    x[1, 0, 0] = 1.0
    x[2, 0, 0] = 0.49 / 255
    u = to_uint8(x)
    assert u.dtype == np.uint8 and u[0, 0, 0] == 1 and u[1, 0, 0] == 255 and u[2, 0, 0] == 0
    assert to_uint8(x[:, None]).shape == (3, 28, 28)  # channel axis accepted
    reference = np.stack([u[0], u[1]])
    _, i = knn(x, reference, k=1)
    assert list(i[:, 0]) == [0, 1, 0]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((0, 28, 28), np.uint8), "empty"),
        (np.zeros((2, 784), np.uint8), "shape"),
        (np.full((2, 28, 28), np.nan, np.float32), "NaN"),
        (np.full((2, 28, 28), 1.5, np.float32), "outside"),
        (np.full((2, 28, 28), 300, np.int64), "outside"),
        (np.array([[["a"] * 28] * 28]), "dtype"),
    ],
)
def test_bad_input_names_the_problem(bad, message):
    with pytest.raises(NeighborsInputError, match=message):
        knn(bad, np.zeros((5, 28, 28), np.uint8), k=1)


def test_bad_input_names_the_samples():
    x = np.zeros((5, 28, 28), np.float32)
    x[3, 4, 4] = np.nan
    with pytest.raises(NeighborsInputError, match=r"first: 3\b"):
        knn(x, np.zeros((5, 28, 28), np.uint8), k=1)
    with pytest.raises(NeighborsInputError, match="k=9 exceeds"):
        knn(np.zeros((1, 28, 28), np.uint8), np.zeros((5, 28, 28), np.uint8), k=9)


_MEMORY_PROBE = """
import json, resource, sys, numpy as np
from mnistmem.neighbors import knn
n = int(sys.argv[1])
rng = np.random.default_rng(0)
reference = rng.integers(0, 256, (512, 28, 28), dtype=np.uint8)
knn(reference[:64], reference, k=5)  # warm up allocators and imports
queries = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
d, i = knn(queries, reference, k=5, progress=False)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kb": after - before}))
"""


def _peak_growth_mb(n: int) -> float:
    src = str(Path(__file__).resolve().parents[1] / "src")
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(n)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["growth_kb"] / 1024


@pytest.mark.slow
def test_peak_memory_does_not_scale_with_queries():
    small, large = _peak_growth_mb(10_000), _peak_growth_mb(100_000)
    # 90k more queries must cost no more than their outputs (90k × 5 × 16 B ≈ 7 MB) plus a small slack;
    # a search that held all query-by-reference distances would need 90k × 512 × 8 B ≈ 370 MB more.
    assert large - small < 7 + 40, (small, large)


def test_pixel_distances_row_by_row_and_to_one_image_equal_the_exact_squared_distances():
    from mnistmem.neighbors import pixel_distances

    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    b = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    exact = np.sqrt(np.diag(squared_byte_distances(a, b))) / 255.0
    np.testing.assert_array_equal(pixel_distances(a, b), exact)
    np.testing.assert_array_equal(pixel_distances(a, b[0]), np.sqrt(squared_byte_distances(a, b[:1])[:, 0]) / 255.0)
    assert pixel_distances(a, a).max() == 0.0
