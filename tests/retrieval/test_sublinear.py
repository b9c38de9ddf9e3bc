"""HammingIndex's sub-linear backends (hashnet.retrieval.sublinear): mih gives the flat scan's exact (distance, index)
rows, certified or through its fallback; ivf is approximate with its recall recorded; a memory-mapped store of 1e6
codes is indexed with one copy of the codes in memory."""
import json

import numpy as np
import pytest

from hashnet.retrieval.index import HammingIndex
from hashnet.retrieval.store import open_store
from hashnet.retrieval.sublinear import ivf_lists, mih_tables, padded_width


def clustered(n: int, bits: int, seed: int, centres: int = 40, flip: float = 0.08) -> np.ndarray:
    """n packed codes, each a random one of `centres` seeded centres with every bit flipped with probability flip."""
    rng = np.random.default_rng(seed)
    centre_bits = np.random.default_rng(0).integers(0, 2, (centres, bits), dtype=np.uint8)
    noisy = centre_bits[rng.integers(0, centres, n)] ^ (rng.random((n, bits)) < flip)
    return np.packbits(noisy.astype(np.uint8), axis=1)


def test_shapes_follow_the_size():
    assert (mih_tables(64, 10**7), mih_tables(64, 10**6), mih_tables(48, 1000)) == (3, 4, 5)
    assert [padded_width(size) for size in (6, 2, 4, 8, 12, 20, 24)] == [8, 2, 4, 8, 16, 20, 24]  # faiss's kernels
    assert (ivf_lists(10**7), ivf_lists(10**8), ivf_lists(10)) == (1024, 4096, 1)


@pytest.mark.parametrize("bits", [64, 48])
def test_mih_rows_equal_the_flat_scan(bits):
    database, queries = clustered(8_000, bits, seed=1), clustered(100, bits, seed=2)
    uniform = np.random.default_rng(3).integers(0, 256, (30, bits // 8), dtype=np.uint8)
    flat, mih = HammingIndex(database, "faiss"), HammingIndex(database, "mih")
    unpadded = [HammingIndex(database, "mih", options={"pad": False})] if bits == 48 else []  # else padded inside
    for k in (1, 10, 100):
        for batch in (queries, queries[:1], uniform):
            expected = flat.search(batch, k)
            for found in [index.search(batch, k) for index in (mih, *unpadded)]:
                assert np.array_equal(found[0], expected[0]) and np.array_equal(found[1], expected[1])
            if batch is uniform and k == 100:
                assert mih.certified < 0.5  # far from every centre: most rows go to the flat scan, still exact
    mih.search(queries, 10)
    assert mih.certified > 0.6  # clustered queries: most answered by the hash tables
    mih.sublinear.budget = 0.5  # more candidates allowed before the flat scan: more answered, the same rows
    assert np.array_equal(mih.search(queries, 10)[1], flat.search(queries, 10)[1]) and mih.certified > 0.9


def test_ivf_is_approximate_and_records_its_recall():
    database = clustered(5_000, 64, seed=4)
    few = HammingIndex(database, "ivf", options={"nlist": 32, "nprobe": 1})
    assert few.meta["ivf"]["nlist"] == 32 and few.meta["ivf"]["queries"] == 100
    assert 0 < few.meta["ivf"]["recall@100"] < 1
    every = HammingIndex(database, "ivf", options={"nlist": 32, "nprobe": 32})  # every list: the k smallest distances
    queries = clustered(20, 64, seed=5)
    distances, indices = every.search(queries, 50)
    assert np.array_equal(distances, HammingIndex(database, "faiss").search(queries, 50)[0])
    assert (np.diff(distances * len(database) + indices, axis=1) > 0).all()  # by (distance, index)
    assert every.meta["ivf"]["recall@100"] > few.meta["ivf"]["recall@100"]


def rss_bytes() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_store_of_a_million_codes_opens_with_one_copy(tmp_path):
    n, merged = 10**6, tmp_path / "store" / "merged"
    merged.mkdir(parents=True)
    codes = np.random.default_rng(6).integers(0, 256, (n, 8), dtype=np.uint8)
    np.save(merged / "codes.npy", codes)
    np.save(merged / "ids.npy", np.arange(n, dtype=np.int64))
    names = b"".join(b"%07d.png" % i for i in range(n))
    np.save(merged / "paths_utf8.npy", np.frombuffer(names, np.uint8))
    np.save(merged / "offsets.npy", np.arange(n + 1, dtype=np.int64) * 11)
    (merged / "merged.json").write_text("{}")
    (tmp_path / "store" / "store.json").write_text(json.dumps({"hash_bit": 64, "images": "/photos"}))
    HammingIndex(codes[:10], "faiss").search(codes[:1], 1)  # faiss loaded before measuring
    del codes
    before = rss_bytes()
    store = open_store(tmp_path / "store", hash_bit=64)
    index = HammingIndex(store.codes, "faiss", paths=store.paths)
    growth = rss_bytes() - before
    assert growth < 2 * n * 8, f"{growth / 1e6:.1f} MB for {n * 8 / 1e6:.1f} MB of codes"
    distances, rows, paths = index.search(np.asarray(store.codes[[123_456]]), 1, return_paths=True)
    assert (distances[0, 0], rows[0, 0], paths[0, 0]) == (0, 123_456, "/photos/0123456.png")
