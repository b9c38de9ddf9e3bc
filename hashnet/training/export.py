"""Export a hashing model to TorchScript or ONNX, with a JSON sidecar saying how to feed it and read its codes
(hashnet.training.exported reads them back).

The exported file maps a float32 image batch (N, 3, H, W), RGB pixels scaled to [0, 1] then normalised
with the ImageNet mean/std (hashnet.data.images.normalize_pixels), to the continuous codes h (N, K):
the backbone, the hash layer and the method's code layer of a HashingModule (or any module mapping
such a batch to (N, K)), in eval mode (BatchNorm's running statistics, no dropout), every buffer
frozen at its value at export (HashNet's beta). The binary codes are sign(h) with sign(0) = +1,
packed as code files are: bit j of an item -> bit 7 - j % 8 of byte j // 8, +1 -> 1
(``np.packbits(h >= 0, axis=1)``).

Files are written atomically, the model first, then ``<file>.json`` beside it (the sidecar: input
size, mean/std, hash_bit, the packing rule, the model file's SHA-256 and the export check). Before
anything is written, the exported model runs on random batches (two batch sizes when the batch is
dynamic) and its h must match PyTorch's within 1e-3 of max |h| (+ 1e-6), with the same sign on every bit
where |h| > SIGN_TOLERANCE (hashnet.training.exported: within it, float error may round the sign either way;
the sidecar counts those outputs); a model that fails to trace, to convert or to match is refused with an
ExportError naming the method or backbone and why. The file takes images of any size H x W where the network
gives PyTorch's codes at another size too (global pooling, as ResNet's: checked on images half as large again),
else the trained size only; the sidecar's input says which (shape, size), its dtype and its range.
TorchScript files are traced (torch.jit.trace) and run with torch.jit.load; ONNX files come from
torch's TorchScript-based exporter (torch.onnx.export(dynamo=False), which needs only the onnx
package) and run with onnxruntime on the CPU: pip install -e '.[export]'. torch 2.14 marks
torch.jit deprecated and prefers its dynamo ONNX exporter (which would also need onnxscript); both
paths used here still work, and their deprecation warnings are silenced. The ONNX file is the
durable format.
"""
from __future__ import annotations

import hashlib
import io
import json
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hashnet.data.images import IMAGENET_MEAN, IMAGENET_STD
from hashnet.training.exported import (
    FORMAT,
    INPUT,
    OUTPUT,
    ExportError,
    Parity,
    compare,
    eval_copy,
    onnx_available,
    quiet_deprecations,
    runner,
    sidecar_path,
)
from hashnet.training.module import HashingModule
from hashnet.utils.files import atomic_write, atomic_write_json

OPSET = 17  # ONNX opset: onnxruntime >= 1.14 runs it, and it has every op torchvision's backbones need
PACKING = "bit j of an item -> bit 7 - j % 8 of byte j // 8; +1 -> 1, -1 -> 0 (np.packbits(h >= 0, axis=1))"
SIDECAR_KEYS = ("format", "model_file", "model_format", "model_sha256", "input", "output", "hash_bit", "packing",
                "dynamic_batch", "dynamic_size", "check", "exported_with")  # written by the export; meta adds others
_CHECK_SEED = 0


class _CodeNet(nn.Module):
    """A HashingModule's forward without its Python-side checks: backbone -> hash layer -> code layer."""

    def __init__(self, model: HashingModule) -> None:
        super().__init__()
        self.backbone, self.hash_layer, self.method = model.net.backbone, model.net.hash_layer, model.method

    def forward(self, images: Tensor) -> Tensor:
        return self.method(self.hash_layer(self.backbone(images)))


def describe(model: nn.Module) -> dict[str, Any]:
    """What names a model (errors, sidecar): a HashingModule's method, net, hash_bit, dataset, else its class."""
    if isinstance(model, HashingModule):
        return {"method": model.method.name, "net": model.hparams.net["backbone"], "hash_bit": model.hash_bit,
                "dataset": model.hparams.dataset}
    return {"model": type(model).__name__}


def _named(info: dict[str, Any]) -> str:
    return " on ".join(f"{key}={info[key]}" for key in ("method", "net", "model") if key in info)


def _random_images(batch: int, size: int, seed: int) -> Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def export_torchscript(model: nn.Module, path: str | Path, input_size: int = 224, *, resize_size: int | None = None,
                       meta: dict[str, Any] | None = None) -> Path:
    """Trace model (eval mode, CPU, float32) for (N, 3, input_size, input_size) float batches and write it to path.

    Any batch size runs (a traced graph has no fixed batch). resize_size: the eval transform's resize
    before its centre crop to input_size, recorded in the sidecar; meta: more JSON values for it
    (e.g. checkpoint). Returns path; the sidecar is path + ".json".
    """
    return _export(model, Path(path), "torchscript", input_size, resize_size, meta, dynamic_batch=True, batch_size=2)


def export_onnx(model: nn.Module, path: str | Path, input_size: int = 224, *, dynamic_batch: bool = True,
                batch_size: int = 1, resize_size: int | None = None, meta: dict[str, Any] | None = None) -> Path:
    """Convert model (eval mode, CPU, float32) to ONNX (opset OPSET, input "images", output "h") and write it to path.

    dynamic_batch: any batch size N runs; else exactly batch_size. resize_size, meta: as export_torchscript.
    """
    if not onnx_available():
        raise ExportError("ONNX export needs onnx and onnxruntime: pip install -e '.[export]'")
    if not dynamic_batch and (not isinstance(batch_size, int) or batch_size < 1):
        raise ExportError(f"batch_size must be a positive integer with dynamic_batch=False, got {batch_size!r}")
    return _export(model, Path(path), "onnx", input_size, resize_size, meta, dynamic_batch, batch_size)


def _export(model: nn.Module, path: Path, kind: str, input_size: int, resize_size: int | None,
            meta: dict[str, Any] | None, dynamic_batch: bool, batch_size: int) -> Path:
    info, meta = describe(model), dict(meta or {})
    if not isinstance(input_size, int) or isinstance(input_size, bool) or input_size < 1:
        raise ExportError(f"input_size must be a positive number of pixels, got {input_size!r}")
    if sorted(set(meta) & set(SIDECAR_KEYS)):
        raise ExportError(f"meta may not set {sorted(set(meta) & set(SIDECAR_KEYS))}: the export writes them")
    try:
        json.dumps(meta)
    except TypeError as err:
        raise ExportError(f"meta must hold JSON values (str, numbers, lists, dicts): {err}") from err
    reference = eval_copy(model)
    # eval() on the wrapper too: the exporters put back the mode they found, recursively
    core = _CodeNet(reference).eval() if isinstance(reference, HashingModule) else reference
    example = _random_images(batch_size, input_size, _CHECK_SEED)
    try:
        with torch.no_grad():
            h = reference(example)
    except Exception as err:
        raise ExportError(f"cannot export {_named(info)}: it does not run on a float batch {tuple(example.shape)} "
                          f"({type(err).__name__}: {err}) -- export at the input size it was trained with") from err
    if not isinstance(h, Tensor) or h.ndim != 2 or len(h) != batch_size or not h.is_floating_point():
        got = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
        raise ExportError(f"cannot export {_named(info)}: it must map images (N, 3, H, W) to codes (N, K), got {got}")
    data = _any_size(core, kind, example, dynamic_batch, reference, float(h.abs().max()))
    dynamic_size = data is not None
    data = data or _convert(core, kind, example, dynamic_batch, info, dynamic_size=False)
    other = _random_images(batch_size + 1 if dynamic_batch else batch_size, input_size, _CHECK_SEED + 1)
    batches = [example, other]  # another batch: constants frozen by tracing differ on it
    check = compare(runner(kind, data), reference, batches)
    if not _agrees(check, float(h.abs().max())):
        raise ExportError(f"cannot export {_named(info)} to {kind}: the exported model's codes differ from PyTorch's "
                          f"(max |dh| = {check.max_abs_diff:.3g}, {check.differing_bits} of {check.items * check.bits} "
                          f"signs where |h| > {check.tolerance:g}) on random images -- its forward likely branches on "
                          "values in Python, which tracing freezes; write the code layer with tensor operations "
                          "(torch.where) instead")
    shape = "N" if dynamic_batch else batch_size
    low = min(-mean / std for mean, std in zip(IMAGENET_MEAN, IMAGENET_STD))  # a black pixel's lowest channel
    high = max((1 - mean) / std for mean, std in zip(IMAGENET_MEAN, IMAGENET_STD))
    fixed = {
        "format": FORMAT, "model_file": path.name, "model_format": kind,
        "model_sha256": hashlib.sha256(data).hexdigest(),
        "input": {"name": INPUT, "shape": [shape, 3, *(("H", "W") if dynamic_size else (input_size, input_size))],
                  "dtype": "float32", "channels": "RGB", "resize_size": resize_size, "crop_size": input_size,
                  "size": f"any H x W; trained and checked at crop_size ({input_size} x {input_size})" if dynamic_size
                  else f"exactly {input_size} x {input_size} (crop_size): the network's pooling fixes it",
                  "range": f"float32, not uint8 pixels: pixels / 255, then (x - mean) / std per channel, so about "
                           f"[{low:.2f}, {high:.2f}]",
                  "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
                  "preprocess": "resize to (resize_size, resize_size), centre-crop crop_size, pixels / 255, "
                                "then (x - mean) / std per channel"},
        "output": {"name": OUTPUT, "shape": [shape, int(h.shape[1])], "dtype": "float32",
                   "codes": "b = +1 where h >= 0, else -1 (sign(0) = +1)"},
        "hash_bit": int(h.shape[1]),
        "packing": PACKING if h.shape[1] % 8 == 0 else f"none: hash_bit={h.shape[1]} is not a multiple of 8",
        "dynamic_batch": dynamic_batch,
        "dynamic_size": dynamic_size,
        "check": {"images": "random normal batches", **asdict(check)},
        "exported_with": {"torch": torch.__version__, **({"opset": OPSET} if kind == "onnx" else {})},
    }
    assert tuple(fixed) == SIDECAR_KEYS
    sidecar = {**fixed, **{key: value for key, value in info.items() if key != "hash_bit"}, **meta}
    atomic_write(path, lambda f: f.write(data))
    atomic_write_json(sidecar_path(path), sidecar)
    return path


def _agrees(check: Parity, scale: float) -> bool:
    """Whether an export's h matches PyTorch's: within 1e-3 of scale (max |h|) + 1e-6, every sign beyond the
    tolerance the same (False for NaN)."""
    return check.max_abs_diff <= 1e-3 * scale + 1e-6 and check.same_signs


def _any_size(core: nn.Module, kind: str, example: Tensor, dynamic_batch: bool, reference: nn.Module,
              scale: float) -> bytes | None:
    """The export taking images of any size H x W, when the network allows it (global pooling, as ResNet's): it
    must give PyTorch's codes on images half as large again; None where it does not, or where the
    exporter or the network refuses another size (then the export is made for the trained size alone)."""
    size = example.shape[-1] + max(1, example.shape[-1] // 2)
    if kind == "onnx" and any(isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and
                              module.output_size not in (1, (1, 1), [1, 1]) for module in core.modules()):
        return None  # the ONNX exporter needs a fixed input size there (AlexNet's and VGG's pooling to 6x6, 7x7)
    try:
        data = _serialize(core, kind, example, dynamic_batch, dynamic_size=True)
        check = compare(runner(kind, data), reference, [_random_images(len(example), size, _CHECK_SEED + 2)])
    except Exception:  # noqa: BLE001 -- any failure at another size means: not for any size
        return None
    return data if _agrees(check, scale) else None


def _convert(core: nn.Module, kind: str, example: Tensor, dynamic_batch: bool, info: dict[str, Any],
             dynamic_size: bool) -> bytes:
    """The exported file's bytes; ExportError naming the part that cannot be exported (code layer or backbone)."""
    try:
        return _serialize(core, kind, example, dynamic_batch, dynamic_size)
    except Exception as err:
        culprit = _named(info)
        if isinstance(core, _CodeNet):  # the code layer alone, on hash-layer outputs: is it the method's fault?
            try:
                with torch.no_grad():
                    z = core.hash_layer(core.backbone(example))
                _serialize(core.method, kind, z, dynamic_batch, dynamic_size=False)
                culprit = f"net={info['net']} (the backbone; method={info['method']}'s code layer exports)"
            except Exception:  # noqa: BLE001 -- any failure of the code layer alone makes it the culprit
                culprit = f"method={info['method']}'s code layer"
        why = (str(err).strip().splitlines() or [""])[0][:500]  # the first line: the exporter appends its graph
        raise ExportError(f"cannot export {culprit} to {kind}: {type(err).__name__}: {why}") from err


def _serialize(module: nn.Module, kind: str, example: Tensor, dynamic_batch: bool, dynamic_size: bool) -> bytes:
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        quiet_deprecations()
        if kind == "torchscript":
            traced = torch.jit.trace(module, example, check_trace=False)  # checked below, on other batches too
            nodes = traced.inlined_graph.nodes()
            python_calls = sorted({node.pyname() for node in nodes if node.kind() == "prim::PythonOp"})
            if python_calls:
                raise RuntimeError(f"it calls Python function(s) {python_calls} (e.g. a torch.autograd.Function) that "
                                   "TorchScript cannot save; use plain tensor operations when torch.jit.is_tracing()")
            torch.jit.save(traced, buffer)
        else:
            batch = {0: "N"} if dynamic_batch else {}
            axes = {INPUT: {**batch, **({2: "H", 3: "W"} if dynamic_size else {})}, OUTPUT: batch} \
                if dynamic_batch or dynamic_size else None
            torch.onnx.export(module, (example,), buffer, input_names=[INPUT], output_names=[OUTPUT],
                              opset_version=OPSET, dynamic_axes=axes, dynamo=False)
            import onnx  # optional dependency
            onnx.checker.check_model(onnx.load_from_string(buffer.getvalue()))
    return buffer.getvalue()
