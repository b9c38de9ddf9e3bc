"""Issue 21's cases that need no script: a full disk under a checkpoint or a code file, temporaries of dead writers,
how any error becomes one line, the search server's request values and upload cap, odd images, the report's
seeds and steps."""
from __future__ import annotations

import errno
import io
import json
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue
from PIL import Image

from hashnet.data.builders.atomic import build_atomically
from hashnet.data.images import read_image, transforms
from hashnet.outputs.report import to_markdown
from hashnet.outputs.runs import collect
from hashnet.retrieval.codes import CodeFile, binarize, pack_codes, save_codes
from hashnet.tasks import serve
from hashnet.inference.encoding import encode_images
from hashnet.tasks.setup import build_model
from hashnet.training.checkpoints import AtomicCheckpointIO
from hashnet.utils.errors import UserError, describe
from hashnet.utils.files import FileWriteError, atomic_write, check_writable

from conftest import compose_config
from small_data import png_16bit, png_bomb


def half_then_full(*args, **kwargs):
    """torch.save / numpy.savez on a disk that fills up half-way."""
    target = args[1] if len(args) > 1 and hasattr(args[1], "write") else args[0]
    target.write(b"PK\x03\x04 half a file")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# ---- a full disk: the old file stays, no temporary is left, the message says so ----
def test_full_disk_while_writing_a_checkpoint(tmp_path, monkeypatch):
    io_, path = AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io_.save_checkpoint({"global_step": 4}, path)
    monkeypatch.setattr(torch, "save", half_then_full)
    with pytest.raises(FileWriteError) as full:
        io_.save_checkpoint({"global_step": 6}, path)
    assert str(full.value) == (f"the disk is full: {path} could not be written (No space left on device); the previous "
                               "file is unchanged -- free space on that disk, or write elsewhere")
    assert isinstance(full.value, OSError) and full.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert io_.load_checkpoint(path)["global_step"] == 4
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


def test_full_disk_while_writing_a_code_file(tmp_path, monkeypatch):
    path, meta = tmp_path / "codes.npz", {"hash_bit": 8, "net": "resnet18", "dataset": "digits"}
    save_codes(path, np.ones((2, 8)), np.eye(2), ["a.png", "b.png"], meta)
    before = path.read_bytes()
    monkeypatch.setattr(np, "savez", half_then_full)
    with pytest.raises(FileWriteError, match=f"the disk is full: {path} could not be written .* -- free space on that "
                                             "disk, or pass out=<another path>"):
        save_codes(path, -np.ones((2, 8)), np.eye(2), ["a.png", "b.png"], meta, fix="pass out=<another path>")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["codes.npz"]


def test_temporaries_of_dead_writers_on_this_host_are_removed(tmp_path):
    gone = os.fork()
    if gone == 0:
        os._exit(0)
    os.waitpid(gone, 0)  # a pid that names no process now
    host = socket.gethostname()
    dead, alive, remote = (tmp_path / f".codes.npz.{pid}@{where}.x1y2.tmp"
                           for pid, where in ((gone, host), (os.getpid(), host), (gone, "elsewhere")))
    for stray in (dead, alive, remote):
        stray.write_bytes(b"half")
    atomic_write(tmp_path / "codes.npz", lambda f: f.write(b"whole"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["codes.npz", alive.name, remote.name])
    # a killed dataset build's folder (issue 29: 22,746 PNGs left forever) goes with the next build
    builds = [tmp_path / f".images.building-{pid}@{where}-0a1b" for pid, where in ((gone, host), (os.getpid(), host))]
    for folder in builds:
        (folder / "images").mkdir(parents=True)
        (folder / "images" / "0000.png").write_bytes(b"png")
    build_atomically(tmp_path / "images", {"builder": "test"}, lambda folder: (folder / "a.txt").write_text("a"))
    assert not builds[0].exists() and builds[1].exists() and (tmp_path / "images" / "a.txt").is_file()


def test_check_writable_names_the_key(tmp_path):
    assert check_writable(tmp_path / "new" / "codes.npz", "out", "out=codes.npz") == tmp_path / "new" / "codes.npz"
    assert not (tmp_path / "new").exists()  # nothing created by the check
    with pytest.raises(UserError, match=f"out={tmp_path} is a folder: give the path of a file to write, e.g. "
                                        "out=c.npz"):
        check_writable(tmp_path, "out", "out=c.npz")
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=f"grid={tmp_path}/file/g.png: {tmp_path}/file is a file, not a folder"):
        check_writable(tmp_path / "file" / "g.png", "grid", "grid=g.png")


# ---- any error, one line ----
def test_describe_finds_the_users_error_in_a_chain_and_names_anything_else():
    try:
        try:
            raise UserError("dataset.topk=0: it must be positive")
        except UserError as inner:
            raise RuntimeError("Lightning wrapped it") from inner
    except RuntimeError as wrapped:
        assert describe(wrapped) == "dataset.topk=0: it must be positive"
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/runs/x/last.ckpt")
    assert describe(full) == ("the disk is full: cannot write /runs/x/last.ckpt (No space left on device) -- free "
                              "space on that disk, or write elsewhere")
    readonly = PermissionError(errno.EROFS, os.strerror(errno.EROFS), "/data/digits")
    assert describe(readonly, "pass hydra.run.dir=<x>") == ("cannot write /data/digits (Read-only file system) -- pass "
                                                            "hydra.run.dir=<x>")
    with pytest.raises(MissingMandatoryValue) as missing:
        OmegaConf.select(OmegaConf.create({"ckpt_path": "???"}), "ckpt_path", throw_on_missing=True)
    assert describe(missing.value) == "ckpt_path is required: pass ckpt_path=<value> on the command line"
    assert describe(KeyError("net")) == "unexpected KeyError: 'net' (HASHNET_DEBUG=1 shows the full chain)"


# ---- the search server: ASCII numbers only, a cap on uploads being decoded ----
@pytest.fixture(scope="module")
def app_parts(digits_root, tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = compose_config("train", ["hash_bit=16", "method.class_num=10"], tmp_path_factory.mktemp("serve"))
    torch.manual_seed(0)
    model = build_model(cfg)
    paths = sorted(str(p) for p in (digits_root / "images").glob("*.png"))[:20]
    batch = torch.stack([transforms(36, 32, train=False)(read_image(p)) for p in paths])
    codes = pack_codes(binarize(encode_images(model, [batch], torch.device("cpu"))))
    meta = {"hash_bit": 16, "net": "resnet18", "dataset": "digits", "split": "database", "checkpoint": None,
            "resize_size": 36, "crop_size": 32}
    yield model, CodeFile(codes, np.eye(10, dtype=np.uint8)[np.arange(20) % 10], paths, meta)
    torch.set_num_threads(threads)


@pytest.mark.parametrize("query, refused", [("k=%C2%B2", "k='²'"), ("item=%D9%A3", "item='٣'"),
                                            ("k=%EF%BC%93", "k='３'")])
def test_api_takes_ascii_digits_only(app_parts, query, refused):
    client = serve.create_app(*app_parts).test_client()
    response = client.get(f"/api/search?item=1&{query}" if query.startswith("k=") else f"/api/search?{query}")
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"].startswith(refused)
    assert client.get("/api/search?item=3&k=2").status_code == 200


def test_uploads_are_decoded_at_most_max_decoding_at_once(app_parts, digits_root, monkeypatch):
    decoding, most, lock = 0, 0, threading.Lock()
    real = serve.decode_upload

    def slow_decode(data: bytes):
        nonlocal decoding, most
        with lock:
            decoding += 1
            most = max(most, decoding)
        time.sleep(0.3)
        with lock:
            decoding -= 1
        return real(data)

    monkeypatch.setattr(serve, "decode_upload", slow_decode)
    app = serve.create_app(*app_parts, max_decoding=2)
    image = (digits_root / "images" / "0001.png").read_bytes()

    def post():
        response = app.test_client().post("/api/search", data={"image": (io.BytesIO(image), "q.png"), "k": "3"},
                                          content_type="multipart/form-data")
        assert response.status_code == 200

    requests = [threading.Thread(target=post) for _ in range(5)]
    for request in requests:
        request.start()
    for request in requests:
        request.join()
    assert most == 2


# ---- odd images: read as training reads them ----
def test_16bit_png_reads_as_8bit_like_pil(tmp_path):
    path = png_16bit(tmp_path / "deep.png")
    pixels = read_image(str(path))
    assert pixels.dtype == torch.uint8
    with Image.open(path) as image:
        expected = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
        assert image.mode == "RGB" and torch.equal(pixels, expected)


@pytest.mark.parametrize("side", [12_000, 20_000])  # over PIL's limit; over twice it (PIL then refuses to open it)
def test_decompression_bomb_is_refused_from_its_header(tmp_path, side):
    with pytest.raises(OSError, match=f"{side * side:,} pixels, over the decoder's limit of 89,478,485"):
        read_image(str(png_bomb(tmp_path / "bomb.png", side)))


# ---- the report: a re-score is not a seed, steps are shown and never averaged across ----
def run_folder(folder: Path, mean_ap: float | None, steps: int, kind: str = "training",
               checkpoint: Path | None = None, topk: int = 1000) -> Path:
    folder.mkdir(parents=True)
    protocol = {"topk": topk, "ties": "index", "empty_queries": "drop", "queries_in_database": False,
                "split": "original"}
    metrics = {"mAP": mean_ap, "protocol": f"mAP@{topk} ties=index empty=drop queries-in-database=no split=original",
               **protocol, "method": "dsh", "hash_bit": 16, "net": "resnet18", "dataset": "digits", "steps": steps,
               "kind": kind, "checkpoint": str(checkpoint or folder / "checkpoints" / "last.ckpt")}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_report_counts_a_checkpoint_once_and_shows_steps(tmp_path):
    seed0 = run_folder(tmp_path / "train" / "seed0", 0.6, 250)
    run_folder(tmp_path / "train" / "seed1", 0.8, 250)
    run_folder(tmp_path / "train" / "short", 0.3, 20)
    run_folder(tmp_path / "eval" / "rescore", 0.6, 250, "evaluation", seed0 / "checkpoints" / "last.ckpt")
    run_folder(tmp_path / "eval" / "step", 0.6, 250, "evaluation", seed0 / "checkpoints" / "step000250.ckpt")
    run_folder(tmp_path / "eval" / "empty", None, 250, "evaluation", seed0 / "checkpoints" / "last.ckpt")
    run_folder(tmp_path / "elsewhere" / "nan", float("nan"), 250)
    outside = run_folder(tmp_path.with_name(tmp_path.name + "_outside") / "seed2", 0.7, 250)
    (tmp_path / "train" / "linked").symlink_to(outside)  # a run folder linked in: counted
    (tmp_path / "train" / "loop").symlink_to(tmp_path / "train")  # a link back up: walked once
    notes: list[str] = []
    runs = collect([tmp_path], notes)
    assert sorted(Path(run.run_dir).name for run in runs) == ["linked", "seed0", "seed1", "short"]
    assert [run.mAP for run in collect([tmp_path / "train" / "seed1" / "metrics.json"])] == [0.8]
    no_score = "no score (its metrics.json's mAP is null -- no query could be scored -- or NaN)"
    assert sorted(notes) == sorted([
        f"left out {tmp_path / 'eval' / 'empty'}: {no_score}",
        f"left out {tmp_path / 'elsewhere' / 'nan'}: {no_score}",
        f"left out {tmp_path / 'eval' / 'rescore'}: it scores the same checkpoint as {seed0} (a re-score by "
        "scripts/evaluate.py, not another seed)",
        f"left out {tmp_path / 'eval' / 'step'}: it scores the same checkpoint as {seed0} (a re-score by "
        "scripts/evaluate.py, not another seed)"])
    table = to_markdown(runs)
    protocol = "mAP@1000 ties=index empty=drop queries-in-database=no split=original"
    assert f"| digits | resnet18 | 16 | dsh | 20 | mAP@1000 | 0.3000 (n=1) |  |  | {protocol} |" in table
    assert f"| digits | resnet18 | 16 | dsh | 250 | mAP@1000 | 0.7000 ± 0.1000 (n=3) |  |  | {protocol} |" in table
    # an evaluation under another protocol is another measurement: kept, in its own row
    run_folder(tmp_path / "eval" / "r100", 0.5, 250, "evaluation", seed0 / "checkpoints" / "last.ckpt", topk=100)
    assert len(collect([tmp_path])) == 5
