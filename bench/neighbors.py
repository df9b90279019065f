"""Benchmark: exact k nearest training images of the 10,000 MNIST test digits among the 60,000 training ones.

Compares `mnistmem.neighbors.knn` — each of its CPU kernels forced in turn, cold (the reference prepared
from scratch) and warm, and the one "auto" picks on this CPU — with faiss-cpu `IndexFlatL2` and
scikit-learn's brute force; prints the CPU model and flags, seconds, pairs per second, peak memory and the
speed ratio to faiss, and checks agreement (every kernel must return identical neighbours). faiss and
scikit-learn work in float32, so on near-ties they may order neighbours differently from the exact search:
distances are compared with a tolerance, and indices only where exact distances are not tied within it.

    PYTHONPATH=src python bench/neighbors.py [--k 50] [--queries 10000] [--gpu] [--skip-sklearn]

Peak memory is the growth of the process's peak RSS (ru_maxrss) during each method, so run order matters
little but a method that reuses freed memory may read low; mnistmem runs first. Timings on a shared machine
are disturbed by other processes.
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", category=UserWarning)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label, fn):
    before = peak_rss_mb()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    return result, seconds, max(0.0, peak_rss_mb() - before)


def agreement(exact_d, exact_i, other_d, other_i, tol=1e-5):
    """(max |distance difference|, share of untied positions whose index agrees, count of mismatches)."""
    max_diff = float(np.abs(exact_d - other_d).max())
    # a position is "tied" when its exact distance is within tol of a neighbouring rank's (k-th: always)
    gaps = np.diff(exact_d, axis=1)
    tied = np.zeros_like(exact_d, dtype=bool)
    tied[:, 1:] |= gaps < tol
    tied[:, :-1] |= gaps < tol
    tied[:, -1] = True  # the k-th may tie with the unseen (k+1)-th
    untied = ~tied
    mismatches = int((exact_i[untied] != other_i[untied]).sum())
    return max_diff, 1 - mismatches / max(1, int(untied.sum())), mismatches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--gpu", action="store_true", help="also time mnistmem on CUDA")
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--json", help="also write the figures here (e.g. bench/results/neighbors-<cpu kind>.json)")
    parser.add_argument("--int8", action="store_true", help="time the int8 kernel even where it is not fast")
    args = parser.parse_args()

    import torch

    from mnistmem.data import load_mnist
    from mnistmem.devices import configure_cpu_threads, cpu_summary
    from mnistmem.neighbors import _reference_cache, choose_method, int8_matmul_is_fast, knn

    threads = configure_cpu_threads()
    train, _ = load_mnist("train")
    test, _ = load_mnist("test")
    queries = test[: args.queries]
    pairs = len(queries) * len(train)
    xb = train.reshape(len(train), -1).astype(np.float32) / 255
    xq = queries.reshape(len(queries), -1).astype(np.float32) / 255
    rows = []

    cpu = cpu_summary()
    print(f"CPU: {cpu['model']} ({cpu['kind']}; torch capability {cpu['torch_capability']})")
    print(f"flags: {' '.join(cpu['flags'] or ['unknown'])}")
    int8_fast = int8_matmul_is_fast()
    auto = choose_method(len(queries), len(train), args.k, "cpu")
    print(f"int8 matrix products measured fast here: {int8_fast}; auto picks: {auto}")
    methods = [m for m in ("direct-int8", "screen", "direct") if m != "direct-int8" or args.int8 or int8_fast]
    answers, timings = {}, {}
    for method in [auto] + [m for m in methods if m != auto]:
        _reference_cache.clear()
        run = lambda method=method: knn(queries, train, args.k, device="cpu", progress=False, method=method)  # noqa: E731
        answers[method], cold, mem = timed(method, run)
        rows.append((f"mnistmem {method}{' (auto)' if method == auto else ''}, cold: incl. setup", cold, mem))
        again, warm, mem = timed(method, run)
        rows.append((f"mnistmem {method}{' (auto)' if method == auto else ''}, warm: reference cached", warm, mem))
        timings[method] = (cold, warm)
        assert all((a == b).all() for a, b in zip(again, answers[method], strict=True))
    md, mi = answers[auto]
    for method, (d, i) in answers.items():
        assert (d == md).all() and (i == mi).all(), f"{method} disagrees with {auto}"

    import faiss

    faiss.omp_set_num_threads(threads)

    def run_faiss():
        index = faiss.IndexFlatL2(xb.shape[1])
        index.add(xb)
        return index.search(xq, args.k)

    (fd2, fi), t, mem = timed("faiss", run_faiss)
    faiss_seconds = t
    rows.append(("faiss IndexFlatL2 (fp32)", t, mem))
    fd = np.sqrt(np.maximum(fd2, 0))
    results = {"faiss": (fd, fi)}
    if not args.skip_sklearn:
        from sklearn.neighbors import NearestNeighbors

        def run_sklearn():
            return NearestNeighbors(n_neighbors=args.k, algorithm="brute", n_jobs=threads).fit(xb).kneighbors(xq)

        (sd, si), t, mem = timed("sklearn", run_sklearn)
        rows.append(("scikit-learn brute (fp32)", t, mem))
        results["sklearn"] = (sd, si)

    if args.gpu and torch.cuda.is_available():
        knn(queries[:256], train, args.k, device="cuda")  # warm-up
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        (gd, gi), t, _ = timed("gpu", lambda: knn(queries, train, args.k, device="cuda", progress=False))
        peak = torch.cuda.max_memory_allocated() / 2**20
        total = torch.cuda.get_device_properties(0).total_memory / 2**20
        rows.append((f"mnistmem cuda (GPU peak {peak:.0f} MiB = {peak / total:.1%} of device)", t, 0.0))
        print("cuda agrees exactly with cpu:", bool((gd == md).all() and (gi == mi).all()))

    print(f"\n{len(queries)} test digits x {len(train)} training digits, k={args.k}, {threads} CPU threads\n")
    print(f"{'method':62s} {'seconds':>8s} {'Mpairs/s':>9s} {'peak +MB':>9s} {'faiss/this':>10s}")
    for name, seconds, mem in rows:
        print(f"{name:62s} {seconds:8.2f} {pairs / seconds / 1e6:9.1f} {mem:9.0f} {faiss_seconds / seconds:10.2f}")
    print("\nspeed ratio faiss/mnistmem per kernel (cold, warm):")
    for method, (cold, warm) in timings.items():
        print(f"  {method:12s} cold {faiss_seconds / cold:5.2f}x   warm {faiss_seconds / warm:5.2f}x")
    print(f"all {len(answers)} kernels returned identical neighbours and distances")
    if args.json:
        import json

        from mnistmem.devices import hardware_summary

        report = {
            "hardware": hardware_summary("cpu"),
            "threads": threads,
            "queries": len(queries),
            "reference": len(train),
            "k": args.k,
            "auto": auto,
            "int8_fast": int8_fast,
            "seconds": {name: seconds for name, seconds, _ in rows},
            "faiss_over_mnistmem": {
                m: {"cold": faiss_seconds / c, "warm": faiss_seconds / w} for m, (c, w) in timings.items()
            },
        }
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    print("\nagreement with mnistmem (exact integer distances, ties by lower index):")
    for name, (d, i) in results.items():
        max_diff, share, mismatches = agreement(md, mi, d, i)
        print(
            f"  {name:8s} max |distance diff| = {max_diff:.2e}; indices agree on {share:.4%} of untied "
            f"positions ({mismatches} mismatches)"
        )


if __name__ == "__main__":
    main()
