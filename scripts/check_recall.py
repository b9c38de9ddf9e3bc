"""Score any engine's search results against this project's exact ranking: recall@k of the ids it returned.

An engine (Milvus BIN_IVF_FLAT, OpenSearch, pgvector, faiss IVF, ...) loaded with a store's codes and ids
(docs/scale.md) answers queries; save its ids as results.npy (B, k) int64 (-1 where it returned fewer) and the
packed query codes as queries.npy (B, K/8) uint8. The exact top k of each query (Hamming distance, then id) comes
from the store's codes (or a code file's, ids = rows):

    python scripts/check_recall.py --index photos_store/ --queries queries.npy --results results.npy

It prints recall@k (the share of the exact top-k ids returned) and distance recall (the share of returned ids
within the exact k-th distance: ties at that distance count as right), and with --out writes them as JSON.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hashnet.retrieval.index import HammingIndex
from hashnet.retrieval.store import PathTable, load_database
from hashnet.retrieval.sublinear import recall_at
from hashnet.utils.errors import ConfigError, exit_on_error


def check(index: str, queries_path: str, results_path: str) -> dict:
    database = load_database(index)
    ids = np.asarray(database.paths.ids) if isinstance(database.paths, PathTable) else np.arange(len(database.codes))
    queries, results = np.load(queries_path), np.load(results_path)
    if results.ndim != 2 or len(results) != len(queries):
        raise ConfigError(f"--results {results_path} holds {results.shape}, not one row of ids per query of "
                          f"{queries_path} ({len(queries)}) -- save the engine's ids as a (queries, k) array")
    k = results.shape[1]
    distances, rows = HammingIndex(database.codes, "auto").search(queries, k)
    exact = ids[rows]
    found_rows = np.searchsorted(ids, np.maximum(results, 0)).clip(0, len(ids) - 1)
    known = (results >= 0) & (ids[found_rows] == results)
    codes = np.asarray(database.codes[found_rows.ravel()]).reshape(*results.shape, -1)
    found_distances = np.unpackbits(codes ^ queries[:, None, :], axis=2).sum(axis=2)
    within = known & (found_distances <= distances[:, -1:])
    return {"queries": len(queries), "k": k, f"recall@{k}": recall_at(np.where(known, results, -2), exact),
            "distance_recall": float(within.mean()), "unknown_ids": int((~known & (results >= 0)).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True, help="a merged store folder, or a code file (.npz)")
    parser.add_argument("--queries", required=True, help="packed query codes (B, K/8) uint8, .npy")
    parser.add_argument("--results", required=True, help="the engine's ids (B, k) int64, .npy; -1: none")
    parser.add_argument("--out", default=None, help="a JSON file to write the figures to")
    args = parser.parse_args()
    with exit_on_error("check_recall"):
        figures = check(args.index, args.queries, args.results)
        if args.out:
            Path(args.out).write_text(json.dumps(figures, indent=2))
    print(", ".join(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}"
                    for key, value in figures.items()))


if __name__ == "__main__":
    main()
