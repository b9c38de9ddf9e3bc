"""scripts/export.py end to end on a tiny digits checkpoint, both formats: the file and its sidecar beside the
checkpoint, the parity check on the digits query and database images logged and recorded, the exported codes equal
scripts/encode.py's; what cannot export is refused in one line."""
import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from hashnet.data.images import normalize_pixels, read_image, transforms
from hashnet.retrieval.codes import load_codes
from hashnet.tasks.encode import encode
from hashnet.tasks.export import export
from hashnet.training.exported import ExportError, load_exported, onnx_available, parity, read_sidecar, sidecar_path
from hashnet.utils.errors import ConfigError, exit_on_error

from conftest import compose_config
from script_runner import Case, run_scripts

FORMATS = [pytest.param("onnx", marks=pytest.mark.skipif(not onnx_available(), reason="pip install -e '.[export]'")),
           "torchscript"]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread


@pytest.fixture
def checkpoint(tiny_csv_run, tmp_path) -> Path:
    """A copy of the tiny digits run's checkpoint in a run folder of its own (the export writes beside it)."""
    copy = tmp_path / "run" / "checkpoints" / "last.ckpt"
    copy.parent.mkdir(parents=True)
    shutil.copy(tiny_csv_run[1]["checkpoint"], copy)
    return copy


@pytest.mark.slow
@pytest.mark.parametrize("kind", FORMATS)
def test_export_script_writes_beside_the_checkpoint_and_checks_the_digits(kind, checkpoint, digits_root, tmp_path):
    env = {"HASHNET_DATA_DIR": str(digits_root.parent), "OMP_NUM_THREADS": "1"}
    args = [f"ckpt_path={checkpoint}", f"format={kind}", f"hydra.run.dir={tmp_path / 'log'}"]
    (result,) = run_scripts([Case("export", args, env=env, timeout=600)])
    assert result.code == 0, result.stderr[-3000:]
    path = checkpoint.with_name("last.onnx" if kind == "onnx" else "last.torchscript.pt")
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == sorted(["last.ckpt", path.name, f"{path.name}.json"])
    sidecar = read_sidecar(path)  # describes this very file (its SHA-256)
    assert sidecar == json.loads(sidecar_path(path).read_text())
    assert (sidecar["model_format"], sidecar["hash_bit"], sidecar["method"], sidecar["net"], sidecar["dataset"]) == (
        kind, 16, "hashnet", "resnet18", "digits")
    assert sidecar["input"]["shape"] == ["N", 3, "H", "W"] and sidecar["input"]["resize_size"] == 36  # any size
    assert sidecar["input"]["crop_size"] == 32 and sidecar["dynamic_size"]
    assert sidecar["checkpoint"] == str(checkpoint.resolve())
    check = sidecar["dataset_check"]
    assert check["images"] == "the first 2000 query and database images of digits (1797 images)"
    assert check["same_signs"] and check["differing_bits"] == 0 and (check["items"], check["bits"]) == (1797, 16)
    assert check["max_abs_diff"] < 1e-4 and check["tolerance"] == 1e-4
    assert 0 <= check["flipped_near_zero"] <= check["near_zero"] < 1797 * 16 // 100
    log = result.stdout + result.stderr
    assert "parity on the first 2000 query and database images of digits (1797 images): signs equal for every bit " \
           f"with |h| > 0.0001 (1797 x 16); {check['near_zero']} within it, {check['flipped_near_zero']} of them " \
           "flipped; max |dh| = " in log

    # The exported file's signs, packed, are the code file scripts/encode.py writes with the checkpoint.
    codes = load_codes(encode(compose_config("encode", [f"ckpt_path={checkpoint}", f"paths.data_dir={digits_root.parent}",
                                                        "dataset.eval_batch_size=750", "device=cpu"], tmp_path / "enc")))
    transform = transforms(36, 32, train=False, normalize=False)
    images = normalize_pixels(torch.stack([transform(read_image(p)) for p in codes.paths]))
    h = load_exported(path)(images)
    assert h.shape == (1497, 16) and np.array_equal(np.packbits(h >= 0, axis=1), codes.codes)


@pytest.mark.slow
@pytest.mark.skipif(not onnx_available(), reason="pip install -e '.[export]'")
def test_what_cannot_export_is_refused_in_one_line(checkpoint, digits_root, tmp_path, monkeypatch):
    kind = "onnx"  # what TorchScript cannot save: tests/training/test_export.py (a Python autograd.Function)

    def code_layer(self, z):
        return torch.erfinv(torch.tanh(self.beta * z) * 0.5)  # erfinv has no ONNX operator at opset 17
    monkeypatch.setattr("hashnet.methods.hashnet.HashNet.forward", code_layer)
    cfg = compose_config("export", [f"ckpt_path={checkpoint}", f"format={kind}",
                                    f"paths.data_dir={digits_root.parent}"], tmp_path / "log")
    with pytest.raises(SystemExit) as stopped, exit_on_error("export"):
        export(cfg)
    message = str(stopped.value.code)
    assert message.startswith(f"export: cannot export method=hashnet's code layer to {kind}: ") and "\n" not in message
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["last.ckpt"]  # nothing written


@pytest.mark.slow
def test_a_refused_export_leaves_the_earlier_one_as_it_was(checkpoint, digits_root, tmp_path, monkeypatch):
    overrides = [f"ckpt_path={checkpoint}", "format=torchscript", "parity_images=20",
                 f"paths.data_dir={digits_root.parent}"]
    path = export(compose_config("export", overrides, tmp_path / "log"))
    files = {p.name: p.read_bytes() for p in checkpoint.parent.iterdir()}
    assert sorted(files) == ["last.ckpt", "last.torchscript.pt", "last.torchscript.pt.json"]

    def one_bit_flipped(exported, model, images):  # as a runtime that rounds one saturated bit the other way would
        return replace(parity(exported, model, images), same_signs=False, differing_bits=1)
    monkeypatch.setattr("hashnet.tasks.export.parity", one_bit_flipped)
    for out, kept in ((path, f"the earlier {path} is left as it was"), (tmp_path / "new.pt", "nothing was written")):
        with pytest.raises(SystemExit) as stopped, exit_on_error("export"):
            export(compose_config("export", [*overrides, f"out={out}"], tmp_path / "log"))
        message = str(stopped.value.code)
        assert message.startswith("export: the exported torchscript model's codes differ from the checkpoint's on 1 "
                                  "of 640 bits with |h| > 0.0001 of the first 20 query and database images of digits "
                                  f"(40 images) (max |dh| = ") and "\n" not in message
        assert message.endswith(f"; {kept} -- export format=onnx instead, or skip this check with parity_images=0 at "
                                f"your own risk, and report the versions (torch {torch.__version__})")
    assert {p.name: p.read_bytes() for p in checkpoint.parent.iterdir()} == files  # and no temporary left
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # new.pt neither


def test_an_out_that_is_a_folder_is_refused_before_the_export(tmp_path):
    cfg = compose_config("export", ["ckpt_path=missing.ckpt", f"out={tmp_path}"], tmp_path)
    with pytest.raises(ConfigError) as refused:  # before reading the checkpoint, which is not there
        export(cfg)
    assert str(refused.value) == (f"out={tmp_path} is a folder: give the path of a file to write, "
                                  f"e.g. out={tmp_path}/missing.onnx")


@pytest.mark.parametrize("overrides, error, message", [
    (["format=tflite"], ConfigError, "format='tflite': it must be one of \\['torchscript', 'onnx'\\]"),
    (["format=torchscript", "dynamic_batch=false"], ConfigError, "a traced TorchScript file takes any batch size"),
    (["parity_images=-5"], ConfigError, "parity_images=-5: it must be a whole number >= 0, the query and database "
                                        "images the export is checked on .0 skips that check. -- pass e.g. "
                                        "parity_images=2000"),
    (["format=torchscript", "out=model.onnx"], ConfigError, "out=model.onnx is named as an ONNX file, but "
                                                            "format=torchscript -- pass format=onnx, or "
                                                            "out=model.torchscript.pt"),
])
def test_bad_settings_are_refused(overrides, error, message, tmp_path):
    cfg = compose_config("export", ["ckpt_path=x.ckpt", *overrides], tmp_path)
    with pytest.raises(error, match=message):
        export(cfg)


@pytest.mark.slow
def test_parity_on_images_is_skipped_with_the_way_to_run_it(checkpoint, digits_root, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    cfg = compose_config("export", [f"ckpt_path={checkpoint}", "format=torchscript", "dataset=digits_multi",
                                    f"out={tmp_path / 'model.pt'}", f"paths.data_dir={digits_root.parent}"], tmp_path)
    assert export(cfg) == tmp_path / "model.pt"
    assert "skipped, the checkpoint was trained on digits -- pass dataset=digits to check" in caplog.text
    assert "dataset_check" not in read_sidecar(tmp_path / "model.pt")
    assert ExportError.__mro__[1].__name__ == "UserError"
