"""Benchmark search at scale: HammingIndex's flat, mih and ivf backends on synthetic 64-bit codes (docs/scale.md).

Codes are seeded: "uniform" (every bit a fair coin: multi-index hashing's worst case) and "clustered" (1,000 random
centres, each bit flipped with probability 0.08; the queries drawn the same way, not from the database). For each
backend (mih at each --nflip, ivf at each --nprobe): build seconds, bytes per code (resident memory grown by the
build), seconds per query at batch 1 (single queries, the median and the mean) and at batch --queries (medians over
rounds; every search timed in each round, the order rotated), recall@k against the flat scan's
exact ranking (ids, and "distance recall": results within the exact k-th distance), mih's rows identical to flat's
and its share answered without the flat fallback. Ratios are to flat in the same run; lscpu
and every figure go to --out as JSON.

    python scripts/bench_scale.py --size 10000000                 # 1e7, both distributions (minutes)
    nice -n 19 python scripts/bench_scale.py --size 100000000 --dist clustered --queries 200 --rounds 1
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

from hashnet.retrieval.index import HammingIndex
from hashnet.retrieval.sublinear import ivf_lists, mih_shape, recall_at

BLOCK = 1 << 20  # codes generated at once


def synthetic(n: int, bits: int, kind: str, seed: int, centres: int = 1000, flip: float = 0.08) -> np.ndarray:
    """n packed codes (n, bits/8): uniform, or clustered around `centres` seeded centres (the same for any seed)."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.integers(0, 256, (n, bits // 8), dtype=np.uint8)
    centre_bits = np.random.default_rng(12345).integers(0, 2, (centres, bits), dtype=np.uint8).astype(bool)
    out = np.empty((n, bits // 8), np.uint8)
    for start in range(0, n, BLOCK):
        m = min(BLOCK, n - start)
        noisy = centre_bits[rng.integers(0, centres, m)] ^ (rng.random((m, bits), dtype=np.float32) < flip)
        out[start:start + m] = np.packbits(noisy, axis=1)
    return out


def rss() -> int:
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmRSS:"))


def built(codes: np.ndarray, backend: str, options: dict) -> tuple[HammingIndex, dict]:
    before, start = rss(), time.perf_counter()
    index = HammingIndex(codes, backend, options=options)
    return index, {"build_s": time.perf_counter() - start, "bytes_per_code": (rss() - before) / len(codes)}


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def distance_recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Share of returned distances (B, k) within each row's exact k-th distance."""
    return float((found <= exact[:, -1:]).mean())


def bench(kind: str, args: argparse.Namespace) -> dict:
    """Every figure of one distribution; searches timed in interleaved rounds, the order rotated each round."""
    codes = synthetic(args.size, 64, kind, seed=1)
    queries = synthetic(args.queries, 64, kind, seed=2)
    nhash, b = mih_shape(64, args.size)
    flat, flat_report = built(codes, "faiss", {})
    mih, mih_report = built(codes, "mih", {"nhash": nhash, "b": b})
    ivf, ivf_report = built(codes, "ivf", {"nlist": ivf_lists(args.size), "nprobe": args.nprobe[0]})
    del codes
    exact = flat.search(queries, args.k)
    figures = {"flat": flat_report}

    def flipping(nflip: int) -> Callable:
        def search(q: np.ndarray, k: int) -> tuple:
            mih.sublinear.nflip = nflip
            return mih.search(q, k)
        return search
    for nflip in args.nflip:
        found = flipping(nflip)(queries, args.k)
        same = (found[0] == exact[0]).all(axis=1) & (found[1] == exact[1]).all(axis=1)
        figures[f"mih nflip={nflip}"] = {**mih_report, "nhash": nhash, "b": b, "nflip": nflip,
                                         "identical_rows": float(same.mean()), "certified": mih.certified}

    def probing(nprobe: int) -> Callable:
        def search(q: np.ndarray, k: int) -> tuple:
            ivf.sublinear.nprobe = nprobe
            return ivf.search(q, k)
        return search
    searches = {"flat": flat.search, **{f"mih nflip={f}": flipping(f) for f in args.nflip},
                **{f"ivf nprobe={p}": probing(p) for p in args.nprobe}}
    for nprobe in args.nprobe:
        found = probing(nprobe)(queries, args.k)
        figures[f"ivf nprobe={nprobe}"] = {**ivf_report, "nlist": ivf.sublinear.nlist, "nprobe": nprobe,
                                           f"recall@{args.k}": recall_at(found[1], exact[1]),
                                           "distance_recall": distance_recall(found[0], exact[0])}
    single = {name: [] for name in searches}
    batch = {name: [] for name in searches}
    per_round = max(1, args.singles // args.rounds)
    for round_ in range(args.rounds):
        names = list(searches)
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            for i in range(round_ * per_round, (round_ + 1) * per_round):
                single[name].append(timed(lambda: searches[name](queries[i % len(queries)][None], args.k)))
            batch[name].append(timed(lambda: searches[name](queries, args.k)) / len(queries))
    for name in searches:
        figures[name].update(batch1_s=statistics.median(single[name]), batch_s=statistics.median(batch[name]),
                             batch1_mean_s=statistics.mean(single[name]),
                             speedup_batch1=statistics.median(single["flat"]) / statistics.median(single[name]),
                             speedup_batch=statistics.median(batch["flat"]) / statistics.median(batch[name]))
    return {"size": args.size, "queries": args.queries, "k": args.k, "bits": 64, **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000_000, help="indexed codes")
    parser.add_argument("--dist", choices=["uniform", "clustered", "both"], default="both")
    parser.add_argument("--queries", type=int, default=1000, help="queries of a batch")
    parser.add_argument("--singles", type=int, default=100, help="single queries timed")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="batch searches timed")
    parser.add_argument("--nprobe", type=lambda text: [int(p) for p in text.split(",")], default=[1, 4, 16, 64])
    parser.add_argument("--nflip", type=lambda text: [int(f) for f in text.split(",")], default=[1, 2],
                        help="mih's bits flipped per substring (a search setting: one index)")
    parser.add_argument("--threads", type=int, default=None, help="faiss's OpenMP threads (default: faiss's own)")
    parser.add_argument("--out", default="outputs/bench_scale.json")
    args = parser.parse_args()
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    runs = {"lscpu": cpu, "threads": faiss.omp_get_max_threads(), "faiss": faiss.__version__}
    for kind in (["uniform", "clustered"] if args.dist == "both" else [args.dist]):
        runs[kind] = bench(kind, args)
        for name, row in runs[kind].items():
            if isinstance(row, dict):
                recall = f", recall@{args.k} {row[f'recall@{args.k}']:.3f}" if f"recall@{args.k}" in row else ""
                exact = f", identical rows {row['identical_rows']:.3f}, certified {row['certified']:.3f}" \
                    if name.startswith("mih") else ""
                print(f"{kind} {args.size:,}: {name}: build {row['build_s']:.1f} s, "
                      f"{row['bytes_per_code']:.1f} B/code, "
                      f"{row['batch1_s'] * 1e3:.3f} ms single (x{row['speedup_batch1']:.1f}; mean {row['batch1_mean_s'] * 1e3:.3f}), "
                      f"{row['batch_s'] * 1e3:.3f} ms/query batched (x{row['speedup_batch']:.1f}){recall}{exact}")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
