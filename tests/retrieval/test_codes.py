"""Tests for hashnet.retrieval.codes: binarisation, bit packing, the code file and its metadata checks."""
import json

import numpy as np
import pytest
import torch

from hashnet.retrieval.codes import (
    CodeFileError,
    binarize,
    load_codes,
    pack_codes,
    packed_words,
    save_codes,
    unpack_codes,
)
from hashnet.utils import files

META = {"hash_bit": 16, "net": "resnet18", "dataset": "digits", "checkpoint": "last.ckpt"}


def random_codes(n: int, bits: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).choice(np.array([-1, 1], dtype=np.int8), (n, bits))


def test_binarize_sign_of_zero_is_plus_one():
    assert binarize(torch.tensor([[-0.5, 0.0, 2.0]])).tolist() == [[-1, 1, 1]]


def test_pack_by_hand_and_round_trip():
    code = np.array([[1, -1, -1, -1, -1, -1, -1, 1, -1, -1, -1, -1, -1, -1, 1, 1]])
    assert pack_codes(code).tolist() == [[0b10000001, 0b00000011]]  # bit j -> bit 7 - j % 8 of byte j // 8
    codes = random_codes(37, 48)
    packed = pack_codes(torch.from_numpy(codes))
    assert packed.dtype == np.uint8 and packed.shape == (37, 6)
    assert np.array_equal(unpack_codes(packed), codes)


def test_pack_refuses_bad_codes():
    with pytest.raises(ValueError, match="multiple of 8.*hash_bit=12"):
        pack_codes(random_codes(2, 12))
    with pytest.raises(ValueError, match="only hold -1 and \\+1"):
        pack_codes(np.zeros((2, 8)))


def test_packed_words_match_popcount_distances():
    codes = random_codes(5, 72)  # 9 bytes: padded to two 64-bit words
    words = packed_words(pack_codes(codes))
    assert words.shape == (2, 5) and words.dtype == np.uint64
    xor = np.bitwise_count(words[:, :, None] ^ words[:, None, :]).sum(0)
    assert np.array_equal(xor, (72 - codes.astype(int) @ codes.T.astype(int)) // 2)


def test_code_file_round_trip(tmp_path):
    codes, labels = random_codes(4, 16), np.eye(4, 3, dtype=np.uint8)
    path = save_codes(tmp_path / "codes.npz", codes, labels, ["a.png", "b c.png", "ü.png", "d.png"], META)
    loaded = load_codes(path, hash_bit=16, net="resnet18", dataset="digits")
    assert np.array_equal(unpack_codes(loaded.codes), codes) and np.array_equal(loaded.labels, labels)
    assert loaded.paths == ["a.png", "b c.png", "ü.png", "d.png"] and len(loaded) == 4 and loaded.hash_bit == 16
    assert loaded.meta == {"format": "hashnet-codes-1", **META}
    assert [p.name for p in tmp_path.iterdir()] == ["codes.npz"]  # no temporary file left behind


def test_code_file_write_is_atomic(tmp_path, monkeypatch):
    path = save_codes(tmp_path / "codes.npz", random_codes(3, 16), np.ones((3, 2)), ["a", "b", "c"], META)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(files.os, "fsync", crash)  # fail after part of the new file is written
    with pytest.raises(OSError, match="disk full"):
        save_codes(path, random_codes(3, 16, seed=1), np.ones((3, 2)), ["x", "y", "z"], META)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["codes.npz"]


def test_load_refuses_mismatched_metadata(tmp_path):
    path = save_codes(tmp_path / "codes.npz", random_codes(2, 16), np.ones((2, 1)), ["a", "b"], META)
    with pytest.raises(CodeFileError, match="hash_bit=16, expected hash_bit=48"):
        load_codes(path, hash_bit=48)
    with pytest.raises(CodeFileError, match="net='resnet18', expected net='resnet50'"):
        load_codes(path, net="resnet50")
    with pytest.raises(CodeFileError, match="dataset='digits', expected dataset='coco'"):
        load_codes(path, dataset="coco", hash_bit=None)
    assert load_codes(path, hash_bit=None, dataset="digits").paths == ["a", "b"]


def test_load_refuses_missing_or_foreign_files(tmp_path):
    with pytest.raises(CodeFileError, match="does not exist -- write it with scripts/encode.py"):
        load_codes(tmp_path / "nothing.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(CodeFileError, match="text.npz: it is not an .npz archive ..npz file of 9 bytes.: another kind"):
        load_codes(tmp_path / "text.npz")
    (tmp_path / "query.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # issue 29: an image given as the index
    with pytest.raises(CodeFileError, match="query.png: it is not an .npz archive ..png file of 8 bytes.: another kind "
                                            "of file, .* -- pass the code file of scripts/encode.py .out=...npz."):
        load_codes(tmp_path / "query.png")
    np.savez(tmp_path / "old.npz", codes=np.zeros((1, 2), np.uint8), labels=np.zeros((1, 1)), paths=np.array(["a"]),
             meta=np.array(json.dumps({"format": "hashnet-codes-0", **META})))
    with pytest.raises(CodeFileError, match="format 'hashnet-codes-0'"):
        load_codes(tmp_path / "old.npz")


def test_save_checks_its_inputs(tmp_path):
    with pytest.raises(ValueError, match="missing \\['dataset'\\]"):
        save_codes(tmp_path / "c.npz", random_codes(1, 16), np.ones((1, 1)), ["a"], {"hash_bit": 16, "net": "x"})
    with pytest.raises(ValueError, match="hash_bit=32 but the codes have 16 bits"):
        save_codes(tmp_path / "c.npz", random_codes(1, 16), np.ones((1, 1)), ["a"], {**META, "hash_bit": 32})
    with pytest.raises(ValueError, match="2 codes, 2 label rows and 1 paths"):
        save_codes(tmp_path / "c.npz", random_codes(2, 16), np.ones((2, 1)), ["a"], META)
