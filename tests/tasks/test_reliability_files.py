"""Every file a user hands over is checked and named when damaged: checkpoints, code files, query images."""
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hashnet.retrieval.codes import CodeFileError, load_codes, save_codes
from hashnet.tasks.search import QueryImageError, read_query
from hashnet.inference.checkpoint import load_checkpoint
from hashnet.training.checkpoints import CheckpointFileError, read_checkpoint, resume_checkpoint
from hashnet.utils.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


def write_checkpoint(path: Path, step: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"w": torch.arange(2000.0)}, "global_step": step}, path)
    return path


def truncate(path: Path) -> Path:
    """Cut the file to half its bytes, as an interrupted copy leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture
def damaged(tmp_path) -> dict[str, Path]:
    """A truncated checkpoint, a text file and an empty file, each named .ckpt."""
    (tmp_path / "notes.ckpt").write_text("step 150: loss 0.3\n")
    (tmp_path / "empty.ckpt").touch()
    return {"truncated": truncate(write_checkpoint(tmp_path / "trunc.ckpt", 4)), "text": tmp_path / "notes.ckpt",
            "empty": tmp_path / "empty.ckpt"}


@pytest.mark.parametrize("kind, problem", [
    ("truncated", "it is not a PyTorch checkpoint .no zip archive.: truncated by an interrupted write or copy"),
    ("text", "it is not a PyTorch checkpoint"),
    ("empty", r"it is empty \(0 bytes\)"),
])
def test_damaged_checkpoint_is_named_with_the_fix(damaged, kind, problem):
    path = damaged[kind]
    for load in (load_checkpoint, read_checkpoint, lambda p: resume_checkpoint(str(p), False, p.parent)):
        with pytest.raises(CheckpointFileError, match=f"checkpoint {path}: {problem}.* -- check ckpt_path: copy it again"
                                                     r", or pass another checkpoint \(ckpt_path="):
            load(path)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch >= 2.14: torch.jit is deprecated
@pytest.mark.parametrize("kind", ["torchscript", "onnx"])  # issue 29: not torch's weights_only advice
def test_an_export_given_as_the_checkpoint_names_its_checkpoint(tmp_path, kind):
    source = write_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt", 4)
    if kind == "torchscript":  # no sidecar: the archive says what it is
        path, named, what = tmp_path / "last.torchscript.pt", "<run>/checkpoints/last.ckpt", "a TorchScript"
        torch.jit.save(torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2)), path)
    else:  # its sidecar names the checkpoint
        path, named, what = tmp_path / "last.onnx", source, "an ONNX"
        path.write_bytes(b"\x08\x07\x12\x07pytorch")
        (tmp_path / "last.onnx.json").write_text(json.dumps({"model_format": "onnx", "checkpoint": str(source)}))
    for load in (load_checkpoint, read_checkpoint):
        with pytest.raises(CheckpointFileError) as refused:
            load(path)
        assert str(refused.value) == (f"checkpoint {path}: it is {what} export (scripts/export.py), not a checkpoint -- "
                                      f"pass the checkpoint it was exported from: ckpt_path={named}")


def test_checkpoint_without_weights_is_refused(tmp_path):
    torch.save({"codes": torch.zeros(3)}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointFileError, match="holds no model weights .no state_dict.: not a Lightning checkpoint"):
        read_checkpoint(tmp_path / "other.ckpt")


def test_resume_over_a_damaged_last_uses_the_newest_intact_step(tmp_path, caplog):
    checkpoints = tmp_path / "checkpoints"
    for step in (2, 4, 6):
        write_checkpoint(checkpoints / f"step{step:06d}.ckpt", step)
    truncate(checkpoints / "step000006.ckpt")  # the newest step is damaged too: step 4 is the one
    (checkpoints / "last.ckpt").write_bytes(b"PK\x03\x04 half")
    with caplog.at_level(logging.WARNING):
        assert resume_checkpoint(None, True, tmp_path) == str(checkpoints / "step000004.ckpt")
    assert f"checkpoint {checkpoints / 'last.ckpt'}: it is not a PyTorch checkpoint" in caplog.text
    assert f"resuming from {checkpoints / 'step000004.ckpt'} instead, the newest intact step checkpoint" in caplog.text

    for step in (2, 4):
        truncate(checkpoints / f"step{step:06d}.ckpt")
    with pytest.raises(CheckpointFileError, match="(?s)last.ckpt: it is not a PyTorch checkpoint.*and no step checkpoint "
                                                  "of the run can replace it.*step000006.ckpt: it is not.*step000002.ckpt"
                                                  ".*-- start the run again without resume=true, or pass ckpt_path="):
        resume_checkpoint(None, True, tmp_path)


def test_damaged_code_file_is_named(tmp_path):
    path = tmp_path / "codes.npz"
    save_codes(path, np.ones((4, 16), np.float32), np.eye(4), ["a", "b", "c", "d"],
               {"hash_bit": 16, "net": "resnet18", "dataset": "digits", "split": "database", "checkpoint": "x"})
    truncate(path)
    with pytest.raises(CodeFileError, match=f"code file {path}: it is not an .npz archive .* one truncated by an "
                                            "interrupted write or copy -- .* write it again with scripts/encode.py"):
        load_codes(path)


def test_damaged_query_image_is_named(tmp_path):
    (tmp_path / "query.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(QueryImageError, match=f"query image {tmp_path / 'query.png'} cannot be read as an image .* -- "
                                              "pass a JPEG, PNG or WebP file: image=PATH"):
        read_query(tmp_path / "query.png")
    assert issubclass(QueryImageError, UserError)


@pytest.mark.slow  # a fresh interpreter importing torch, Lightning and Hydra
def test_script_prints_the_message_without_a_traceback(damaged):
    args = [sys.executable, "scripts/evaluate.py", f"ckpt_path={damaged['text']}", "trainer.accelerator=cpu",
            f"hydra.run.dir={damaged['text'].parent / 'run'}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HASHNET_DEBUG": "", "HYDRA_FULL_ERROR": ""}
    result = subprocess.run(args, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith(f"evaluate: checkpoint {damaged['text']}: it is not a PyTorch checkpoint")
    assert "Traceback" not in result.stderr and "PytorchStreamReader" not in result.stderr
