"""Tests for hashnet.retrieval.index: exact scan and faiss agree with a brute-force (distance, index) ranking
on every path of the faiss search; a saved index round-trips, refuses damaged files and other metadata."""
import itertools
import json
import re
import zipfile

import numpy as np
import pytest

from hashnet.retrieval import index as index_module
from hashnet.retrieval.codes import load_codes, pack_codes, save_codes
from hashnet.retrieval.index import HammingIndex, SearchError, faiss_available
from hashnet.retrieval.index_file import IndexFileError
from hashnet.utils import files
from hashnet.utils.errors import UserError

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
    for k in (2.5, True, "3", None):  # not a whole number of neighbours: refused, not truncated or compared
        with pytest.raises(SearchError, match=f"k must be >= 1, a whole number of neighbours, got {re.escape(repr(k))} "
                                              "-- pass e.g. k=10"):
            index.search(db, k)
    assert index.search(db, np.int64(2))[1].shape == (5, 2)
    with pytest.raises(SearchError, match="queries must be \\(B, 2\\) uint8 .* got list -- encode them"):
        index.search([[1, 2]], 1)
    assert issubclass(SearchError, UserError)
    with pytest.warns(UserWarning, match="k=9 is larger than the index \\(5 items\\)"):
        assert index.search(db, 9)[1].shape == (5, 5)


# ---- every path of the faiss search (HammingIndex._search_faiss), against brute force and the exact backend ----
def spy_paths(monkeypatch) -> dict[str, int]:
    """Count the faiss search's steps: calls of faiss's nearest, range searches (ball), and rows of each."""
    calls = {"nearest": 0, "ball": 0, "ball_rows_full": 0, "ball_rows_short": 0}
    nearest, ball = HammingIndex._nearest, HammingIndex._ball

    def counted_nearest(self, queries, width):
        calls["nearest"] += 1
        return nearest(self, queries, width)

    def counted_ball(self, queries, radius, k):
        result = ball(self, queries, radius, k)
        calls["ball"] += 1
        calls["ball_rows_full"] += int(result[2].sum())
        calls["ball_rows_short"] += int((~result[2]).sum())
        return result
    monkeypatch.setattr(HammingIndex, "_nearest", counted_nearest)
    monkeypatch.setattr(HammingIndex, "_ball", counted_ball)
    return calls


class AdversarialFaiss:
    """A faiss index that keeps only faiss's documented promises: search returns the k smallest distances,
    sorted, but of the items tied at the last one it keeps the highest indices, and every tie comes in
    reverse index order; range_search returns each query's items in a random order."""

    def __init__(self, index, codes):
        self.index, self.codes = index, codes

    def search(self, queries, k):
        dist = np.unpackbits(queries[:, None] ^ self.codes[None], axis=2).sum(2)  # (B, N) by brute force
        order = np.lexsort((-np.arange(len(self.codes)) + 0 * dist, dist), axis=1)[:, :k]
        return np.take_along_axis(dist, order, 1).astype(np.int32), order.astype(np.int64)

    def range_search(self, queries, radius):
        limits, dist, found = self.index.range_search(queries, radius)
        rng, bounds = np.random.default_rng(0), limits.astype(np.int64)
        order = np.concatenate([start + rng.permutation(end - start) for start, end in itertools.pairwise(bounds)])
        return limits, dist[order], found[order]


def check_both_backends(db: np.ndarray, queries: np.ndarray, k: int) -> None:
    """faiss (as installed, and keeping only its documented promises), exact and brute force give the same
    distances and indices (db, queries: (N, K) +-1)."""
    expected = reference(queries, db, k)
    adversarial = HammingIndex(pack_codes(db), "faiss")
    adversarial._faiss = AdversarialFaiss(adversarial._faiss, adversarial.codes)
    indexes = {"exact": HammingIndex(pack_codes(db), "exact"), "faiss": HammingIndex(pack_codes(db), "faiss"),
               "adversarial faiss": adversarial}
    for name, index in indexes.items():
        distances, indices = index.search(pack_codes(queries), k)
        assert np.array_equal(distances, expected[0]), name
        assert np.array_equal(indices, expected[1]), name


@needs_faiss
@pytest.mark.parametrize("bits, n, batch", [(8, 3000, 5), (8, 3000, 200), (16, 4000, 100)])
def test_k_at_tie_boundaries(bits, n, batch):
    """k just below, at and above the end of a tie group: 8-bit codes hold ~12 items per code."""
    db, queries = codes(n, bits, seed=n + bits), codes(batch, bits, seed=7)
    dist = (bits - queries[0].astype(int) @ db.T.astype(int)) // 2
    ends = np.cumsum(np.bincount(dist))  # items at distance <= d for the first query
    for k in sorted({1, 2, *[int(e) + delta for e in ends[:4] for delta in (-1, 0, 1) if int(e) + delta >= 1]}):
        check_both_backends(db, queries, min(k, n))


@needs_faiss
def test_pilot_only_small_batch(monkeypatch):
    calls = spy_paths(monkeypatch)
    db = codes(3000, 16, seed=1)
    check_both_backends(db, codes(index_module._PILOT, 16, seed=2), 40)
    assert calls["nearest"] == 2  # every row answered from faiss's nearest (the pilot): one call per faiss index


@needs_faiss
def test_ball_path_on_random_codes(monkeypatch):
    calls = spy_paths(monkeypatch)
    check_both_backends(codes(4000, 16, seed=3), codes(300, 16, seed=4), 50)
    assert calls["ball_rows_full"] >= 300 - index_module._PILOT and calls["ball_rows_short"] == 0


@needs_faiss
def test_ball_path_with_short_rows(monkeypatch):
    """The pilot rows sit on 60 copies of one code (k-th distance 0, radius 1); other rows have no item at
    distance 0, so their ball is short of k and they go through faiss's nearest."""
    calls = spy_paths(monkeypatch)
    rng = np.random.default_rng(5)
    center = codes(1, 16, seed=6)
    db = np.concatenate([codes(2000, 16, seed=7), np.repeat(center, 60, axis=0)])[rng.permutation(2060)]
    queries = codes(160, 16, seed=8)
    pilot = np.unique(np.linspace(0, 159, index_module._PILOT).round().astype(int))
    queries[pilot] = center
    check_both_backends(db, queries, 30)
    assert calls["ball_rows_short"] > 0 and calls["nearest"] >= 2


@needs_faiss
def test_nearest_path_on_clustered_codes(monkeypatch):
    """Half the queries sit on 500 copies of a code (k-th distance 0), half are random (k-th distance ~4):
    a ball of radius 5 would hold ~500 items for the first half, so every row goes through faiss's nearest,
    and the cut tie groups of the first half through a range search of radius 1."""
    calls = spy_paths(monkeypatch)
    rng = np.random.default_rng(9)
    center = codes(1, 16, seed=10)
    db = np.concatenate([codes(3000, 16, seed=11), np.repeat(center, 500, axis=0)])[rng.permutation(3500)]
    queries = codes(200, 16, seed=12)
    queries[::2] = center
    check_both_backends(db, queries, 50)
    assert calls["nearest"] >= 2 and calls["ball_rows_short"] == 0 and calls["ball"] >= 2


@needs_faiss
def test_whole_database_and_blocks(monkeypatch):
    monkeypatch.setattr(index_module, "_CALL_RESULTS", 500)  # many faiss calls of a few rows each
    db = codes(120, 8, seed=13)
    for k in (1, 119, 120):
        check_both_backends(db, codes(70, 8, seed=14), k)


def test_empty_batch():
    index = HammingIndex(pack_codes(codes(10, 16, seed=0)))
    distances, indices = index.search(np.empty((0, 2), np.uint8), 3)
    assert distances.shape == indices.shape == (0, 3)


# ---- paths, labels, metadata and the saved index ----
META = {"net": "resnet18", "dataset": "digits", "checkpoint": "runs/x/last.ckpt"}


def indexed(n: int = 6, backend: str = "auto", **extra) -> HammingIndex:
    db = pack_codes(codes(n, 16, seed=20))
    labels = np.eye(3, dtype=np.uint8)[np.arange(n) % 3]
    return HammingIndex(db, backend, paths=[f"photos/ü {i}.jpg" for i in range(n)], labels=labels,
                        meta={**META, **extra})


def test_search_returns_paths():
    index = indexed()
    _, indices, paths = index.search(index.codes[[4, 1]], 2, return_paths=True)
    assert paths.tolist() == [[f"photos/ü {i}.jpg" for i in row] for row in indices.tolist()]
    assert indices[:, 0].tolist() == [4, 1] and index.meta["hash_bit"] == 16
    with pytest.raises(ValueError, match="holds no paths"):
        HammingIndex(index.codes).search(index.codes, 1, return_paths=True)


def test_constructor_checks_paths_labels_meta():
    db = pack_codes(codes(4, 16, seed=0))
    with pytest.raises(ValueError, match="one path per code"):
        HammingIndex(db, paths=["a"])
    with pytest.raises(ValueError, match="labels must be \\(N, C\\) with N = 4"):
        HammingIndex(db, labels=np.ones((3, 2)))
    with pytest.raises(ValueError, match="meta hash_bit=48 but the codes have 16 bits"):
        HammingIndex(db, meta={"hash_bit": 48})


@pytest.mark.parametrize("written_with, read_with", [
    ("exact", "exact"),
    pytest.param("faiss", "exact", marks=needs_faiss),
    pytest.param("exact", "faiss", marks=needs_faiss),
])
def test_save_load_round_trip_across_backends(tmp_path, written_with, read_with):
    index = indexed(backend=written_with)
    path = index.save(tmp_path / "photos.hnx")
    loaded = HammingIndex.load(path, backend=read_with, hash_bit=16, net="resnet18", dataset="digits")
    assert loaded.backend == read_with and np.array_equal(loaded.codes, index.codes)
    assert loaded.paths.tolist() == index.paths.tolist() and np.array_equal(loaded.labels, index.labels)
    assert loaded.meta == {**META, "hash_bit": 16}
    queries = pack_codes(codes(3, 16, seed=21))
    assert all(np.array_equal(a, b) for a, b in zip(loaded.search(queries, 4), index.search(queries, 4)))
    assert [p.name for p in tmp_path.iterdir()] == ["photos.hnx"]  # no temporary file left behind


def test_codes_only_index_round_trip(tmp_path):
    db = pack_codes(codes(5, 24, seed=22))
    loaded = HammingIndex.load(HammingIndex(db).save(tmp_path / "bare.hnx"))
    assert np.array_equal(loaded.codes, db) and loaded.paths is None and loaded.labels is None
    assert loaded.meta == {"hash_bit": 24}


def test_from_code_file(tmp_path):
    path = save_codes(tmp_path / "db.npz", codes(4, 16, seed=23), np.eye(4, 2), list("abcd"),
                      {"hash_bit": 16, "net": "resnet18", "dataset": "digits", "split": "database"})
    index = HammingIndex.from_code_file(load_codes(path))
    assert index.paths.tolist() == list("abcd") and index.meta["split"] == "database" and "format" not in index.meta
    with pytest.raises(IndexFileError, match="it is a code file: HammingIndex.from_code_file"):
        HammingIndex.load(path)


def test_load_checks_metadata(tmp_path):
    path = indexed().save(tmp_path / "photos.hnx")
    with pytest.raises(IndexFileError, match="photos.hnx holds codes with hash_bit=16, expected hash_bit=48.*same"):
        HammingIndex.load(path, hash_bit=48)
    with pytest.raises(IndexFileError, match="net='resnet18', expected net='resnet50'"):
        HammingIndex.load(path, net="resnet50")
    with pytest.raises(IndexFileError, match="checkpoint='runs/x/last.ckpt', expected checkpoint='other.ckpt'"):
        HammingIndex.load(path, checkpoint="other.ckpt")
    assert len(HammingIndex.load(path, dataset="digits", net=None)) == 6  # None: not checked


def rewrite(path, **members) -> None:
    """Write an .npz at path from the arrays of the one there, some members replaced (None: dropped)."""
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    arrays.update(members)
    with open(path, "wb") as f:  # a file object: np.savez would add .npz to the name
        np.savez(f, **{name: value for name, value in arrays.items() if value is not None})


def test_load_refuses_missing_and_damaged_files(tmp_path):
    with pytest.raises(IndexFileError, match="missing.hnx does not exist -- build the index again"):
        HammingIndex.load(tmp_path / "missing.hnx")
    path = indexed().save(tmp_path / "photos.hnx")
    data = path.read_bytes()
    damaged = {
        "truncated.hnx": data[: len(data) // 2],
        "text.hnx": b"not an index",
        "empty.hnx": b"",
    }
    for name, content in damaged.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(IndexFileError, match=f"{name}: it is not an .npz archive .* -- pass the .hnx file that "
                                                 "index.save.path. wrote"):
            HammingIndex.load(tmp_path / name)
    flipped = bytearray(data)
    start = data.index(b"codes.npy")  # a byte inside the codes member: its CRC no longer matches
    flipped[start + 200] ^= 0xFF
    (tmp_path / "flipped.hnx").write_bytes(bytes(flipped))
    with pytest.raises(IndexFileError, match="flipped.hnx is damaged"):
        HammingIndex.load(tmp_path / "flipped.hnx")


def test_load_refuses_inconsistent_members(tmp_path):
    path = indexed().save(tmp_path / "photos.hnx")
    record = json.loads(str(np.load(path)["meta"]))
    cases = [
        ({"codes": np.zeros((5, 2), np.uint8)}, "record says 6 codes of 16 bits"),
        ({"codes": np.zeros((6, 3), np.uint8)}, "record says 6 codes of 16 bits"),
        ({"paths": np.array(["a"])}, "paths \\(1,\\)"),
        ({"labels": np.ones((2, 3), np.uint8)}, "labels \\(2, 3\\)"),
        ({"meta": np.array(json.dumps({**record, "format": "hashnet-index-0"}))}, "format 'hashnet-index-0'"),
        ({"meta": np.array("[1, 2]")}, "format None"),
        ({"meta": np.array("{not json")}, "damaged or not a hashnet index"),
        ({"codes": None}, "damaged or not a hashnet index"),
        ({"paths": np.array([object()] * 6, dtype=object)}, "damaged or not a hashnet index"),  # pickled
    ]
    for members, message in cases:
        copy = tmp_path / "copy.hnx"
        copy.write_bytes(path.read_bytes())
        rewrite(copy, **members)
        with pytest.raises(IndexFileError, match=message):
            HammingIndex.load(copy)
    assert issubclass(IndexFileError, UserError)


def test_save_is_atomic_and_refuses_non_json_meta(tmp_path, monkeypatch):
    path = indexed().save(tmp_path / "photos.hnx")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="index metadata must be JSON values"):
        indexed(extra=object()).save(path)

    def crash(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(files.os, "fsync", crash)  # fail after part of the new file is written
    with pytest.raises(OSError, match="disk full"):
        indexed(n=9).save(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["photos.hnx"]
    assert zipfile.is_zipfile(path)
