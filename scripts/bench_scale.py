"""Benchmark search at scale: HammingIndex's flat, mih and ivf backends on synthetic codes, 64 bits unless --bits
(docs/scale.md); with --pad no,yes each backend also without padding the codes inside the index (48 bits).

Codes are seeded: "uniform" (every bit a fair coin: multi-index hashing's worst case) and "clustered" (1,000 random
centres, each bit flipped with probability 0.08; the queries drawn the same way, not from the database). For each
backend (mih at each --budget, ivf at each --nprobe): build seconds, bytes per code (resident memory grown by the
build), seconds per query at batch 1 (single queries, the median and the mean) and at batch --queries (medians over
rounds; every search timed in each round, the order rotated), recall@k against the flat scan's
exact ranking (ids, and "distance recall": results within the exact k-th distance), mih's rows identical to flat's
and its share answered without the flat fallback. Ratios are to flat in the same run; lscpu
and every figure go to --out as JSON.

    python scripts/bench_scale.py --size 10000000                 # 1e7, both distributions (minutes)
    python scripts/bench_scale.py --size 10000000 --bits 48 --pad no,yes --dist clustered --nprobe 16
    nice -n 19 python scripts/bench_scale.py --size 100000000 --dist clustered --queries 100 --rounds 1 --nprobe ''
                                                                  # 1e8 without ivf: ~6 GB at its peak
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
from hashnet.retrieval.sublinear import MIH_BUDGET, ivf_lists, mih_tables, padded_width, recall_at

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


def setting(index: HammingIndex, name: str, value: float) -> Callable:
    """index.search with its sub-linear index's setting `name` (budget, nprobe) set to value first."""
    def search(queries: np.ndarray, k: int) -> tuple:
        setattr(index.sublinear, name, value)
        return index.search(queries, k)
    return search


def distance_recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Share of returned distances (B, k) within each row's exact k-th distance."""
    return float((found <= exact[:, -1:]).mean())


def bench(kind: str, args: argparse.Namespace) -> dict:
    """Every figure of one distribution; searches timed in interleaved rounds, the order rotated each round."""
    codes = synthetic(args.size, args.bits, kind, seed=1)
    queries = synthetic(args.queries, args.bits, kind, seed=2)
    nhash, figures, searches, exact = mih_tables(args.bits, args.size), {}, {}, None
    for pad in args.pad:
        suffix = " padded" if pad and padded_width(args.bits // 8) * 8 != args.bits else ""
        if suffix or pad == args.pad[0]:
            flat, figures[f"flat{suffix}"] = built(codes, "faiss", {"pad": pad})
            searches[f"flat{suffix}"] = flat.search
            exact = flat.search(queries, args.k) if exact is None else exact
            mih, report = built(codes, "mih", {"nhash": nhash, "pad": pad})
            for budget in args.budget:
                name = f"mih budget={budget:g}{suffix}"
                searches[name] = setting(mih, "budget", budget)
                found = searches[name](queries, args.k)
                same = (found[0] == exact[0]).all(axis=1) & (found[1] == exact[1]).all(axis=1)
                figures[name] = {**report, "nhash": nhash, "lengths": mih.sublinear.lengths, "budget": budget,
                                 "identical_rows": float(same.mean()), "certified": mih.certified}
            if args.nprobe:
                ivf, report = built(codes, "ivf", {"nlist": ivf_lists(args.size), "nprobe": args.nprobe[0], "pad": pad})
            for nprobe in args.nprobe:
                name = f"ivf nprobe={nprobe}{suffix}"
                searches[name] = setting(ivf, "nprobe", nprobe)
                found = searches[name](queries, args.k)
                figures[name] = {**report, "nlist": ivf.sublinear.nlist, "nprobe": nprobe,
                                 f"recall@{args.k}": recall_at(found[1], exact[1]),
                                 "distance_recall": distance_recall(found[0], exact[0])}
    del codes
    single = {name: [] for name in searches}
    batch = {name: [] for name in searches}
    per_round = max(1, args.singles // args.rounds)
    for round_ in range(args.rounds):
        names = list(searches)
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            for i in range(round_ * per_round, (round_ + 1) * per_round):
                single[name].append(timed(lambda: searches[name](queries[i % len(queries)][None], args.k)))
            batch[name].append(timed(lambda: searches[name](queries, args.k)) / len(queries))
    first = next(iter(searches))  # the flat scan of the first --pad setting: every ratio is to it
    for name in searches:
        figures[name].update(batch1_s=statistics.median(single[name]), batch_s=statistics.median(batch[name]),
                             batch1_mean_s=statistics.mean(single[name]),
                             speedup_batch1=statistics.median(single[first]) / statistics.median(single[name]),
                             speedup_batch=statistics.median(batch[first]) / statistics.median(batch[name]))
    return {"size": args.size, "queries": args.queries, "k": args.k, "bits": args.bits, **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000_000, help="indexed codes")
    parser.add_argument("--dist", choices=["uniform", "clustered", "both"], default="both")
    parser.add_argument("--queries", type=int, default=1000, help="queries of a batch")
    parser.add_argument("--singles", type=int, default=100, help="single queries timed")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="batch searches timed")
    parser.add_argument("--bits", type=int, default=64, help="code length, a multiple of 8")
    parser.add_argument("--pad", type=lambda text: [p == "yes" for p in text.split(",")], default=[True],
                        help="no,yes: each backend also without padding the codes inside the index (48 bits)")
    parser.add_argument("--nprobe", type=lambda text: [int(p) for p in text.split(",") if p], default=[1, 4, 16, 64],
                        help="ivf's lists scanned ('' : no ivf)")
    parser.add_argument("--budget", type=lambda text: [float(b) for b in text.split(",")], default=[MIH_BUDGET],
                        help="mih's candidates before a query is scanned flat, a share of the size (a search "
                             "setting: one index)")
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
