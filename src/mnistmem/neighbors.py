"""Exact nearest training images for MNIST-sized images, fast and in bounded memory.

`knn(queries, reference, k)` returns, for every query image, its `k` nearest reference images under the
Euclidean distance in [0,1] pixel units, exactly as a float64 brute force would (ties broken by the lower
reference index). "Exact" is meant literally: the book counts copies across *all* 60,000 training images,
so an approximate search that misses a neighbour would misstate a count.

Why it is exact although it uses float32 or int8 arithmetic
-----------------------------------------------------------
Pixels are bytes. Shifted by -128 they lie in [-128, 127]: int8. Every product of two shifted pixels is an
integer of magnitude <= 128² and every partial sum of a 784-term dot product has magnitude
<= 784·128² = 12,845,056 < 2²⁴. So an int8 matrix product with int32 accumulation (`torch._int_mm`, which
runs on AMX or VNNI units) is exact, and so is a float32 product (every such integer is a float32) whatever
the summation order or blocking of the BLAS (or GPU) kernel. Squared distances then follow exactly in int64:
||a-b||² = ||a'||² + ||b'||² - 2·a'·b' (a' = a - 128).

Why it is fast
--------------
A full 784-dimensional product for every pair costs about as much as faiss. Instead, `knn` first screens
with a *lower bound* on the distance that needs only 128 dimensions: with P the projection onto the
reference set's top principal components and r(x) the residual of x outside them,
    ||a-b||² = ||P(a-b)||² + ||r(a)-r(b)||² >= ||P(a-b)||² + (||r(a)|| - ||r(b)||)²,
which is the squared Euclidean distance between the 128-dimensional vectors z(x) = [P(x-μ), ||r(x)||].
For each query the candidates with the smallest bound are re-ranked with exact integer distances, and the
result is *certified*: if the k-th exact distance is below the bound of every candidate left out (less a
rigorous allowance for rounding), no reference image outside the candidates can be closer. Rows that cannot
be certified are searched again with more candidates, and finally by the exact full product. This is the
classical "filter and refine" scheme of exact similarity search (e.g. Seidl & Kriegel, "Optimal multi-step
k-nearest neighbor search", SIGMOD 1998), with PCA as the filter.

The kernel is picked by the hardware (`choose_method`):
* "direct-int8": the full exact product in int8 with int32 accumulation, `torch._int_mm`, where int8
  matrix products are fast — measured once per process on CPUs with AMX or VNNI. No screen is needed: on
  an Intel Xeon with AMX (2 threads, 2026-12-01) the whole 10,000 × 60,000 × 784 product took 1.3-2.3 s
  (the machine's speed varied by half between runs), and the search 2.3-2.7 s including setup: 9.2-9.6×
  faiss `IndexFlatL2` measured in the same runs, against 3.6-4.2× for the float32 screen
  (bench/neighbors.py, bench/results/neighbors-intel-xeon-amx.json). An int8 *screen*
  (the PCA bound below on an int8 grid) was tried and dropped: int8 products of 128 dimensions ran
  slower per operation, and the rounding loosened the bound until most rows needed a second pass.
* "screen": the PCA bound in float32, loosened by a rigorous float32 rounding allowance. The CPU default
  elsewhere (an AMD EPYC with AVX2 only ran `torch._int_mm` through a slow fallback: ~300 s for
  10k×60k against ~5 s in float32).
* "direct": the full product in float32; on CUDA, and for small jobs.

Selecting the smallest keys of each row is done with block minima (`_smallest`) rather than a
full `torch.topk` over 60,000 columns, which measured 45% of the search time on the Xeon.

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


def _shifted_int8(images_u8: np.ndarray, device: torch.device) -> torch.Tensor:
    """Bytes as int8 [N, 784] shifted by -128 (flipping the top bit of a byte subtracts 128 from it)."""
    flat = torch.from_numpy(np.ascontiguousarray(images_u8).reshape(len(images_u8), PIXELS).copy())
    return (flat.view(torch.int8) ^ torch.tensor(-128, dtype=torch.int8)).to(device)


def _int8_sq_norms(shifted: torch.Tensor) -> torch.Tensor:
    """Exact ||x'||² as int64 of int8 rows: summed in float32, exact because every partial sum is an integer
    below 784·128² < 2²⁴ (and measured 2× faster than an integer reduction on the Xeon)."""
    return shifted.to(torch.float32).square_().sum(1).to(torch.int64)


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


#: columns per block in `_smallest` (rows with fewer than 4·k blocks go to a plain topk)
_BLOCK = 32


def pixel_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact pixel distance ([0,1] units) between the images of `a` and `b`, row by row; `b` may be one image,
    then compared with every row of `a`. Sums of squared byte differences are integers, so this is exact."""
    difference = np.asarray(a, np.int64) - np.asarray(b, np.int64)
    return np.sqrt((difference * difference).reshape(len(difference), -1).sum(1)) / 255.0


def _smallest(values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k smallest entries of each row as (values, column indices), in no particular order.

    Returns the same multiset of values as `torch.topk(values, k, largest=False)`, found through block
    minima: split each row into blocks of `_BLOCK` columns, keep the k blocks with the smallest minima and
    take the k smallest entries among them. Exact: each kept block holds an entry <= τ (the largest kept
    minimum), so the k-th smallest kept entry is <= τ, while every entry of a dropped block is >= its
    minimum >= τ. It reads each value about twice instead of sorting every row.
    """
    rows, n = values.shape
    blocks = n // _BLOCK
    if blocks < 4 * k or rows == 0:
        return torch.topk(values, k, dim=1, largest=False, sorted=False)
    values = values.contiguous()
    body = values.as_strided((rows, blocks, _BLOCK), (n, _BLOCK, 1))
    _, kept = torch.topk(body.amin(2), k, dim=1, largest=False, sorted=False)
    gathered = body.gather(1, kept[:, :, None].expand(-1, -1, _BLOCK)).reshape(rows, k * _BLOCK)
    offsets = torch.arange(_BLOCK, device=values.device)
    columns = (kept[:, :, None] * _BLOCK + offsets).reshape(rows, k * _BLOCK)
    if n > blocks * _BLOCK:  # the last, partial block: always a candidate
        gathered = torch.cat([gathered, values[:, blocks * _BLOCK :]], 1)
        tail = torch.arange(blocks * _BLOCK, n, device=values.device).expand(rows, -1)
        columns = torch.cat([columns, tail], 1)
    best, position = torch.topk(gathered, k, dim=1, largest=False, sorted=False)
    return best, columns.gather(1, position)


_int8_fast_cache: dict[str, bool] = {}


def int8_matmul_is_fast() -> bool:
    """Whether this CPU multiplies int8 matrices (`torch._int_mm`) clearly faster than float32 ones.

    Only CPUs with AMX or VNNI units are candidates; on those it is *measured* once per process (a
    256×784×4,096 product, best of three, against the same product in float32) and int8 counts as fast
    when it takes under two thirds of the float32 time. Without such units `torch._int_mm` falls back to
    a slow kernel (an AVX2-only EPYC: ~60× slower than float32), so it is not even tried.
    """
    if "cpu" in _int8_fast_cache:
        return _int8_fast_cache["cpu"]
    fast = False
    try:
        units = torch.cpu._is_amx_tile_supported() or torch.cpu._is_vnni_supported()
    except AttributeError:  # older torch
        units = False
    if units and hasattr(torch, "_int_mm"):
        import time

        generator = torch.Generator().manual_seed(0)
        a = torch.randint(-128, 128, (256, 784), dtype=torch.int8, generator=generator)
        b = torch.randint(-128, 128, (4096, 784), dtype=torch.int8, generator=generator)
        af, bf = a.float(), b.float()

        def best_of_three(fn) -> float:
            fn()
            times = []
            for _ in range(3):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            return min(times)

        with torch.inference_mode():
            int8_time = best_of_three(lambda: torch._int_mm(a, b.T))
            float_time = best_of_three(lambda: af @ bf.T)
        fast = int8_time < float_time * 2 / 3
    _int8_fast_cache["cpu"] = fast
    return fast


METHODS = ("auto", "direct-int8", "screen", "direct")


def choose_method(n_queries: int, n_reference: int, k: int, device: torch.device | str, prepared: bool = False) -> str:
    """The search kernel "auto" picks: "direct" on CUDA; on a CPU whose int8 matrix products are fast
    (`int8_matmul_is_fast`: AMX or VNNI, measured) the exact int8 product "direct-int8" for every job;
    elsewhere the float32 "screen" for large jobs and "direct" for small ones.

    The screen costs ~1-3 s to prepare (then cached): worth it from a few thousand queries on, or at once
    when it is already `prepared` for this reference.
    """
    device = torch.device(device)
    if device.type != "cpu":
        return "direct"
    if int8_matmul_is_fast():
        return "direct-int8"
    big = n_reference >= 4096 and 8 * k + 512 < n_reference // 2
    return "screen" if big and (n_queries >= 2048 or prepared) else "direct"


# ------------------------------------------------------------------------------------------- the search
class _Reference:
    """Everything about the reference set that the search precomputes once for one `method`."""

    def __init__(self, reference_u8: np.ndarray, device: torch.device, method: str) -> None:
        self.n = len(reference_u8)
        self.device = device
        self.method = method
        if method == "direct-int8":  # straight from the bytes: no float copy is needed
            int8 = _shifted_int8(reference_u8, device)
            self.int8_t = int8.T  # a transposed view: the layout torch._int_mm takes fastest here
            self.norms_i32 = _int8_sq_norms(int8).to(torch.int32)  # <= 784·128² < 2³¹
            return
        self.shifted = _shifted(reference_u8, device)  # [N, 784] float32, exact
        self.norms = _sq_norms(self.shifted)  # [N] int64
        self.norms_f = self.norms.to(torch.float32)
        if method == "screen":
            self._fit_screen()

    def _fit_screen(self) -> None:
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


#: the last prepared reference, keyed by (SHA-256 of its bytes, device, method): the experiments search the
#: same 60,000 training images again and again, and preparing the screen costs about a second on a CPU.
_reference_cache: dict[tuple[str, str, str], _Reference] = {}


def _cache_key(reference_u8: np.ndarray, device: torch.device, method: str) -> tuple[str, str, str]:
    return (hashlib.sha256(reference_u8.tobytes()).hexdigest(), str(device), method)


def _prepared(reference_u8: np.ndarray, device: torch.device, method: str) -> _Reference:
    key = _cache_key(reference_u8, device, method)
    if key not in _reference_cache:
        _reference_cache.clear()
        _reference_cache[key] = _Reference(reference_u8, device, method)
    return _reference_cache[key]


def _select(keys: torch.Tensor, idx: torch.Tensor, k: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best (key, index) pairs per row, ordered by key then index (exact int64 arithmetic)."""
    combined = keys * n + idx
    best = torch.sort(_smallest(combined, k)[0], dim=1).values
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


class _FloatScreen:
    """The float32 screen of one chunk: s_j = ||z_j||² - 2 z_q·z_j and its rigorous left-out bound."""

    def __init__(self, qs: torch.Tensor, ref: _Reference) -> None:
        zq64 = ref.screen_vectors(qs)
        self.zq_norms = (zq64 * zq64).sum(1)
        # The per-query constant ||z_q||² does not change the order. float32 error of s_j (γ_129 bound, the
        # cast of z to float32, one more rounding for the addition) < 2e-5·(||z_q||² + 2 max||z_j||²).
        self.values = torch.mm(zq64.to(torch.float32), ref.z.T).mul_(-2.0).add_(ref.z_norms_f)
        self.slack = _SCREEN_RELATIVE_SLACK * (self.zq_norms + 2 * ref.max_z_norm) + 1.0

    def left_out_bound(self, rows: torch.Tensor, largest_kept: torch.Tensor) -> torch.Tensor:
        """A lower bound (squared byte units, float64) on the exact distance of every image left out."""
        return self.zq_norms[rows] + largest_kept.to(torch.float64) - self.slack[rows]


def _search_chunk(qs: torch.Tensor, ref: _Reference, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest (squared byte distance int64, index int64) for one chunk of shifted queries
    (int8 for "direct-int8", float32 otherwise)."""
    if ref.method == "direct-int8":
        return _direct_int8(qs, _int8_sq_norms(qs), ref, k)
    q_norms = _sq_norms(qs)
    if ref.method == "direct":
        return _direct(qs, q_norms, ref, k)
    screen = _FloatScreen(qs, ref)
    d2 = torch.empty((len(qs), k), dtype=torch.int64, device=qs.device)
    ids = torch.empty_like(d2)
    todo = torch.arange(len(qs), device=qs.device)
    for step in _CANDIDATE_STEPS:
        kc = min(step(k), ref.n)
        if kc >= ref.n // 2:
            break
        rows = screen.values if len(todo) == len(qs) else screen.values[todo]
        vals, cand = _smallest(rows, kc)
        d, i = _rerank(qs[todo], q_norms[todo], ref, cand, k)
        # Everything left out has a screen value >= the largest kept one, hence an exact distance >= the
        # bound. Certified when that exceeds the k-th exact distance.
        ok = d[:, -1].to(torch.float64) < screen.left_out_bound(todo, vals.max(1).values)
        d2[todo[ok]], ids[todo[ok]] = d[ok], i[ok]
        todo = todo[~ok]
        if len(todo) == 0:
            return d2, ids
    d, i = _exact_rows(qs[todo], q_norms[todo], ref, k)
    d2[todo], ids[todo] = d, i
    return d2, ids


def _direct_int8(qs: torch.Tensor, q_norms: torch.Tensor, ref: _Reference, k: int):
    """Full exact product in int8 with int32 accumulation (AMX/VNNI): the keys are exact integers.

    key_j = ||b_j'||² - 2a'·b_j' orders the reference like the distance. The k + 16 smallest keys are kept;
    the k best by (key, index) among them are the global k best unless the k-th key equals the largest kept
    one (a tie that may continue outside), in which case the row is selected again from all keys.
    """
    keys = torch._int_mm(qs, ref.int8_t)
    torch.add(ref.norms_i32, keys, alpha=-2, out=keys)  # one pass, in place
    kc = min(k + 16, ref.n)
    vals, cand = _smallest(keys, kc)
    d, i = _select(vals.to(torch.int64), cand, k, ref.n)
    if kc < ref.n:
        tied = torch.nonzero(d[:, -1] >= vals.max(1).values)[:, 0]
        if len(tied):
            full_idx = torch.arange(ref.n, device=qs.device).expand(len(tied), -1)
            d[tied], i[tied] = _select(keys[tied].to(torch.int64), full_idx, k, ref.n)
    return d + q_norms[:, None], i


def _direct(qs: torch.Tensor, q_norms: torch.Tensor, ref: _Reference, k: int):
    """Full exact product; float32 keys (one rounding of an exact integer) pick candidates, int64 decides."""
    dots = qs @ ref.shifted.T  # exact integers in float32
    keys = torch.sub(ref.norms_f[None, :], dots, alpha=2.0)  # ||b'||² - 2a'·b', |error| <= 4
    kc = min(k + 16, ref.n)
    vals, cand = _smallest(keys, kc)
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

    Sorted by (distance, index). `method`: "direct-int8" (full exact product in int8 on AMX/VNNI units),
    "screen" (PCA lower bound in float32 + exact re-ranking), "direct" (full exact product in float32), or
    "auto" (`choose_method`: the hardware's fastest for the job). Every method returns the same answer.
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
    if method not in METHODS:
        raise NeighborsInputError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}.")
    dev = pick_device(device)
    if method == "direct-int8" and dev.type != "cpu":
        raise NeighborsInputError(f"method 'direct-int8' runs on the CPU only, not {dev}. Fix: use 'direct'.")
    if method == "auto":
        prepared = _cache_key(r, dev, "screen") in _reference_cache
        method = choose_method(len(q), len(r), k, dev, prepared=prepared)
    if chunk_size is None:
        chunk_size = max(16, min(4096, (64 * 2**20) // max(len(r), 1)))
        if method == "direct-int8":  # int32 keys of ~120 MB per chunk stay in a large L3 between passes
            chunk_size = max(16, min(4096, (32 * 2**20) // max(len(r), 1)))
        if dev.type == "cuda":
            chunk_size = max(16, min(16384, (1024 * 2**20) // max(len(r), 1)))
    if progress is None:
        progress = len(q) * len(r) >= 2 * 10**9
    out_d = np.empty((len(q), k), dtype=np.int64)
    out_i = np.empty((len(q), k), dtype=np.int64)
    from tqdm.auto import tqdm

    with _exact_float32(), torch.inference_mode():
        ref = _prepared(r, dev, method)
        bar = tqdm(total=len(q), desc="nearest neighbours", unit="img", disable=not progress, leave=False)
        for start in range(0, len(q), chunk_size):
            chunk = q[start : start + chunk_size]
            qs = _shifted_int8(chunk, dev) if method == "direct-int8" else _shifted(chunk, dev)
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
    "METHODS",
    "NeighborsInputError",
    "choose_method",
    "int8_matmul_is_fast",
    "knn",
    "knn_squared",
    "squared_byte_distances",
    "to_uint8",
]
