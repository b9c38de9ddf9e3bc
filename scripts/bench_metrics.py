"""Benchmark `hashnet.retrieval.metrics.mean_average_precision` against a straightforward numpy mAP@R.

The reference is HashNet's own evaluation code (dense inner products of database x queries,
`np.argsort` of that whole matrix, a Python loop over queries), with one change: the argsort is
stable, so ties go to the lower database index as in ours (the original's quicksort leaves the
order of ties arbitrary). Both run in this process on the same random data and must agree to 1e-9.

Peak extra memory is the peak resident set size (VmHWM from /proc/self/status, reset through
/proc/self/clear_refs before each run) minus the resident size before the run, so it covers
numpy, torch and allocator overheads alike.

It also times one call with several R (MULTI_TOPK) against one call with the largest alone, for
both tie rules: the ratio is what the extra cut-offs cost on top of the one scan.

    python scripts/bench_metrics.py                # 1,000 x 50,000, 48 bits, 80 classes, R=5000
    python scripts/bench_metrics.py --scale coco   # ours only: 5,000 x 200,000
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hashnet.retrieval.metrics import mean_average_precision

SCALES = {"default": (1_000, 50_000), "coco": (5_000, 200_000), "smoke": (50, 500)}  # smoke: the script runs, no ratio
BITS, CLASSES, TOPK = 48, 80, 5000
MULTI_TOPK = [1000, 2500, TOPK]  # several R in one call; the largest is TOPK
ROUNDS = 9  # alternating runs of each call when comparing two: drifts of a shared machine hit both alike


def random_data(queries: int, database: int, seed: int) -> tuple[np.ndarray, ...]:
    """Codes (N, BITS) int8 in {-1,+1} and multi-hot labels (N, CLASSES) uint8, >= 1 label each."""
    rng = np.random.default_rng(seed)

    def codes(n: int) -> np.ndarray:
        return rng.choice(np.array([-1, 1], dtype=np.int8), size=(n, BITS))

    def labels(n: int) -> np.ndarray:
        multi_hot = rng.random((n, CLASSES)) < 2.0 / CLASSES  # ~3 labels per item, like COCO
        multi_hot[np.arange(n), rng.integers(0, CLASSES, n)] = True
        return multi_hot.astype(np.uint8)

    return codes(queries), labels(queries), codes(database), labels(database)


def reference_map(q_codes: np.ndarray, q_labels: np.ndarray, db_codes: np.ndarray, db_labels: np.ndarray,
                  topk: int) -> float:
    """The mAP@R code of HashNet's public release, only with a stable argsort (ties: lower index).

    Codes and labels are float32 there (signs of the network outputs, float label tensors).
    """
    database_code, validation_code = db_codes.astype(np.float32), q_codes.astype(np.float32)
    database_labels, validation_labels = db_labels.astype(np.float32), q_labels.astype(np.float32)
    sim = np.dot(database_code, validation_code.T)  # (N, Nq)
    ids = np.argsort(-sim, axis=0, kind="stable")
    APx = []
    for i in range(validation_code.shape[0]):
        label = validation_labels[i, :]
        label[label == 0] = -1  # so that == below only matches shared positive labels
        idx = ids[:, i]
        imatch = np.sum(database_labels[idx[0:topk], :] == label, axis=1) > 0
        relevant_num = np.sum(imatch)
        Lx = np.cumsum(imatch)
        Px = Lx.astype(float) / np.arange(1, topk + 1, 1)
        if relevant_num != 0:
            APx.append(np.sum(Px * imatch) / relevant_num)
    return float(np.mean(np.array(APx))) if APx else 0.0


def _status_kib(field: str) -> int:
    """A memory field (e.g. VmRSS, VmHWM) of /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measure(fn: Callable[[], float], repeats: int) -> tuple[float, float, float]:
    """Run fn `repeats` times; return (result, median seconds, max peak extra resident MiB)."""
    results, seconds, mib = [], [], []
    for _ in range(repeats):
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _status_kib("VmRSS")
        start = time.perf_counter()
        results.append(fn())
        seconds.append(time.perf_counter() - start)
        mib.append((_status_kib("VmHWM") - before) / 1024)
    assert len(set(results)) == 1, results
    return results[0], float(np.median(seconds)), max(mib)


def interleaved(fns: list[Callable[[], object]], rounds: int) -> list[float]:
    """Median seconds of each of fns, run in turn `rounds` times (after one untimed run of each)."""
    seconds: list[list[float]] = [[] for _ in fns]
    for timed in [False] + [True] * rounds:
        for fn, times in zip(fns, seconds):
            start = time.perf_counter()
            fn()
            if timed:
                times.append(time.perf_counter() - start)
    return [float(np.median(times)) for times in seconds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="default")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    queries, database = SCALES[args.scale]
    data = random_data(queries, database, args.seed)
    print(f"{queries} queries x {database} database items, {BITS} bits, {CLASSES} classes, R={TOPK}")
    warm_up = (data[0][:10], data[1][:10], *data[2:])  # 10 queries, the whole database
    candidates = [("hashnet.retrieval.metrics", mean_average_precision, 5)]
    if args.scale == "default":
        candidates.append(("numpy reference", reference_map, 1))
    rows = []
    for name, fn, repeats in candidates:
        fn(*warm_up, topk=TOPK)  # first-call costs (imports, allocator growth) are left out of the timing
        rows.append((name, repeats, *measure(lambda: fn(*data, topk=TOPK), repeats)))
    print(f"{'implementation':<16} {'runs':>4} {'mAP@R':>20} {'median s':>9} {'peak extra MiB':>15}")
    for name, repeats, value, seconds, mib in rows:
        print(f"{name:<16} {repeats:>4} {value:>20.17f} {seconds:>9.3f} {mib:>15.1f}")
    print("memory: peak RSS (VmHWM, reset via /proc/self/clear_refs) minus RSS before the run")
    if len(rows) == 2:
        assert abs(rows[0][2] - rows[1][2]) <= 1e-9, f"results differ: {rows[0][2]!r} vs {rows[1][2]!r}"
        print(f"results equal to 1e-9; speed-up {rows[1][3] / rows[0][3]:.1f}x (reference time / ours)")
    for ties in ("index", "average"):
        alone, several = interleaved([lambda ties=ties: mean_average_precision(*data, topk=TOPK, ties=ties),
                                      lambda ties=ties: mean_average_precision(*data, topk=MULTI_TOPK, ties=ties)],
                                     ROUNDS)
        print(f"ties={ties}: one call with R={MULTI_TOPK} takes {several / alone:.2f}x the time of one with "
              f"R={TOPK} ({several:.3f} s / {alone:.3f} s, medians of {ROUNDS} alternating runs)")


if __name__ == "__main__":
    main()
