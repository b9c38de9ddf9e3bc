"""A code store (docs/scale.md) end to end, as its commands run: three `encode.py store=... shards=3 shard=i` workers
over a folder with two corrupt files, one killed after its first chunk and rerun, then merge_codes.py; the merged
codes equal a one-process `encode.py images=<dir>` bit for bit, every image once, the corrupt files named once,
chunks finished before the kill untouched. Plus the streaming walk's order and a store's refusals."""
import hashlib
import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from hashnet.data.image_files import find_images
from hashnet.data.image_walk import walk_images
from hashnet.inference.hasher import Hasher
from hashnet.inference.predict_store import pack_on_device
from hashnet.retrieval.codes import binarize, pack_codes
from hashnet.retrieval.index import HammingIndex
from hashnet.retrieval.merge import merge_store
from hashnet.retrieval.store import StoreError, open_store, prepare_store
from hashnet.tasks.encode import encode
from hashnet.tasks.merge_codes import merge_codes
from hashnet.tasks.search import search

from conftest import compose_config, write_image_tree
from script_runner import Case, run_scripts

CORRUPT = ("a/more/bad.png", "c/zz_bad.jpg")

# Runs scripts/encode.py in the runner's process after (SNAPSHOT) writing the sha256 and mtime of every chunk file
# of the store, and (KILL_AT_SAVE=n) with numpy.save killing the process (SIGKILL) on its n-th call, half-way.
WRAPPER = textwrap.dedent("""
    import hashlib, json, os, runpy, signal, sys
    from pathlib import Path
    import numpy
    ROOT = Path(os.environ["REPO"])
    if os.environ.get("SNAPSHOT"):
        chunks = Path(os.environ["STORE"], "chunks")
        Path(os.environ["SNAPSHOT"]).write_text(json.dumps({p.name: [hashlib.sha256(p.read_bytes()).hexdigest(),
                                                                     p.stat().st_mtime_ns] for p in chunks.iterdir()}))
    calls, save = [0], numpy.save
    def killing_save(file, *args, **kwargs):
        calls[0] += 1
        if calls[0] == int(os.environ.get("KILL_AT_SAVE", "0")):
            file.write(b"\\x93NUMPY half")
            file.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return save(file, *args, **kwargs)
    numpy.save = killing_save
    sys.argv = [str(ROOT / "scripts" / "encode.py"), *sys.argv[1:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
""")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """152 tiny PNGs in three class folders, two of them (and no others) corrupt."""
    root = write_image_tree(tmp_path_factory.mktemp("store") / "images", {"a": 52, "b": 50, "c": 48}, side=8)
    for name in CORRUPT:
        (root / name).write_bytes(b"not an image at all")
    return root


@pytest.fixture(scope="module")
def reference(folder, tiny_csv_run) -> HammingIndex:
    """The folder's codes in one process: Hasher.index, which scripts/encode.py images=<dir> writes (test_hasher)."""
    return Hasher.from_checkpoint(tiny_csv_run[1]["checkpoint"]).index(folder, progress=False)


def test_walk_streams_find_images_order(folder, tmp_path):
    (folder / "b" / "b.png").mkdir(exist_ok=True)  # a folder named like a file sorts among the files
    os.symlink(folder / "a", folder / "b" / "b.png" / "loop")
    try:
        assert list(walk_images(folder)) == find_images(folder)
    finally:
        (folder / "b" / "b.png" / "loop").unlink()
        (folder / "b" / "b.png").rmdir()


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_three_workers_one_killed_merge_equals_one_process(folder, reference, tiny_csv_run, tmp_path):
    checkpoint, store = tiny_csv_run[1]["checkpoint"], tmp_path / "store"
    wrapper = tmp_path / "encode_wrapper.py"
    wrapper.write_text(WRAPPER)
    worker = [f"ckpt_path={checkpoint}", f"images={folder}", "num_workers=0", "device=cpu", f"store={store}",
              "chunk_size=20", "shards=3"]  # 152 images: 8 chunks; worker 1 has chunks 1, 4, 7
    env = {"REPO": str(Path(__file__).resolve().parents[2]), "STORE": str(store)}
    first, killed, third, rerun = run_scripts([
        Case("encode", [*worker, "shard=0", f"hydra.run.dir={tmp_path / 'run0'}"]),
        Case(str(wrapper), [*worker, "shard=1", f"hydra.run.dir={tmp_path / 'run1'}"], env={**env, "KILL_AT_SAVE": "2"}),
        Case("encode", [*worker, "shard=2", f"hydra.run.dir={tmp_path / 'run2'}"]),
        Case(str(wrapper), [*worker, "shard=1", f"hydra.run.dir={tmp_path / 'run3'}"],
             env={**env, "SNAPSHOT": str(tmp_path / "before.json")}),
    ], env={"OMP_NUM_THREADS": "1"})
    for done in (first, third, rerun):
        assert done.code == 0, done.stderr[-3000:]
    assert killed.code == -9 and "chunks [1, 4, 7]" in killed.stdout + killed.stderr
    assert "chunks [4, 7]" in rerun.stdout + rerun.stderr  # chunk 1 was done before the kill: not encoded again
    before, chunks = json.loads((tmp_path / "before.json").read_text()), store / "chunks"
    kept = {name: state for name, state in before.items() if not name.startswith(".")}
    assert sorted(kept) == sorted(f"{c:06d}.{ext}" for c in (0, 1, 2, 3, 5, 6) for ext in ("npy", "json"))
    for name, (sha, mtime) in kept.items():  # chunks finished before the rerun are untouched
        path = chunks / name
        assert [hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns] == [sha, mtime]

    summary = merge_codes(compose_config("merge_codes", [f"store={store}", "sample=8", "device=cpu"], tmp_path))
    opened = open_store(store, hash_bit=16)
    assert isinstance(opened.codes, np.memmap) and opened.codes.shape == (150, 2)
    assert np.array_equal(np.asarray(opened.codes), reference.codes)  # bit for bit
    assert list(opened.paths[np.arange(150)]) == [str(Path(path).resolve()) for path in reference.paths]
    assert len(set(opened.paths[np.arange(150)])) == 150 and not {f"{folder}/{name}" for name in CORRUPT} & set(
        opened.paths[np.arange(150)])
    assert [path for _, path, _ in summary["skipped"]] == list(CORRUPT)  # named once each
    assert summary["sample"]["rows"] == 8 and summary["sample"]["bits_differing"] == 0
    assert (summary["n_items"], summary["rows"]) == (152, 150)
    assert json.loads((store / "merged" / "merged.json").read_text()) == summary
    ids = np.load(store / "merged" / "ids.npy")
    assert (np.diff(ids) > 0).all() and len(ids) == 150
    query = folder / "b" / "more" / "005.png"  # scripts/search.py index=<store>: the query finds itself at d=0
    found = search(compose_config("search", [f"ckpt_path={checkpoint}", f"index={store}", f"image={query}", "k=150",
                                             "backend=mih", "device=cpu"], tmp_path))
    assert str(query.resolve()) in [path for path, distance in found[0] if distance == 0]
    assert [distance for _, distance in found[0]] == sorted(distance for _, distance in found[0])


@pytest.mark.slow
def test_ddp_spawn_predict_merges_to_the_same_bytes(folder, reference, tiny_csv_run, tmp_path):
    store = tmp_path / "store"
    encode(compose_config("encode", [f"ckpt_path={tiny_csv_run[1]['checkpoint']}", f"images={folder}", f"store={store}",
                                     "chunk_size=20", "trainer=ddp_spawn", "trainer.devices=2",
                                     "trainer.accelerator=cpu", "num_workers=0"], tmp_path))
    summary = merge_store(store)
    records = [json.loads((store / "chunks" / f"{c:06d}.json").read_text()) for c in range(8)]
    assert [record["rows"] + len(record["skipped"]) for record in records] == [20] * 7 + [12]
    assert [path for _, path, _ in summary["skipped"]] == list(CORRUPT) and summary["rows"] == 150
    assert np.array_equal(np.load(store / "merged" / "codes.npy"), reference.codes)  # the same bytes
    assert np.array_equal(np.load(store / "merged" / "ids.npy"), np.delete(np.arange(152), [52, 151]))


def test_store_refuses_other_settings_and_unfinished_chunks(folder, tmp_path):
    settings = {"checkpoint_sha256": "aa", "hash_bit": 16, "resize_size": 36, "crop_size": 32, "precision": "32-true"}
    meta = prepare_store(tmp_path / "s", folder, 100, settings)
    assert (meta["n_items"], meta["n_chunks"]) == (152, 2)
    assert (tmp_path / "s" / "manifest" / "000001.txt").read_text().splitlines()[-2:] == ["c/more/047.png", "c/zz_bad.jpg"]
    with pytest.raises(StoreError, match=r"checkpoint_sha256='aa', not 'bb'.*another store="):
        prepare_store(tmp_path / "s", folder, 100, {**settings, "checkpoint_sha256": "bb"})
    with pytest.raises(StoreError, match=r"chunks 0, 1 are not done -- run scripts/encode.py"):
        merge_store(tmp_path / "s")
    with pytest.raises(StoreError, match="not a merged code store"):
        open_store(tmp_path / "s")


def test_codes_packed_on_the_device_are_pack_codes_bytes():
    outputs = torch.tensor([[0.0, -0.0, 1e-30, -1e-30, 2.0, -2.0, 0.5, -0.5, *([0.0] * 7), -1.0]])  # sign(0) = +1
    outputs = torch.cat([outputs, torch.randn(5, 16)])
    packed = pack_on_device(outputs)
    assert packed.dtype == torch.uint8 and np.array_equal(packed.numpy(), pack_codes(binarize(outputs)))
    assert packed[0].tolist() == [0b11101010, 0b11111110]
