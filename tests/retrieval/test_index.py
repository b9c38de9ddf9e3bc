"""Tests for hashnet.retrieval.index: exact scan and faiss agree with a brute-force (distance, index) ranking."""
import numpy as np
import pytest

from hashnet.retrieval.codes import pack_codes
from hashnet.retrieval.index import HammingIndex, faiss_available

needs_faiss = pytest.mark.skipif(not faiss_available(), reason="faiss-cpu is not installed (pip install -e '.[faiss]')")


def reference(query_codes: np.ndarray, db_codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: all distances, stable sort (ties by index), first k."""
    dist = (db_codes.shape[1] - query_codes.astype(int) @ db_codes.T.astype(int)) // 2
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, order, axis=1), order


def codes(n: int, bits: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(np.array([-1, 1], dtype=np.int8), (n, bits))


def test_exact_hand_computed_ties_by_index():
    db = np.array([[1] * 8, [-1] + [1] * 7, [1] * 8, [-1, -1] + [1] * 6, [1] * 7 + [-1]])
    distances, indices = HammingIndex(pack_codes(db), "exact").search(pack_codes(np.array([[1] * 8])), 4)
    assert indices.tolist() == [[0, 2, 1, 4]] and distances.tolist() == [[0, 0, 1, 1]]


@pytest.mark.parametrize("backend", ["exact", pytest.param("faiss", marks=needs_faiss)])
@pytest.mark.parametrize("bits, n, k", [(8, 3000, 40), (16, 2000, 300), (48, 500, 10), (16, 50, 50)])
def test_backends_match_brute_force_with_many_ties(backend, bits, n, k):
    db, queries = codes(n, bits, seed=bits), codes(33, bits, seed=bits + 1)  # 8 bits, 3000 items: ~12 per code
    distances, indices = HammingIndex(pack_codes(db), backend).search(pack_codes(queries), k)
    expected_distances, expected_indices = reference(queries, db, k)
    assert np.array_equal(indices, expected_indices) and np.array_equal(distances, expected_distances)


@needs_faiss
def test_faiss_and_exact_agree_on_duplicated_codes():
    db = np.repeat(codes(20, 16, seed=3), 50, axis=0)[np.random.default_rng(4).permutation(1000)]  # 50 copies each
    queries = pack_codes(db[:10])
    exact = HammingIndex(pack_codes(db), "exact").search(queries, 75)
    fast = HammingIndex(pack_codes(db), "faiss").search(queries, 75)
    assert np.array_equal(exact[0], fast[0]) and np.array_equal(exact[1], fast[1])
    assert (exact[0][:, :50] == 0).all()  # each query's 50 copies first, lowest indices first
    assert (np.diff(exact[1][:, :50], axis=1) > 0).all()


def test_auto_backend_and_errors(monkeypatch):
    db = pack_codes(codes(5, 16, seed=0))
    assert HammingIndex(db).backend == ("faiss" if faiss_available() else "exact")
    monkeypatch.setattr("hashnet.retrieval.index.faiss_available", lambda: False)
    assert HammingIndex(db).backend == "exact"
    with pytest.raises(ImportError, match="pip install -e '.\\[faiss\\]'"):
        HammingIndex(db, "faiss")
    index = HammingIndex(db, "exact")
    with pytest.raises(ValueError, match="queries must be \\(B, 2\\) uint8"):
        index.search(pack_codes(codes(1, 32, seed=1)), 3)
    with pytest.raises(ValueError, match="k must be >= 1"):
        index.search(db, 0)
    with pytest.warns(UserWarning, match="k=9 is larger than the index \\(5 items\\)"):
        assert index.search(db, 9)[1].shape == (5, 5)
