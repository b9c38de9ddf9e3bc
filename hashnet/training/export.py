"""Export a hashing model to TorchScript or ONNX, with a JSON sidecar saying how to feed it and read its codes.

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
dynamic) and its h must match PyTorch's within 1e-3 of max |h| (+ 1e-6); a model that fails to trace,
to convert or to match is refused with an ExportError naming the method or backbone and why.
TorchScript files are traced (torch.jit.trace) and run with torch.jit.load; ONNX files come from
torch's TorchScript-based exporter (torch.onnx.export(dynamo=False), which needs only the onnx
package) and run with onnxruntime on the CPU: pip install -e '.[export]'. torch 2.14 marks
torch.jit deprecated and prefers its dynamo ONNX exporter (which would also need onnxscript); both
paths used here still work, and their deprecation warnings are silenced. The ONNX file is the
durable format.
"""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import io
import json
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hashnet.data.images import IMAGENET_MEAN, IMAGENET_STD, normalize_pixels
from hashnet.training.module import HashingModule
from hashnet.utils.errors import UserError
from hashnet.utils.files import atomic_write, atomic_write_json

FORMAT = "hashnet-export-1"  # the sidecar's layout; bumped when it changes
FORMATS = ("torchscript", "onnx")
OPSET = 17  # ONNX opset: onnxruntime >= 1.14 runs it, and it has every op torchvision's backbones need
INPUT, OUTPUT = "images", "h"  # the ONNX graph's input and output names
PACKING = "bit j of an item -> bit 7 - j % 8 of byte j // 8; +1 -> 1, -1 -> 0 (np.packbits(h >= 0, axis=1))"
SIDECAR_KEYS = ("format", "model_file", "model_format", "model_sha256", "input", "output", "hash_bit", "packing",
                "dynamic_batch", "check", "exported_with")  # written by the export; meta adds others
_CHECK_SEED = 0


class ExportError(UserError, ValueError):
    """A model that cannot be exported, or an exported file that cannot be used; the message says which and why."""


def onnx_available() -> bool:
    """Whether the optional onnx and onnxruntime packages (pip install -e '.[export]') can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


@dataclass(frozen=True)
class Parity:
    """An exported model's codes against the PyTorch model's on the same images.

    same_signs: every bit of every item has the same sign (sign(0) = +1) in both; differing_bits of
    items x bits compared; max_abs_diff: the largest |h_exported - h_torch|.
    """
    same_signs: bool
    differing_bits: int
    items: int
    bits: int
    max_abs_diff: float


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


def _eval_copy(model: nn.Module) -> nn.Module:
    """A float32 CPU copy of model in eval mode without gradients (not of a Trainer it is attached to); the
    caller's model is left as it was."""
    trainer = getattr(model, "_trainer", None)  # a LightningModule's Trainer is not part of the model
    clone = copy.deepcopy(model, memo={id(trainer): None} if trainer is not None else None).cpu().float().eval()
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
    return clone


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
    reference = _eval_copy(model)
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
    data = _convert(core, kind, example, dynamic_batch, info)
    other = _random_images(batch_size + 1 if dynamic_batch else batch_size, input_size, _CHECK_SEED + 1)
    batches = [example, other]  # another batch: constants frozen by tracing differ on it
    check = compare(_runner(kind, data), reference, batches)
    if not check.max_abs_diff <= 1e-3 * float(h.abs().max()) + 1e-6:  # also NaN
        raise ExportError(f"cannot export {_named(info)} to {kind}: the exported model's codes differ from PyTorch's "
                          f"(max |dh| = {check.max_abs_diff:.3g}, {check.differing_bits} of {check.items * check.bits} "
                          "signs) on random images -- its forward likely branches on values in Python, which tracing "
                          "freezes; write the code layer with tensor operations (torch.where) instead")
    shape = "N" if dynamic_batch else batch_size
    fixed = {
        "format": FORMAT, "model_file": path.name, "model_format": kind,
        "model_sha256": hashlib.sha256(data).hexdigest(),
        "input": {"name": INPUT, "shape": [shape, 3, input_size, input_size], "dtype": "float32", "channels": "RGB",
                  "resize_size": resize_size, "crop_size": input_size,
                  "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
                  "preprocess": "resize to (resize_size, resize_size), centre-crop crop_size, pixels / 255, "
                                "then (x - mean) / std per channel"},
        "output": {"name": OUTPUT, "shape": [shape, int(h.shape[1])], "dtype": "float32",
                   "codes": "b = +1 where h >= 0, else -1 (sign(0) = +1)"},
        "hash_bit": int(h.shape[1]),
        "packing": PACKING if h.shape[1] % 8 == 0 else f"none: hash_bit={h.shape[1]} is not a multiple of 8",
        "dynamic_batch": dynamic_batch,
        "check": {"images": "random normal batches", **asdict(check)},
        "exported_with": {"torch": torch.__version__, **({"opset": OPSET} if kind == "onnx" else {})},
    }
    assert tuple(fixed) == SIDECAR_KEYS
    sidecar = {**fixed, **{key: value for key, value in info.items() if key != "hash_bit"}, **meta}
    atomic_write(path, lambda f: f.write(data))
    atomic_write_json(sidecar_path(path), sidecar)
    return path


def _convert(core: nn.Module, kind: str, example: Tensor, dynamic_batch: bool, info: dict[str, Any]) -> bytes:
    """The exported file's bytes; ExportError naming the part that cannot be exported (code layer or backbone)."""
    try:
        return _serialize(core, kind, example, dynamic_batch)
    except Exception as err:
        culprit = _named(info)
        if isinstance(core, _CodeNet):  # the code layer alone, on hash-layer outputs: is it the method's fault?
            try:
                with torch.no_grad():
                    z = core.hash_layer(core.backbone(example))
                _serialize(core.method, kind, z, dynamic_batch)
                culprit = f"net={info['net']} (the backbone; method={info['method']}'s code layer exports)"
            except Exception:  # noqa: BLE001 -- any failure of the code layer alone makes it the culprit
                culprit = f"method={info['method']}'s code layer"
        why = (str(err).strip().splitlines() or [""])[0][:500]  # the first line: the exporter appends its graph
        raise ExportError(f"cannot export {culprit} to {kind}: {type(err).__name__}: {why}") from err


def _serialize(module: nn.Module, kind: str, example: Tensor, dynamic_batch: bool) -> bytes:
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        _quiet_deprecations()
        if kind == "torchscript":
            traced = torch.jit.trace(module, example, check_trace=False)  # checked below, on other batches too
            nodes = traced.inlined_graph.nodes()
            python_calls = sorted({node.pyname() for node in nodes if node.kind() == "prim::PythonOp"})
            if python_calls:
                raise RuntimeError(f"it calls Python function(s) {python_calls} (e.g. a torch.autograd.Function) that "
                                   "TorchScript cannot save; use plain tensor operations when torch.jit.is_tracing()")
            torch.jit.save(traced, buffer)
        else:
            axes = {INPUT: {0: "N"}, OUTPUT: {0: "N"}} if dynamic_batch else None
            torch.onnx.export(module, (example,), buffer, input_names=[INPUT], output_names=[OUTPUT],
                              opset_version=OPSET, dynamic_axes=axes, dynamo=False)
            import onnx  # optional dependency
            onnx.checker.check_model(onnx.load_from_string(buffer.getvalue()))
    return buffer.getvalue()


def _quiet_deprecations() -> None:
    """Inside catch_warnings: torch >= 2.9 prefers its dynamo ONNX exporter (DeprecationWarning), and 2.14 marks
    torch.jit deprecated (FutureWarning); both still work, and the module docstring says so once."""
    warnings.filterwarnings("ignore", message=r".*torch\.onnx\.export.*|.*legacy TorchScript-based ONNX export.*")
    warnings.filterwarnings("ignore", category=FutureWarning, message=r"`torch\.jit\.")


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar beside an exported file: model.onnx -> model.onnx.json."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The sidecar of the exported file at path, checked to describe that very file (its SHA-256)."""
    path, side = Path(path), sidecar_path(path)
    for file in (path, side):
        if not file.is_file():
            raise ExportError(f"{file} does not exist -- export the model again (export_onnx / export_torchscript)")
    try:
        sidecar = json.loads(side.read_text())
        kind, digest = sidecar["model_format"], sidecar["model_sha256"]
    except (ValueError, KeyError, TypeError) as err:
        raise ExportError(f"{side} is damaged or not a hashnet export sidecar ({type(err).__name__}: {err}) -- "
                          "export the model again") from err
    if sidecar.get("format") != FORMAT or kind not in FORMATS:
        raise ExportError(f"{side} has format {sidecar.get('format')!r}, this version reads {FORMAT!r} -- export again")
    if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        raise ExportError(f"{path} is not the file its sidecar {side.name} describes (another export, or damaged) "
                          "-- export the model again")
    return sidecar


def load_exported(path: str | Path) -> Callable[[Tensor | np.ndarray], np.ndarray]:
    """Run an exported file: images (N, 3, H, W) float32, normalised as its sidecar says -> h (N, K) float32.

    ONNX through onnxruntime on the CPU, TorchScript through torch.jit.load on the CPU.
    """
    sidecar = read_sidecar(path)
    return _runner(sidecar["model_format"], Path(path).read_bytes())


def _runner(kind: str, data: bytes) -> Callable[[Tensor | np.ndarray], np.ndarray]:
    if kind == "onnx":
        if not onnx_available():
            raise ExportError("running an ONNX file needs onnxruntime: pip install -e '.[export]'")
        import onnxruntime  # optional dependency
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        return lambda images: session.run([OUTPUT], {INPUT: _as_array(images)})[0]
    with warnings.catch_warnings():
        _quiet_deprecations()
        scripted = torch.jit.load(io.BytesIO(data), map_location="cpu")

    def run(images: Tensor | np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return scripted(torch.from_numpy(_as_array(images))).numpy()
    return run


def _as_array(images: Tensor | np.ndarray) -> np.ndarray:
    array = images.detach().cpu().numpy() if isinstance(images, Tensor) else np.asarray(images)
    return np.ascontiguousarray(array, dtype=np.float32)


def compare(run: Callable[[Tensor | np.ndarray], np.ndarray], model: nn.Module, batches: Iterable[Tensor]) -> Parity:
    """Parity of run (an exported model) against model (already in eval mode, on the CPU) on image batches:
    normalised float, or uint8 pixels that are normalised first (a DataModule's batches: normalize_on_device).
    The batches are read one at a time (a DataLoader's run through once)."""
    differing, items, bits, diffs = 0, 0, 0, []
    for batch in batches:
        images = normalize_pixels(batch.cpu()) if batch.dtype == torch.uint8 else batch.detach().cpu().float()
        with torch.no_grad():
            torch_h = model(images).float()
        exported_h = torch.from_numpy(np.asarray(run(images)))
        if exported_h.shape != torch_h.shape:
            raise ExportError(f"the exported model returns codes of shape {tuple(exported_h.shape)}, "
                              f"PyTorch's are {tuple(torch_h.shape)}")
        differing += int(((exported_h >= 0) != (torch_h >= 0)).sum())
        diffs.append((exported_h - torch_h).abs().max())  # NaN anywhere stays NaN
        items, bits = items + len(images), int(torch_h.shape[1])
    if not diffs:
        raise ValueError("parity needs at least one image batch")
    return Parity(same_signs=differing == 0, differing_bits=differing, items=items, bits=bits,
                  max_abs_diff=float(torch.stack(diffs).max()))


def parity(exported: str | Path, model: nn.Module, images: Tensor | Iterable[Tensor]) -> Parity:
    """Whether the exported file at `exported` gives model's codes on images: a batch (N, 3, H, W) float,
    normalised as the sidecar says (or uint8 pixels, normalised here), or an iterable of such batches (read one at
    a time). model runs as a CPU float32 copy in eval mode (the caller's model is left as it was); the exported
    file as load_exported runs it."""
    return compare(load_exported(exported), _eval_copy(model), [images] if isinstance(images, Tensor) else images)
