"""scripts/check_recall.py scores an engine's ids against the exact ranking: all of them right -> 1, a wrong id or a
missing one lowers recall@k by its share; a tied id at the k-th distance still counts in distance recall."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from hashnet.retrieval.codes import save_codes, unpack_codes
from hashnet.retrieval.index import HammingIndex

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_recall.py"


def test_recall_of_an_engines_ids(tmp_path):
    spec = importlib.util.spec_from_file_location("check_recall", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    packed = np.packbits(np.eye(16, dtype=np.uint8)[:, :8] | np.eye(16, dtype=np.uint8)[:, 8:], axis=1)  # 8 pairs
    packed = np.concatenate([packed, np.full((4, 1), 255, np.uint8)])  # 20 codes of 8 bits
    save_codes(tmp_path / "codes.npz", unpack_codes(packed), np.zeros((20, 0)), [f"{i}.png" for i in range(20)],
               {"hash_bit": 8, "net": "n", "dataset": "d"})
    queries = packed[[0, 16]]
    exact = HammingIndex(packed, "exact").search(queries, 3)[1]
    np.save(tmp_path / "q.npy", queries)
    np.save(tmp_path / "right.npy", exact)
    assert script.check(str(tmp_path / "codes.npz"), str(tmp_path / "q.npy"), str(tmp_path / "right.npy")) == {
        "queries": 2, "k": 3, "recall@3": 1.0, "distance_recall": 1.0, "unknown_ids": 0}
    wrong = exact.copy()
    wrong[0, 2], wrong[1, 1] = -1, 99  # one missing, one not in the index
    np.save(tmp_path / "wrong.npy", wrong)
    figures = script.check(str(tmp_path / "codes.npz"), str(tmp_path / "q.npy"), str(tmp_path / "wrong.npy"))
    assert (figures["recall@3"], figures["distance_recall"], figures["unknown_ids"]) == pytest.approx((4 / 6, 4 / 6, 1))
    tied = exact.copy()
    tied[1] = [16, 17, 19]  # 19 is as near as 18 (four codes of all ones)
    np.save(tmp_path / "tied.npy", tied)
    figures = script.check(str(tmp_path / "codes.npz"), str(tmp_path / "q.npy"), str(tmp_path / "tied.npy"))
    assert figures["recall@3"] == pytest.approx(5 / 6) and figures["distance_recall"] == 1.0
