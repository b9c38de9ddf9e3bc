"""Benchmark HammingIndex.search against a raw faiss.IndexBinaryFlat search of the same codes.

Random packed codes (200,000 x 48 bits by default) are indexed three ways: a raw faiss.IndexBinaryFlat
(faiss's k nearest, ties in whatever order faiss keeps them), HammingIndex's faiss backend (the exact
ranking by (distance, index)) and its exact numpy backend. Each round times one search of every
query batch by each, in a rotated order (interleaved, so a busy neighbour slows all three alike);
the medians over the rounds and their ratios to raw faiss are printed. The three results are
checked once: both HammingIndex backends must be identical.

    python scripts/bench_index.py                       # 1,000 queries x 200,000 48-bit codes, k=100, 5 rounds
    python scripts/bench_index.py --threads 1 --rounds 7
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import faiss
import numpy as np

from hashnet.retrieval.index import HammingIndex


def timed(search: Callable[[], object]) -> float:
    start = time.perf_counter()
    search()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=200_000, help="indexed codes")
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--bits", type=int, default=48, help="code length (a multiple of 8)")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="faiss's OpenMP threads (default: faiss's own)")
    parser.add_argument("--no-exact", action="store_true", help="leave out the numpy backend (the slowest)")
    args = parser.parse_args()
    if args.threads:
        faiss.omp_set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(args.size, args.bits // 8), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(args.queries, args.bits // 8), dtype=np.uint8)
    raw = faiss.IndexBinaryFlat(args.bits)
    raw.add(codes)
    searches = {"raw faiss": lambda: raw.search(queries, args.k),
                "HammingIndex faiss": lambda: indexes["faiss"].search(queries, args.k)}
    indexes = {"faiss": HammingIndex(codes, "faiss")}
    if not args.no_exact:
        indexes["exact"] = HammingIndex(codes, "exact")
        searches["HammingIndex exact"] = lambda: indexes["exact"].search(queries, args.k)

    results = {name: index.search(queries, args.k) for name, index in indexes.items()}  # also warms up
    raw.search(queries, args.k)
    if "exact" in results:
        same = all(np.array_equal(a, b) for a, b in zip(results["faiss"], results["exact"]))
        print(f"faiss and exact backends identical: {same}")
        assert same, "the two backends disagree"

    times: dict[str, list[float]] = {name: [] for name in searches}
    names = list(searches)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            times[name].append(timed(searches[name]))
    base = statistics.median(times["raw faiss"])
    print(f"{args.queries:,} queries x {args.size:,} random {args.bits}-bit codes, k={args.k}, "
          f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads, "
          f"medians of {args.rounds} interleaved rounds:")
    for name, seconds in times.items():
        print(f"  {name:<20} {statistics.median(seconds):7.3f} s   {statistics.median(seconds) / base:5.2f}x raw faiss")


if __name__ == "__main__":
    main()
