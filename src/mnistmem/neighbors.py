"""Exact nearest training images for MNIST-sized images, fast and in bounded memory.

`knn(queries, reference, k)` returns, for every query image, its `k` nearest reference images under the
Euclidean distance in [0,1] pixel units, exactly as a float64 brute force would (ties broken by the lower
reference index). "Exact" is meant literally: the book counts copies across *all* 60,000 training images,
so an approximate search that misses a neighbour would misstate a count.

Why it is exact although it uses float32 arithmetic
----------------------------------------------------
Pixels are bytes. Shifted by -128 they lie in [-128, 127], so every product of two shifted pixels is an
integer of magnitude <= 128² and every partial sum of a 784-term dot product has magnitude
<= 784·128² = 12,845,056 < 2²⁴. Every such integer is representable in float32, so a float32 matrix
product of shifted images is *exact* whatever the summation order or blocking of the BLAS (or GPU) kernel.
Squared distances then follow exactly in int64: ||a-b||² = ||a'||² + ||b'||² - 2·a'·b' (a' = a - 128).
(`torch._int_mm` would do the same in int8 but falls back to a slow kernel on CPUs without VNNI; this
machine measured ~300 s for 10k×60k, against ~5 s for float32.)

Why it is fast
--------------
On the CPU a full 784-dimensional product for every pair costs as much as faiss. Instead, `knn` first
screens with a *lower bound* on the distance that needs only 128 dimensions: with P the projection onto the
reference set's top principal components and r(x) the residual of x outside them,
    ||a-b||² = ||P(a-b)||² + ||r(a)-r(b)||² >= ||P(a-b)||² + (||r(a)|| - ||r(b)||)²,
which is the squared Euclidean distance between the 128-dimensional vectors z(x) = [P(x-μ), ||r(x)||].
For each query the candidates with the smallest bound are re-ranked with exact integer distances, and the
result is *certified*: if the k-th exact distance is below the bound of every candidate left out (minus a
rigorous allowance for float32 rounding), no reference image outside the candidates can be closer. Rows
that cannot be certified are searched again with more candidates, and finally by the exact full product.
This is the classical "filter and refine" scheme of exact similarity search (e.g. Seidl & Kriegel,
"Optimal multi-step k-nearest neighbor search", SIGMOD 1998), with PCA as the filter.

On CUDA (and for small references) the exact full product is used directly.

Generated images are judged as files
------------------------------------
Float images in [0,1] are quantised to bytes with `to_uint8`, the rule of `torchvision.utils.save_image`
(floor(255·x + 0.5), i.e. round half up): a generated image is judged as the PNG file it would become.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterator

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from mnistmem.devices import pick_device

IMAGE_SHAPE = (28, 28)
PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
#: largest squared byte distance between two 28×28 images: 784·255²
MAX_SQUARED_BYTE_DISTANCE = PIXELS * 255 * 255
_SHIFT = 128.0
#: principal components of the screening bound; with the residual norm, 128 dimensions (GEMM-friendly)
SCREEN_COMPONENTS = 127
#: candidates re-ranked exactly per query, as a multiple of k plus a constant, then widened on failure
_CANDIDATE_STEPS = (lambda k: 2 * k + 96, lambda k: 8 * k + 512)
#: relative allowance for float32 rounding in the screening bound (rigorous bound is ~2e-5, see _screen)
_SCREEN_RELATIVE_SLACK = 1e-4
#: absolute allowance (in squared byte units) for the single rounding of exact float32 keys
_KEY_SLACK = 8.0


class NeighborsInputError(ValueError):
    """Images given to the search are not what it needs; the message says which ones and how to fix it."""


# ------------------------------------------------------------------------------------------- input checks
def to_uint8(images: np.ndarray | torch.Tensor, name: str = "images") -> np.ndarray:
    """Return `images` as a C-contiguous uint8 array [N, 28, 28], checking shape, dtype and values.

    Accepts uint8 images, or floats in [0, 1] (any float dtype, NumPy or torch, optionally with a channel
    axis [N, 1, 28, 28]). Floats are quantised as `torchvision.utils.save_image` does before writing a PNG:
    `floor(255·x + 0.5)`, computed in float64 — so a generated image is judged as the file it would become.
    Empty input, NaN or infinite values, values outside [0, 1] and wrong shapes raise `NeighborsInputError`
    naming the offending samples.
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    array = np.asarray(images)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3 or tuple(array.shape[1:]) != IMAGE_SHAPE:
        raise NeighborsInputError(
            f"{name} must have shape [N, 28, 28] (or [N, 1, 28, 28]), got {list(array.shape)}. "
            "Fix: reshape to one 28×28 image per row, e.g. images.reshape(-1, 28, 28)."
        )
    if array.shape[0] == 0:
        raise NeighborsInputError(f"{name} is empty (0 images). Fix: pass at least one image.")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise NeighborsInputError(
            f"{name} has dtype {array.dtype}; expected uint8 bytes or floats in [0, 1]. "
            "Fix: convert with images.astype(np.uint8) or images.astype(np.float32) / 255."
        )
    if np.issubdtype(array.dtype, np.integer):
        bad = np.flatnonzero(((array < 0) | (array > 255)).reshape(len(array), -1).any(1))
        if bad.size:
            raise NeighborsInputError(
                f"{name} has integer values outside [0, 255] in {bad.size} samples (first: {_head(bad)}). "
                "Fix: clip or rescale to bytes."
            )
        return np.ascontiguousarray(array.astype(np.uint8))
    flat = array.reshape(len(array), -1).astype(np.float64)
    nonfinite = np.flatnonzero(~np.isfinite(flat).all(1))
    if nonfinite.size:
        raise NeighborsInputError(
            f"{name} has NaN or infinite values in {nonfinite.size} samples (first: {_head(nonfinite)}). "
            "Fix: drop or regenerate those samples."
        )
    bad = np.flatnonzero(((flat < 0) | (flat > 1)).any(1))
    if bad.size:
        raise NeighborsInputError(
            f"{name} has float values outside [0, 1] in {bad.size} samples (first: {_head(bad)}; "
            f"range {flat.min():.3g}..{flat.max():.3g}). Fix: map the model's output to [0, 1] first "
            "(e.g. (x + 1) / 2 for tanh outputs), or pass uint8 bytes."
        )
    return np.floor(flat * 255.0 + 0.5).astype(np.uint8).reshape(array.shape)


def _head(indices: np.ndarray, n: int = 10) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:n])
    return shown + (", ..." if len(indices) > n else "")


# ----------------------------------------------------------------------------------------- exact kernels
@contextlib.contextmanager
def _exact_float32() -> Iterator[None]:
    """Forbid reduced-precision float32 matmuls (TF32 on CUDA, bf16 on oneDNN) inside the block."""
    precision = torch.get_float32_matmul_precision()
    cuda_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(precision)
        torch.backends.cuda.matmul.allow_tf32 = cuda_tf32


def _shifted(images_u8: np.ndarray, device: torch.device) -> torch.Tensor:
    """Bytes as float32 [N, 784] shifted by -128: products and all partial sums stay exact (< 2²⁴)."""
    flat = torch.from_numpy(np.ascontiguousarray(images_u8).reshape(len(images_u8), PIXELS).copy())
    return flat.to(device).to(torch.float32).sub_(_SHIFT)


def _sq_norms(shifted: torch.Tensor) -> torch.Tensor:
    """Exact ||x'||² as int64 (row sums of integers < 2²⁴, each term exact)."""
    return (shifted * shifted).to(torch.int64).sum(1)


def squared_byte_distances(queries: np.ndarray, reference: np.ndarray, device: str | None = None) -> np.ndarray:
    """Exact squared Euclidean distances in byte units, int64 [Q, N] (divide by 255² for [0,1] units).

    Dense: memory grows with Q·N, so this is for small sets and tests; `knn` is the bounded-memory search.
    """
    q = to_uint8(queries, "queries")
    r = to_uint8(reference, "reference")
    dev = pick_device(device)
    with _exact_float32():
        qs, rs = _shifted(q, dev), _shifted(r, dev)
        dots = (qs @ rs.T).to(torch.int64)
        d2 = _sq_norms(qs)[:, None] + _sq_norms(rs)[None, :] - 2 * dots
    return d2.cpu().numpy()


# ------------------------------------------------------------------------------------------- the search
class _Reference:
    """Everything about the reference set that the search precomputes once."""

    def __init__(self, reference_u8: np.ndarray, device: torch.device, screen: bool) -> None:
        self.n = len(reference_u8)
        self.device = device
        self.shifted = _shifted(reference_u8, device)  # [N, 784] float32, exact
        self.norms = _sq_norms(self.shifted)  # [N] int64
        self.norms_f = self.norms.to(torch.float32)
        self.screen = screen
        if screen:
            self._fit_screen(reference_u8)

    def _fit_screen(self, reference_u8: np.ndarray) -> None:
        """PCA basis (float64, orthonormal) and the 128-dimensional screening vectors z of the reference."""
        self.mean = self.shifted.to(torch.float64).mean(0)
        # Only the basis's quality (how tight the bound is) depends on the covariance, not correctness:
        # a float32 estimate from at most 16,384 evenly spaced images is plenty.
        sample = self.shifted[:: max(1, self.n // 16384)] - self.mean.to(torch.float32)
        cov = (sample.T @ sample).to(torch.float64).cpu().numpy()
        # One LAPACK thread: right after torch's parallel kernels, its OpenMP workers still spin and a
        # multi-threaded eigh then crawls (measured 7 s instead of 0.2 s on 2 cores).
        with threadpool_limits(limits=1):
            _, vectors = np.linalg.eigh(cov)
            m = min(SCREEN_COMPONENTS, PIXELS - 1)
            basis = np.linalg.qr(vectors[:, -m:])[0]  # orthonormal to ~1e-15
        self.basis = torch.from_numpy(np.ascontiguousarray(basis)).to(self.device)
        z = torch.cat([self.screen_vectors(self.shifted[s : s + 8192]) for s in range(0, self.n, 8192)])
        self.z = z.to(torch.float32)
        self.z_norms = (z * z).sum(1)  # float64
        self.z_norms_f = self.z_norms.to(torch.float32)
        self.max_z_norm = float(self.z_norms.max())

    def screen_vectors(self, shifted: torch.Tensor) -> torch.Tensor:
        """z(x) = [P(x-μ), ||r(x)||] in float64: ||z(a)-z(b)|| is a lower bound on ||a-b||."""
        centred = shifted.to(torch.float64) - self.mean
        proj = centred @ self.basis
        residual = ((centred * centred).sum(1) - (proj * proj).sum(1)).clamp_min(0).sqrt()
        return torch.cat([proj, residual[:, None]], 1)


#: the last prepared reference, keyed by (SHA-256 of its bytes, device, screen): the experiments search the
#: same 60,000 training images again and again, and preparing the screen costs about a second on a CPU.
_reference_cache: dict[tuple[str, str, bool], _Reference] = {}


def _cache_key(reference_u8: np.ndarray, device: torch.device, screen: bool) -> tuple[str, str, bool]:
    return (hashlib.sha256(reference_u8.tobytes()).hexdigest(), str(device), screen)


def _prepared(reference_u8: np.ndarray, device: torch.device, screen: bool) -> _Reference:
    key = _cache_key(reference_u8, device, screen)
    if key not in _reference_cache:
        _reference_cache.clear()
        _reference_cache[key] = _Reference(reference_u8, device, screen)
    return _reference_cache[key]


def _select(keys: torch.Tensor, idx: torch.Tensor, k: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best (key, index) pairs per row, ordered by key then index (exact int64 arithmetic)."""
    combined = keys * n + idx
    best = torch.topk(combined, k, dim=1, largest=False, sorted=True).values
    return torch.div(best, n, rounding_mode="floor"), best % n


def _exact_rows(qs: torch.Tensor, q_norms: torch.Tensor, ref: _Reference, k: int):
    """Exact full search for a few query rows: the whole product, then an exact int64 selection."""
    dots = (qs @ ref.shifted.T).to(torch.int64)
    d2 = q_norms[:, None] + ref.norms[None, :] - 2 * dots
    idx = torch.arange(ref.n, device=qs.device).expand_as(d2)
    return _select(d2, idx, k, ref.n)


def _rerank(qs: torch.Tensor, q_norms: torch.Tensor, ref: _Reference, cand: torch.Tensor, k: int):
    """Exact squared distances of each query to its candidates, then the k best by (distance, index).

    The candidate dot products are a sampled dense-dense product (`torch.sparse.sampled_addmm`), which
    computes only the requested entries of qs @ reference.T without gathering reference rows; with shifted
    bytes each entry is an exact float32 integer.
    """
    cand, _ = torch.sort(cand, dim=1)
    rows, width = cand.shape
    crow = torch.arange(0, rows * width + 1, width, device=qs.device)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we use only its sampled product
        warnings.simplefilter("ignore", UserWarning)
        pattern = torch.sparse_csr_tensor(
            crow,
            cand.reshape(-1),
            torch.zeros(rows * width, device=qs.device),
            size=(rows, ref.n),
            check_invariants=False,  # sorted, in-range column indices by construction
        )
    dots = torch.sparse.sampled_addmm(pattern, qs, ref.shifted.T, beta=0.0).values().view(rows, width)
    d2 = q_norms[:, None] + ref.norms[cand] - 2 * dots.to(torch.int64)
    return _select(d2, cand, k, ref.n)


def _search_chunk(qs: torch.Tensor, ref: _Reference, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest (squared byte distance int64, index int64) for one chunk of shifted queries."""
    q_norms = _sq_norms(qs)
    if not ref.screen:
        return _direct(qs, q_norms, ref, k)
    zq64 = ref.screen_vectors(qs)
    zq_norms = (zq64 * zq64).sum(1)
    # s_j = ||z_j||² - 2 z_q·z_j; the per-query constant ||z_q||² does not change the order.
    # float32 error of s_j (γ_129 bound, plus casting z to float32) < 2e-5·(||z_q||² + 2 max||z_j||²).
    screen = torch.addmm(ref.z_norms_f[None, :], zq64.to(torch.float32), ref.z.T, alpha=-2.0)
    slack = _SCREEN_RELATIVE_SLACK * (zq_norms + 2 * ref.max_z_norm) + 1.0
    d2 = torch.empty((len(qs), k), dtype=torch.int64, device=qs.device)
    ids = torch.empty_like(d2)
    todo = torch.arange(len(qs), device=qs.device)
    for step in _CANDIDATE_STEPS:
        kc = min(step(k), ref.n)
        if kc >= ref.n // 2:
            break
        rows = screen if len(todo) == len(qs) else screen[todo]
        vals, cand = torch.topk(rows, kc, dim=1, largest=False, sorted=False)
        d, i = _rerank(qs[todo], q_norms[todo], ref, cand, k)
        # Everything left out has a bound >= the largest candidate bound (topk), hence exact distance >=
        # zq_norm + max(vals) - slack. Certified when that exceeds the k-th exact distance.
        left_out_bound = zq_norms[todo] + vals.max(1).values.to(torch.float64) - slack[todo]
        ok = d[:, -1].to(torch.float64) < left_out_bound
        d2[todo[ok]], ids[todo[ok]] = d[ok], i[ok]
        todo = todo[~ok]
        if len(todo) == 0:
            return d2, ids
    d, i = _exact_rows(qs[todo], q_norms[todo], ref, k)
    d2[todo], ids[todo] = d, i
    return d2, ids


def _direct(qs: torch.Tensor, q_norms: torch.Tensor, ref: _Reference, k: int):
    """Full exact product; float32 keys (one rounding of an exact integer) pick candidates, int64 decides."""
    dots = qs @ ref.shifted.T  # exact integers in float32
    keys = torch.sub(ref.norms_f[None, :], dots, alpha=2.0)  # ||b'||² - 2a'·b', |error| <= 4
    kc = min(k + 16, ref.n)
    vals, cand = torch.topk(keys, kc, dim=1, largest=False, sorted=False)
    exact = q_norms[:, None] + ref.norms[cand] - 2 * dots.gather(1, cand).to(torch.int64)
    d, i = _select(exact, cand, k, ref.n)
    if kc == ref.n:
        return d, i
    ok = (d[:, -1] - q_norms).to(torch.float64) + _KEY_SLACK < vals.max(1).values.to(torch.float64)
    bad = torch.nonzero(~ok)[:, 0]
    if len(bad):
        exact_full = q_norms[bad, None] + ref.norms[None, :] - 2 * dots[bad].to(torch.int64)
        full_idx = torch.arange(ref.n, device=qs.device).expand_as(exact_full)
        d[bad], i[bad] = _select(exact_full, full_idx, k, ref.n)
    return d, i


def knn_squared(
    queries: np.ndarray | torch.Tensor,
    reference: np.ndarray | torch.Tensor,
    k: int = 50,
    device: str | torch.device | None = None,
    chunk_size: int | None = None,
    progress: bool | None = None,
    method: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest reference images as (squared byte distances int64 [Q,k], indices int64 [Q,k]).

    Sorted by (distance, index). `method`: "screen" (PCA lower bound + exact re-ranking; the CPU default
    for references of 4,096+ images with 2,048+ queries or a screen already prepared), "direct" (full
    exact product; the CUDA default), or "auto".
    Memory is bounded by `chunk_size` queries at a time (default: about 256 MB of working arrays), so
    only the returned arrays grow with the number of queries.
    """
    q = to_uint8(queries, "queries")
    r = to_uint8(reference, "reference")
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise NeighborsInputError(f"k must be a positive integer, got {k!r}.")
    k = int(k)
    if k > len(r):
        raise NeighborsInputError(
            f"k={k} exceeds the {len(r)} reference images. Fix: pass k <= {len(r)} or a larger reference."
        )
    if method not in ("auto", "screen", "direct"):
        raise NeighborsInputError(f"method must be 'auto', 'screen' or 'direct', got {method!r}.")
    dev = pick_device(device)
    if method == "auto":
        # The screen costs ~1-3 s to prepare (then cached): worth it from a few thousand queries on.
        big = len(r) >= 4096 and 8 * k + 512 < len(r) // 2
        cached = big and _cache_key(r, dev, True) in _reference_cache
        method = "screen" if dev.type == "cpu" and big and (len(q) >= 2048 or cached) else "direct"
    if chunk_size is None:
        chunk_size = max(16, min(4096, (64 * 2**20) // max(len(r), 1)))
        if dev.type == "cuda":
            chunk_size = max(16, min(16384, (1024 * 2**20) // max(len(r), 1)))
    if progress is None:
        progress = len(q) * len(r) >= 2 * 10**9
    out_d = np.empty((len(q), k), dtype=np.int64)
    out_i = np.empty((len(q), k), dtype=np.int64)
    from tqdm.auto import tqdm

    with _exact_float32(), torch.inference_mode():
        ref = _prepared(r, dev, screen=(method == "screen"))
        bar = tqdm(total=len(q), desc="nearest neighbours", unit="img", disable=not progress, leave=False)
        for start in range(0, len(q), chunk_size):
            qs = _shifted(q[start : start + chunk_size], dev)
            d, i = _search_chunk(qs, ref, k)
            out_d[start : start + len(qs)] = d.cpu().numpy()
            out_i[start : start + len(qs)] = i.cpu().numpy()
            bar.update(len(qs))
        bar.close()
    return out_d, out_i


def knn(
    queries: np.ndarray | torch.Tensor,
    reference: np.ndarray | torch.Tensor,
    k: int = 50,
    device: str | torch.device | None = None,
    chunk_size: int | None = None,
    progress: bool | None = None,
    method: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest reference images of each query: (distances float64 [Q,k], indices int64 [Q,k]).

    Distances are Euclidean in [0,1] pixel units, sqrt(exact integer squared byte distance) / 255, sorted
    ascending by (distance, index) — the same neighbours as a float64 brute force with ties broken by the
    lower reference index. Queries and reference may be uint8 images or floats in [0,1] (quantised by
    `to_uint8`, i.e. judged as the PNG file they would become). See the module docstring for why it is exact.
    """
    d2, idx = knn_squared(queries, reference, k, device, chunk_size, progress, method)
    return np.sqrt(d2.astype(np.float64)) / 255.0, idx


__all__ = [
    "MAX_SQUARED_BYTE_DISTANCE",
    "NeighborsInputError",
    "knn",
    "knn_squared",
    "squared_byte_distances",
    "to_uint8",
]
