"""Tests for hashnet.training.export: every method exports to TorchScript and ONNX with the PyTorch model's signs;
what cannot export is refused by name; the sidecar describes the file it sits beside."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hashnet.data.images import normalize_pixels
from hashnet.methods import METHODS
from hashnet.methods.base import HashMethod
from hashnet.methods.greedyhash import sign_ste
from hashnet.tasks.setup import build_model
from hashnet.training.export import export_onnx, export_torchscript
from hashnet.training.fitting import fit_method
from hashnet.training.exported import (SIGN_TOLERANCE, ExportError, load_exported, onnx_available, parity, read_sidecar,
                                       sidecar_path, sign_parity)
from hashnet.utils.errors import UserError

from conftest import SETTLED, compose_config

needs_onnx = pytest.mark.skipif(not onnx_available(), reason="onnx and onnxruntime are not installed "
                                                             "(pip install -e '.[export]'): ONNX export is not tested")
FORMATS = [pytest.param("onnx", marks=needs_onnx), "torchscript"]
EXPORT = {"onnx": export_onnx, "torchscript": export_torchscript}
SIZE = 32  # digits' crop size: resnet18 from scratch at 32 px
SAME_AS_DHN = ("bihalf", "greedyhash_unsup")  # code layer h = z, as dhn's: nothing new to export, CI seconds saved


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread


def small_backbone(width: int) -> nn.Module:
    """A convolution, a BatchNorm, global pooling (as ResNet's: any input size) and a linear layer to width features,
    in place of ResNet-18 where a test exports a method's code layer (ResNet-18's own export: the tests below and
    tests/tasks/test_export_script.py)."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, width))


def model_of(method: str, tmp_path: Path, small: bool = False):
    """A 16-bit HashingModule of method on resnet18 from scratch (small: on small_backbone, unless fitted on pixels),
    in train mode, its BatchNorm statistics moved away from (0, 1) so that eval mode (running statistics) and train
    mode (batch statistics) differ."""
    overrides = [f"method={method}", "hash_bit=16", *SETTLED.get(method, [])]  # auto settings as numbers
    model = build_model(compose_config("train", overrides, tmp_path))
    if small and not model.method.fitted:
        model.net.backbone = small_backbone(model.net.hash_layer.in_features)
    if model.method.fitted:  # fitted on random pixels (SH's cosines need its fitted frequencies)
        pixels = torch.randint(0, 256, (24, 3, SIZE, SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
        fit_method(model, [(pixels, torch.zeros(24, 10), torch.arange(24))], seed=0)
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1, generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
    return model.train()


def images(*sizes: int, seed: int = 2) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, SIZE, SIZE, generator=generator) for n in sizes]


@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize("method", sorted(set(METHODS) - set(SAME_AS_DHN)))
def test_every_method_exports_with_the_same_signs(method, kind, tmp_path):
    model = model_of(method, tmp_path, small=True)
    if method == "hashnet":
        model.method.beta.fill_(3.7)  # beta is frozen at its value at export
    path = EXPORT[kind](model, tmp_path / "out" / f"model.{kind}", input_size=SIZE, resize_size=36,
                        meta={"checkpoint": "runs/x/last.ckpt"})
    assert model.training  # the caller's model is left in its mode
    result = parity(path, model, images(1, 3, 7))  # three batch sizes: the batch is dynamic
    assert result.same_signs and result.differing_bits == 0 and result.items == 11 and result.bits == 16
    assert result.max_abs_diff < 1e-4
    run = load_exported(path)
    batch = images(5, seed=3)[0]
    with torch.no_grad():
        eval_h, train_h = model.eval()(batch), model.train()(batch)
    exported_h = torch.from_numpy(run(batch))
    assert torch.allclose(exported_h, eval_h, atol=1e-4)
    assert model.method.fitted or not torch.allclose(exported_h, train_h, atol=1e-2)  # pixels have no BatchNorm
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["hash_bit"] == 16 and sidecar["method"] == method and sidecar["net"] == "resnet18"
    assert sidecar["dataset"] == "digits" and sidecar["checkpoint"] == "runs/x/last.ckpt"
    size = [SIZE, SIZE] if model.method.fitted else ["H", "W"]  # a network on pixels fixes their number
    assert sidecar["input"]["shape"] == ["N", 3, *size] and sidecar["input"]["resize_size"] == 36
    assert sidecar["dynamic_size"] == (not model.method.fitted)
    assert sidecar["input"]["mean"] == [0.485, 0.456, 0.406] and sidecar["input"]["std"] == [0.229, 0.224, 0.225]
    assert sidecar["packing"].startswith("bit j of an item -> bit 7 - j % 8 of byte j // 8; +1 -> 1")
    assert sidecar["model_format"] == kind and sidecar["check"]["same_signs"] and read_sidecar(path) == sidecar
    assert sidecar["check"]["tolerance"] == SIGN_TOLERANCE == 1e-4
    assert sorted(p.name for p in path.parent.iterdir()) == [f"model.{kind}", f"model.{kind}.json"]  # no temp files


@pytest.mark.parametrize("kind", FORMATS)
def test_hashnet_beta_is_frozen_at_its_value_at_export(kind, tmp_path):
    model = model_of("hashnet", tmp_path).eval()
    model.method.beta.fill_(2.5)
    path = EXPORT[kind](model, tmp_path / f"model.{kind}", input_size=SIZE)
    batch = images(4)[0]
    with torch.no_grad():
        z = model.net(batch)
    model.method.beta.fill_(9.0)  # training went on; the exported file keeps 2.5
    assert torch.allclose(torch.from_numpy(load_exported(path)(batch)), torch.tanh(2.5 * z), atol=1e-5)
    assert not parity(path, model, batch).max_abs_diff < 1e-3


@needs_onnx
def test_onnx_static_batch(tmp_path):
    model = model_of("dsh", tmp_path)
    path = export_onnx(model, tmp_path / "model.onnx", input_size=SIZE, dynamic_batch=False, batch_size=2)
    assert read_sidecar(path)["input"]["shape"] == [2, 3, "H", "W"] and not read_sidecar(path)["dynamic_batch"]
    assert parity(path, model, images(2, 2)).same_signs
    pixels = torch.randint(0, 256, (2, 3, SIZE, SIZE), dtype=torch.uint8)  # a DataModule's batch: normalised first
    assert parity(path, model, pixels) == parity(path, model, normalize_pixels(pixels))
    with pytest.raises(ExportError, match=f"{path} takes images of shape 2 x 3 x H x W .its sidecar's input.shape., "
                                          "got 3 x 3 x 32 x 32 -- pass batches of 2 .export with dynamic_batch=true"):
        load_exported(path)(images(3)[0])
    odd = parity(path, model, images(5, 3))  # the parity check runs it on chunks of 2, the last one padded
    assert odd.same_signs and odd.items == 8
    with pytest.raises(ExportError, match="batch_size must be a positive integer"):
        export_onnx(model, tmp_path / "other.onnx", input_size=SIZE, dynamic_batch=False, batch_size=0)


@needs_onnx  # TorchScript traces adaptive pooling for any size: test_every_method_exports_with_the_same_signs
@pytest.mark.parametrize("pooled", [1, 2])  # ResNet's global pooling allows any size; a 2 x 2 grid fixes it for ONNX
def test_the_input_size_is_any_where_the_network_allows_and_the_sidecar_says_so(pooled, tmp_path):
    model = model_of("dsh", tmp_path, small=True).eval()
    model.net.backbone[3] = nn.AdaptiveAvgPool2d(pooled)
    model.net.backbone[5] = nn.Linear(8 * pooled ** 2, model.net.hash_layer.in_features)
    path = export_onnx(model, tmp_path / "model.onnx", input_size=SIZE)
    sidecar, run = read_sidecar(path), load_exported(path)
    assert sidecar["input"]["dtype"] == "float32" and sidecar["input"]["range"] == (
        "float32, not uint8 pixels: pixels / 255, then (x - mean) / std per channel, so about [-2.12, 2.64]")
    fixed = pooled == 2
    assert sidecar["dynamic_size"] == (not fixed) and sidecar["input"]["shape"] == ["N", 3, *(
        [SIZE, SIZE] if fixed else ["H", "W"])]
    other = torch.randn(2, 3, 40, 56, generator=torch.Generator().manual_seed(5))
    if fixed:
        assert sidecar["input"]["size"] == "exactly 32 x 32 (crop_size): the network's pooling fixes it"
        with pytest.raises(ExportError, match="takes images of shape N x 3 x 32 x 32 .its sidecar's input.shape., got "
                                              "2 x 3 x 40 x 56 -- resize and centre-crop to 32 x 32 as its sidecar's "
                                              "input.preprocess says"):
            run(other)
    else:
        assert sidecar["input"]["size"] == "any H x W; trained and checked at crop_size (32 x 32)"
        with torch.no_grad():
            assert np.allclose(run(other), model(other).numpy(), atol=1e-5)
    with pytest.raises(ExportError, match="takes float32 images normalised as its sidecar's input.range says, not "
                                          "uint8 pixels -- pass hashnet.data.images.normalize_pixels.images."):
        run(torch.zeros(2, 3, SIZE, SIZE, dtype=torch.uint8))


class SignCodes(HashMethod):
    """A code layer of exact +-1 codes with a straight-through gradient (sign_ste)."""
    name = "sign_codes"

    def forward(self, z):
        return sign_ste(z)


@pytest.mark.parametrize("kind", FORMATS)
def test_sign_straight_through_code_layer_exports(kind, tmp_path):
    model = model_of("greedyhash", tmp_path)
    model.method = SignCodes(16, 10, False)
    path = EXPORT[kind](model, tmp_path / f"model.{kind}", input_size=SIZE)
    result = parity(path, model, images(3, 5))
    assert result.same_signs and result.max_abs_diff == 0.0  # both exactly +-1
    assert read_sidecar(path)["method"] == "sign_codes"


class ErfinvCodes(HashMethod):
    name = "erfinv_codes"

    def forward(self, z):
        return torch.erfinv(torch.tanh(z))  # no ONNX operator at opset 17


class _Sign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.where(x >= 0, 1.0, -1.0)

    @staticmethod
    def backward(ctx, grad):
        return grad


class PythonFunctionCodes(HashMethod):
    name = "python_function_codes"

    def forward(self, z):
        return _Sign.apply(z)  # a torch.autograd.Function that TorchScript cannot save


class ValueBranchCodes(HashMethod):
    name = "value_branch_codes"

    def forward(self, z):
        return z / float(z.abs().mean())  # a Python number: tracing freezes the first batch's


def assert_nothing_written(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.suffix in (".onnx", ".torchscript", ".json", ".tmp")]


@needs_onnx
def test_refuses_a_code_layer_without_onnx_operator_by_name(tmp_path):
    model = model_of("dsh", tmp_path)
    model.method = ErfinvCodes(16, 10, False)
    with pytest.raises(ExportError, match="cannot export method=erfinv_codes's code layer to onnx: .*aten::erfinv"):
        export_onnx(model, tmp_path / "model.onnx", input_size=SIZE)
    assert issubclass(ExportError, UserError)
    assert_nothing_written(tmp_path)


def test_refuses_a_python_function_in_torchscript_by_name(tmp_path):
    model = model_of("dsh", tmp_path)
    model.method = PythonFunctionCodes(16, 10, False)
    with pytest.raises(ExportError, match="method=python_function_codes's code layer to torchscript: .*_Sign"):
        export_torchscript(model, tmp_path / "model.torchscript", input_size=SIZE)
    assert_nothing_written(tmp_path)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # what the refused forward earns
@pytest.mark.parametrize("kind", FORMATS)
def test_refuses_a_forward_that_tracing_freezes(kind, tmp_path):
    model = model_of("dsh", tmp_path)
    model.method = ValueBranchCodes(16, 10, False)
    with pytest.raises(ExportError, match="method=value_branch_codes on net=resnet18 .*codes differ from PyTorch's"):
        EXPORT[kind](model, tmp_path / f"model.{kind}", input_size=SIZE)
    assert_nothing_written(tmp_path)


class ErfinvBackbone(nn.Module):
    def forward(self, images):
        return torch.erfinv(torch.tanh(images.mean(dim=(2, 3)))).repeat(1, 171)[:, :512]


@needs_onnx
def test_refuses_a_backbone_by_name(tmp_path):
    model = model_of("csq", tmp_path)
    model.net.backbone = ErfinvBackbone()
    with pytest.raises(ExportError, match="export net=resnet18 \\(the backbone; method=csq's code layer exports\\)"):
        export_onnx(model, tmp_path / "model.onnx", input_size=SIZE)
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize("kind", FORMATS)
def test_any_module_mapping_images_to_codes_exports(kind, tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 24), nn.Tanh())
    path = EXPORT[kind](model, tmp_path / f"model.{kind}", input_size=SIZE)
    assert parity(path, model, images(2, 9)).same_signs
    sidecar = read_sidecar(path)
    assert sidecar["model"] == "Sequential" and sidecar["hash_bit"] == 24 and "method" not in sidecar


def test_refuses_models_that_do_not_map_images_to_codes(tmp_path):
    with pytest.raises(ExportError, match="model=Linear: it does not run on a float batch \\(2, 3, 32, 32\\)"):
        export_torchscript(nn.Linear(8, 8), tmp_path / "a.pt", input_size=SIZE)
    with pytest.raises(ExportError, match="model=Conv2d: it must map images \\(N, 3, H, W\\) to codes \\(N, K\\)"):
        export_torchscript(nn.Conv2d(3, 8, 3), tmp_path / "b.pt", input_size=SIZE)
    with pytest.raises(ExportError, match="input_size must be a positive number of pixels"):
        export_torchscript(nn.Flatten(), tmp_path / "c.pt", input_size=0)
    with pytest.raises(ExportError, match="meta may not set \\['hash_bit'\\]"):
        export_torchscript(nn.Flatten(), tmp_path / "d.pt", input_size=4, meta={"hash_bit": 3})
    with pytest.raises(ExportError, match="meta must hold JSON values"):
        export_torchscript(nn.Flatten(), tmp_path / "e.pt", input_size=4, meta={"when": object()})
    assert not list(tmp_path.iterdir())


def test_sidecar_must_describe_the_file_beside_it(tmp_path):
    path = export_torchscript(nn.Flatten(), tmp_path / "flat.pt", input_size=4)
    assert read_sidecar(path)["hash_bit"] == 48 and "packing" in read_sidecar(path)
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ExportError, match="flat.pt is not the file its sidecar flat.pt.json describes"):
        load_exported(path)
    sidecar_path(path).write_text("{not json")
    with pytest.raises(ExportError, match="flat.pt.json is damaged or not a hashnet export sidecar"):
        read_sidecar(path)
    sidecar_path(path).unlink()
    with pytest.raises(ExportError, match="flat.pt.json does not exist -- export the model again"):
        read_sidecar(path)


def test_onnx_export_needs_its_packages(tmp_path, monkeypatch):
    monkeypatch.setattr("hashnet.training.export.onnx_available", lambda: False)
    with pytest.raises(ExportError, match="pip install -e '.\\[export\\]'"):
        export_onnx(nn.Flatten(), tmp_path / "m.onnx", input_size=4)


def test_signs_must_agree_beyond_the_tolerance_and_those_within_it_are_counted():
    torch_h = torch.tensor([[0.5, -5e-5, 0.9], [-0.3, 0.0, 2e-4]])
    exported_h = torch.tensor([[0.5, 2e-5, 0.9], [-0.3, -1e-7, 2e-4]])  # 0.0 is +1, -1e-7 is -1: both flip near 0
    result = sign_parity(torch_h, exported_h)
    assert (result.same_signs, result.differing_bits, result.items, result.bits) == (True, 0, 2, 3)
    assert (result.tolerance, result.near_zero, result.flipped_near_zero) == (1e-4, 2, 2)  # -5e-5 and 0.0
    assert result.max_abs_diff == pytest.approx(7e-5)  # |2e-5 - -5e-5|
    exported_h[1, 2] = -2e-4  # 2e-4 is beyond the tolerance: its flip refuses
    result = sign_parity(torch_h, exported_h)
    assert (result.same_signs, result.differing_bits, result.near_zero, result.flipped_near_zero) == (False, 1, 2, 2)
    assert result.max_abs_diff == pytest.approx(4e-4)
    result = sign_parity(torch_h, exported_h, tolerance=2e-4)  # at the tolerance is within it
    assert (result.same_signs, result.differing_bits, result.near_zero, result.flipped_near_zero) == (True, 0, 3, 3)
    with pytest.raises(ExportError, match="returns codes of shape \\(2, 2\\), PyTorch's are \\(2, 3\\)"):
        sign_parity(torch_h, exported_h[:, :2])


class FixedCodes(nn.Module):
    """h = (0, 5e-5, -1, 0.3) for every image: two outputs within the tolerance of 0."""

    def __init__(self):
        super().__init__()
        self.register_buffer("h", torch.tensor([0.0, 5e-5, -1.0, 0.3]))

    def forward(self, images):
        return self.h + 0 * images.mean(dim=(1, 2, 3))[:, None]


@pytest.mark.parametrize("kind", FORMATS)
def test_the_sidecar_counts_the_outputs_within_the_tolerance(kind, tmp_path):
    path = EXPORT[kind](FixedCodes(), tmp_path / f"model.{kind}", input_size=4)
    check = read_sidecar(path)["check"]
    items = 1 + 2 if kind == "onnx" else 2 + 3  # the check's two random batches: batch_size, then one more
    assert (check["items"], check["bits"], check["differing_bits"], check["same_signs"]) == (items, 4, 0, True)
    assert (check["tolerance"], check["near_zero"], check["flipped_near_zero"]) == (1e-4, 2 * items, 0)
