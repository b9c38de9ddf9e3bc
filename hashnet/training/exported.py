"""Reading an export back (hashnet.training.export writes them): its JSON sidecar, a runner for its file (TorchScript
with torch.jit.load, ONNX with onnxruntime on the CPU) and the parity of its codes with the PyTorch model's."""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import io
import json
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hashnet.data.images import normalize_pixels
from hashnet.utils.errors import UserError

INPUT, OUTPUT = "images", "h"  # the ONNX graph's input and output names
FORMATS = ("torchscript", "onnx")
FORMAT = "hashnet-export-1"  # the sidecar's layout; bumped when it changes


class ExportError(UserError, ValueError):
    """A model that cannot be exported, or an exported file that cannot be used; the message says which and why."""


def onnx_available() -> bool:
    """Whether the optional onnx and onnxruntime packages (pip install -e '.[export]') can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


# Absolute, on h: an output with |h| at or below it lies within float error of 0, where any runtime may round its sign
# either way. The float32 differences seen between PyTorch, TorchScript and onnxruntime are 1e-7..1e-5 (max |dh| =
# 5e-7 on a 6-step digits run), 10 to 1000 times smaller; a saturated code (|h| near 1) is 10,000 times larger.
SIGN_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Parity:
    """An exported model's codes against the PyTorch model's on the same images.

    same_signs: every bit with |h_torch| > tolerance has the same sign (sign(0) = +1) in both; differing_bits:
    how many of those do not, of items x bits compared; near_zero: the outputs with |h_torch| <= tolerance, whose
    sign may round either way, and flipped_near_zero how many of them did; max_abs_diff: the largest
    |h_exported - h_torch|.
    """
    same_signs: bool
    differing_bits: int
    items: int
    bits: int
    max_abs_diff: float
    tolerance: float
    near_zero: int
    flipped_near_zero: int


def sign_parity(torch_h: Tensor, exported_h: Tensor, tolerance: float = SIGN_TOLERANCE) -> Parity:
    """Parity of exported codes exported_h (N, K) with PyTorch's torch_h (N, K): the signs must agree wherever
    |torch_h| > tolerance; those within it are counted apart (near_zero). NaN anywhere: max_abs_diff is NaN."""
    if exported_h.shape != torch_h.shape:
        raise ExportError(f"the exported model returns codes of shape {tuple(exported_h.shape)}, "
                          f"PyTorch's are {tuple(torch_h.shape)}")
    flipped, near = (exported_h >= 0) != (torch_h >= 0), torch_h.abs() <= tolerance
    differing = int((flipped & ~near).sum())
    return Parity(same_signs=differing == 0, differing_bits=differing, items=len(torch_h), bits=int(torch_h.shape[1]),
                  max_abs_diff=float((exported_h - torch_h).abs().max()), tolerance=tolerance,
                  near_zero=int(near.sum()), flipped_near_zero=int((flipped & near).sum()))


def eval_copy(model: nn.Module) -> nn.Module:
    """A float32 CPU copy of model in eval mode without gradients (not of a Trainer it is attached to); the
    caller's model is left as it was."""
    trainer = getattr(model, "_trainer", None)  # a LightningModule's Trainer is not part of the model
    clone = copy.deepcopy(model, memo={id(trainer): None} if trainer is not None else None).cpu().float().eval()
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
    return clone


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
    run = runner(sidecar["model_format"], Path(path).read_bytes())
    shape = sidecar["input"]["shape"]

    def checked(images: Tensor | np.ndarray) -> np.ndarray:
        got = tuple(images.shape)
        if str(images.dtype).removeprefix("torch.") == "uint8":
            raise ExportError(f"{path} takes float32 images normalised as its sidecar's input.range says, not uint8 "
                              "pixels -- pass hashnet.data.images.normalize_pixels(images)")
        expected = [size if isinstance(size, int) else None for size in shape]
        if len(got) != 4 or any(want is not None and want != size for want, size in zip(expected, got)):
            shown = " x ".join(map(str, shape))
            raise ExportError(f"{path} takes images of shape {shown} (its sidecar's input.shape), got "
                              f"{' x '.join(map(str, got))} -- {_fix(shape, got)}")
        return run(images)
    return checked


def _fix(shape: list, got: tuple) -> str:
    """How to feed an exported file of input shape `shape` the images it refused (of shape got)."""
    if len(got) != 4 or got[1] != 3:
        return "pass a batch (N, 3, H, W) of RGB images (one image: images[None])"
    if isinstance(shape[0], int) and got[0] != shape[0]:
        return f"pass batches of {shape[0]} (export with dynamic_batch=true for any batch size)"
    return (f"resize and centre-crop to {shape[2]} x {shape[3]} as its sidecar's input.preprocess says (its network "
            "fixes the size)")


def runner(kind: str, data: bytes) -> Callable[[Tensor | np.ndarray], np.ndarray]:
    if kind == "onnx":
        if not onnx_available():
            raise ExportError("running an ONNX file needs onnxruntime: pip install -e '.[export]'")
        import onnxruntime  # optional dependency
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        return lambda images: session.run([OUTPUT], {INPUT: _as_array(images)})[0]
    with warnings.catch_warnings():
        quiet_deprecations()
        scripted = torch.jit.load(io.BytesIO(data), map_location="cpu")

    def run(images: Tensor | np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return scripted(torch.from_numpy(_as_array(images))).numpy()
    return run


def _as_array(images: Tensor | np.ndarray) -> np.ndarray:
    array = images.detach().cpu().numpy() if isinstance(images, Tensor) else np.asarray(images)
    return np.ascontiguousarray(array, dtype=np.float32)


def compare(run: Callable[[Tensor | np.ndarray], np.ndarray], model: nn.Module, batches: Iterable[Tensor]) -> Parity:
    """sign_parity of run (an exported model) against model (already in eval mode, on the CPU) on image batches:
    normalised float, or uint8 pixels that are normalised first (a DataModule's batches: normalize_on_device).
    The batches are read one at a time (a DataLoader's run through once); the codes of all are kept."""
    torch_hs, exported_hs = [], []
    for batch in batches:
        images = normalize_pixels(batch.cpu()) if batch.dtype == torch.uint8 else batch.detach().cpu().float()
        with torch.no_grad():
            torch_hs.append(model(images).float())
        exported_hs.append(torch.from_numpy(np.asarray(run(images))))
    if not torch_hs:
        raise ValueError("parity needs at least one image batch")
    return sign_parity(torch.cat(torch_hs), torch.cat(exported_hs))


def parity(exported: str | Path, model: nn.Module, images: Tensor | Iterable[Tensor]) -> Parity:
    """Whether the exported file at `exported` gives model's codes on images: a batch (N, 3, H, W) float,
    normalised as the sidecar says (or uint8 pixels, normalised here), or an iterable of such batches (read one at
    a time). model runs as a CPU float32 copy in eval mode (the caller's model is left as it was); the exported
    file as load_exported runs it, a file of a fixed batch size on chunks of that size."""
    run, batch = load_exported(exported), read_sidecar(exported)["input"]["shape"][0]
    run = run if batch == "N" else in_batches_of(run, batch)
    return compare(run, eval_copy(model), [images] if isinstance(images, Tensor) else images)


Runner = Callable[[Tensor | np.ndarray], np.ndarray]


def in_batches_of(run: Runner, size: int) -> Runner:
    """run (a model of a fixed batch size) on any number of images: chunks of size, the last one padded with zeros
    whose outputs are dropped. (N, 3, H, W) -> (N, K)."""
    def chunked(images: Tensor | np.ndarray) -> np.ndarray:
        array, outputs = _as_array(images), []
        for start in range(0, len(array), size):
            chunk = array[start:start + size]
            padding = np.zeros((size - len(chunk), *chunk.shape[1:]), np.float32)
            outputs.append(np.asarray(run(np.concatenate([chunk, padding])))[:len(chunk)])
        return np.concatenate(outputs)
    return chunked


def quiet_deprecations() -> None:
    """Inside catch_warnings: torch >= 2.9 prefers its dynamo ONNX exporter (DeprecationWarning), and 2.14 marks
    torch.jit deprecated (FutureWarning); both still work, and the module docstring says so once."""
    warnings.filterwarnings("ignore", message=r".*torch\.onnx\.export.*|.*legacy TorchScript-based ONNX export.*")
    warnings.filterwarnings("ignore", category=FutureWarning, message=r"`torch\.jit\.")
