"""Binary codes: from network outputs to {-1,+1}, bit packing, and the code file users keep.

A code file (``.npz``, written atomically) holds one split's codes packed 8 bits a byte (bit j of
an item is bit 7 - j % 8 of byte j // 8: numpy's big-endian ``packbits`` order, which faiss's
binary indexes also read), its labels, its image paths and a JSON metadata record (hash_bit, net,
dataset, checkpoint and its sha256, split and the eval transform's sizes). Loading checks the metadata against
what the caller expects, so codes of another network, length or dataset are never mixed.
"""
from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hashnet.utils.errors import UserError
from hashnet.utils.files import atomic_write, file_sha256
from hashnet.utils.signs import sign

log = logging.getLogger(__name__)

FORMAT = "hashnet-codes-1"  # bumped when the layout of the file changes
INDEX_FORMAT = "hashnet-index-1"  # hashnet.retrieval.index_file's saved index: told apart from a code file
CHECKED = ("hash_bit", "net", "dataset")  # metadata that load_codes compares with the caller's


class CodeFileError(UserError, ValueError):
    """A code file that cannot be read, or whose metadata differ from what the caller expects."""


def as_numpy(x: np.ndarray | Tensor) -> np.ndarray:
    """A tensor (any device, any grad state) or array-like as a numpy array."""
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def binarize(outputs: Tensor) -> Tensor:
    """outputs: (N, K) real -> codes: (N, K) int8 in {-1,+1}, with sign(0) = +1."""
    return sign(outputs).to(torch.int8)


class CodeLengthError(UserError, ValueError):
    """Codes whose length is not a whole number of bytes cannot be packed."""


def check_packable(hash_bit: int) -> None:
    """Packed codes need whole bytes: CodeLengthError (a ValueError) unless hash_bit is a multiple of 8."""
    if hash_bit % 8:
        low = hash_bit // 8 * 8
        raise CodeLengthError(f"packed codes (a code file, an index) need a multiple of 8 bits, one byte holding 8: "
                              f"not hash_bit={hash_bit} -- train with " +
                              (f"hash_bit={low} or hash_bit={low + 8}" if low else "hash_bit=8"))


def pack_codes(codes: np.ndarray | Tensor) -> np.ndarray:
    """codes (N, K) in {-1,+1} -> (N, K/8) uint8, bit +1 -> 1; K must be a multiple of 8."""
    a = as_numpy(codes)
    if a.ndim != 2:
        raise ValueError(f"codes must be (N, K), got shape {a.shape}")
    check_packable(a.shape[1])
    ones = a == 1
    if not (ones | (a == -1)).all():
        raise ValueError("codes must only hold -1 and +1 (binarize the network outputs first)")
    return np.packbits(ones, axis=1)


def unpack_codes(packed: np.ndarray) -> np.ndarray:
    """packed (N, B) uint8 -> codes (N, 8B) int8 in {-1,+1}; the inverse of pack_codes."""
    if packed.ndim != 2 or packed.dtype != np.uint8:
        raise ValueError(f"packed codes must be a (N, B) uint8 array, got {packed.dtype} {packed.shape}")
    return np.unpackbits(packed, axis=1).astype(np.int8) * 2 - 1


def pad_bytes(packed: np.ndarray, width: int) -> np.ndarray:
    """packed (N, B) uint8 with zero bytes appended up to (N, width), contiguous (no copy when it already is and
    B = width): zero bits change no Hamming distance."""
    if packed.shape[1] == width:
        return np.ascontiguousarray(packed)
    return np.concatenate([packed, np.zeros((len(packed), width - packed.shape[1]), np.uint8)], axis=1)


def code_words(packed: np.ndarray) -> np.ndarray:
    """packed (N, B) uint8 -> (N, W) uint64, W = ceil(B / 8), zero-padded: one code a row of 64-bit words."""
    return pad_bytes(packed, packed.shape[1] + -packed.shape[1] % 8).view(np.uint64)


def packed_words(packed: np.ndarray) -> np.ndarray:
    """packed (N, B) uint8 -> (W, N) uint64, W = ceil(B / 8): the layout of hashnet.retrieval.metrics' Hamming code."""
    return np.ascontiguousarray(code_words(packed).T)


@dataclass(frozen=True)
class CodeFile:
    """One encoded split: packed codes (N, K/8) uint8, labels (N, C) uint8, paths (N,), metadata."""
    codes: np.ndarray
    labels: np.ndarray
    paths: list[str]
    meta: dict[str, Any]

    @property
    def hash_bit(self) -> int:
        return int(self.meta["hash_bit"])

    def __len__(self) -> int:
        return len(self.paths)


def save_codes(path: str | Path, codes: np.ndarray | Tensor, labels: np.ndarray | Tensor,
               paths: list[str], meta: dict[str, Any], fix: str = "write elsewhere") -> Path:
    """Pack codes (N, K) in {-1,+1} and write them with labels (N, C) 0/1, paths and meta, atomically.

    meta must hold hash_bit, net and dataset (checked on load); hash_bit must equal K. A full disk or an unwritable
    folder raises hashnet.utils.files.FileWriteError (fix: what else to do), leaving an earlier file unchanged.
    """
    packed = pack_codes(codes)
    labels = as_numpy(labels)
    missing = [key for key in CHECKED if key not in meta]
    if missing:
        raise ValueError(f"code file metadata needs {list(CHECKED)}, missing {missing}")
    if int(meta["hash_bit"]) != packed.shape[1] * 8:
        raise ValueError(f"meta hash_bit={meta['hash_bit']} but the codes have {packed.shape[1] * 8} bits")
    if not len(packed) == len(labels) == len(paths):
        raise ValueError(f"{len(packed)} codes, {len(labels)} label rows and {len(paths)} paths: they must match")
    record = json.dumps({"format": FORMAT, **meta})
    arrays = {"codes": packed, "labels": labels.astype(np.uint8), "paths": np.array(paths, dtype=str),
              "meta": np.array(record)}
    return atomic_write(path, lambda f: np.savez(f, **arrays), fix)


def archive_format(path: str | Path) -> str | None:
    """The "format" of the metadata record of a hashnet archive (a code file, an index), else None (not one)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["meta"])).get("format")
    except (OSError, ValueError, KeyError, EOFError, AttributeError, zipfile.BadZipFile):
        return None


def not_an_archive(path: Path) -> str | None:
    """Why the file at path cannot be a hashnet archive (a code file, an index) before numpy reads it: it is no
    .npz (zip) archive; else None."""
    if zipfile.is_zipfile(path):
        return None
    return (f"it is not an .npz archive ({path.suffix or 'no suffix'} file of {path.stat().st_size:,} bytes): another "
            "kind of file, or one truncated by an interrupted write or copy")


def is_code_file(path: str | Path) -> bool:
    """Whether path is a code file (what an encode may write over)."""
    return archive_format(path) == FORMAT


CODE_FILE = ("a code file", is_code_file)  # for hashnet.utils.files.check_writable(..., replaces=CODE_FILE)


def checkpoint_mismatch(meta: dict[str, Any], sha256: str | None, checkpoint: str | Path) -> str | None:
    """Why codes recorded with meta were not made by the checkpoint file whose content hash is sha256 (at
    checkpoint), or None when they were, or when either side does not know its checkpoint (files of earlier
    versions record its path only): the content is compared, not the path, so a copied or moved checkpoint
    matches and one rewritten at the same path does not."""
    recorded = meta.get("checkpoint_sha256")
    if recorded is None or sha256 is None or recorded == sha256:
        return None
    return (f"its codes come from another checkpoint than {checkpoint} (recorded: sha256 {recorded[:12]}..., "
            f"{meta.get('checkpoint')}; this one: sha256 {sha256[:12]}...)")


def check_codes_checkpoint(meta: dict[str, Any], ckpt_path: str | Path, file: str | Path) -> None:
    """CodeFileError when the code file at file (metadata meta) was encoded with another checkpoint than the one at
    ckpt_path (checkpoint_mismatch: by content); a warning when the file records only a path (earlier versions)
    and it is another one."""
    mismatch = checkpoint_mismatch(meta, file_sha256(ckpt_path), ckpt_path)
    if mismatch:
        source = f"images={meta['images']}" if meta.get("split") == "images" and meta.get("images") else \
            f"dataset={meta.get('dataset')} split={meta.get('split')}"
        raise CodeFileError(f"code file {file}: {mismatch}; codes of two checkpoints are not comparable -- encode "
                            f"again: python scripts/encode.py ckpt_path={ckpt_path} {source} out={file}")
    if "checkpoint_sha256" not in meta and meta.get("checkpoint") != str(Path(ckpt_path).resolve()):
        log.warning("%s was encoded with %s, not %s: codes of different checkpoints are not comparable unless the "
                    "weights are the same", file, meta.get("checkpoint"), ckpt_path)


def load_codes(path: str | Path, **expected: Any) -> CodeFile:
    """Read a code file; CodeFileError if it is not one, or if a metadata value (e.g. hash_bit=48,
    net="resnet50", dataset="coco") differs from the one given. None values are not checked."""
    path = Path(path)
    if not path.is_file():
        raise CodeFileError(f"code file {path} does not exist -- write it with scripts/encode.py")
    if archive_format(path) == INDEX_FORMAT:
        raise CodeFileError(f"{path} is an index (HammingIndex.save), not a code file -- pass the code file of "
                            "scripts/encode.py (out=...npz), or load the index with HammingIndex.load")
    if problem := not_an_archive(path):
        raise CodeFileError(f"code file {path}: {problem} -- pass the code file of scripts/encode.py (out=...npz), or "
                            "write it again with scripts/encode.py")
    try:
        with np.load(path, allow_pickle=False) as data:
            codes, labels, paths = data["codes"], data["labels"], data["paths"].tolist()
            meta = json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:  # not .npz, truncated, other arrays
        raise CodeFileError(f"code file {path} is damaged or not a hashnet code file ({type(err).__name__}: {err}) -- "
                            "write it again with scripts/encode.py") from err
    if meta.get("format") != FORMAT:
        raise CodeFileError(f"{path} has format {meta.get('format')!r}, this version reads {FORMAT!r}: re-encode it")
    for key, value in expected.items():
        if value is not None and meta.get(key) != value:
            raise CodeFileError(f"{path} holds codes with {key}={meta.get(key)!r}, expected {key}={value!r}: "
                                f"encode the database with the same checkpoint (scripts/encode.py)")
    return CodeFile(codes, labels, paths, meta)

