"""Checkpoints that survive a kill, and which run folder and checkpoint a resumed run continues.

The run folder of `python scripts/train.py`, in this order (configs/hydra/default.yaml):
1. `hydra.run.dir=<folder>` when given;
2. with `ckpt_path=<run>/checkpoints/<file>.ckpt`, that <run>;
3. with `resume=true`, the newest folder (by name, i.e. start time) beside where a new run of the
   same dataset, net and hash_bit would go (`outputs/<dataset>/<net>_<K>bit/`) that holds
   `checkpoints/last.ckpt` (none: a new folder, and train() stops naming the fix);
4. otherwise a new `outputs/<dataset>/<net>_<K>bit/<time>/`.
The checkpoint resumed from is ckpt_path, else with resume=true `<run folder>/checkpoints/last.ckpt`.
"""
from __future__ import annotations

import json
import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import OmegaConf

from hashnet.training.exported import sidecar_path
from hashnet.utils.errors import UnreadableFileError
from hashnet.utils.files import atomic_write

LAST = Path("checkpoints") / "last.ckpt"
STEPS = "step*.ckpt"  # the periodic checkpoints of a run (configs/callbacks/default.yaml), newest = highest step
ANOTHER = "check ckpt_path: copy it again, or pass another checkpoint (ckpt_path=<run>/checkpoints/stepNNNNNN.ckpt)"

log = logging.getLogger(__name__)


class CheckpointFileError(UnreadableFileError, FileNotFoundError):
    """A checkpoint file is missing, truncated, or not a checkpoint at all."""


def _inspect(path: str | Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the checkpoint at path loaded with plain values only, or None where it holds other objects or is
    damaged; what is wrong with the file, or None), from one load of the file."""
    path = Path(path)
    if path.is_dir():
        inside = [p for p in (path / LAST, path / "last.ckpt") if p.is_file()]
        return None, ("it is a folder, not a checkpoint file" + (f": pass ckpt_path={inside[0]}" if inside else
                                                                  " (a run's are in <run>/checkpoints/)"))
    if not path.is_file():
        return None, "it does not exist"
    if path.stat().st_size == 0:
        return None, "it is empty (0 bytes)"
    export = _export_of(path)
    if export is not None:
        return None, export
    if not zipfile.is_zipfile(path):
        return None, ("it is not a PyTorch checkpoint (no zip archive): truncated by an interrupted write or copy, "
                      "or another kind of file")
    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except pickle.UnpicklingError:
        return None, None  # whole, but holds objects beyond tensors and plain values: Lightning reads it fully
    except (RuntimeError, EOFError, KeyError, ValueError, OSError, zipfile.BadZipFile) as err:  # damage inside the archive
        return None, f"it cannot be read ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no details'})"
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        return None, "it holds no model weights (no state_dict): not a Lightning checkpoint"
    return checkpoint, None


def _export_of(path: Path) -> str | None:
    """What to say of an export (scripts/export.py) given as a checkpoint: an ONNX file, a TorchScript archive (or
    a file with an export's sidecar), naming the checkpoint its sidecar records; None for any other file."""
    try:
        sidecar = json.loads(sidecar_path(path).read_text())
    except (OSError, ValueError):
        sidecar = {}
    sidecar = sidecar if isinstance(sidecar, dict) else {}
    kind = sidecar.get("model_format") or ("onnx" if path.suffix.lower() == ".onnx" else None)
    if kind is None and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:  # TorchScript's archive holds constants.pkl; a checkpoint's not
                kind = "torchscript" if any(name.endswith("/constants.pkl") for name in archive.namelist()) else None
        except (OSError, zipfile.BadZipFile):
            return None
    if kind is None:
        return None
    source = sidecar.get("checkpoint")
    checkpoint = source if isinstance(source, str) and Path(source).is_file() else "<run>/checkpoints/last.ckpt"
    return (f"it is {'a TorchScript' if kind == 'torchscript' else 'an ONNX'} export (scripts/export.py), not a "
            f"checkpoint -- pass the checkpoint it was exported from: ckpt_path={checkpoint}")


def checkpoint_problem(path: str | Path) -> str | None:
    """What is wrong with the checkpoint file at path (missing, empty, truncated, not one), or None if it reads."""
    return _inspect(path)[1]


def read_checkpoint(path: str | Path, fix: str = ANOTHER) -> dict[str, Any]:
    """The checkpoint at path, loaded on the CPU (tensors memory-mapped), read once;
    CheckpointFileError naming the file, what is wrong with it and fix."""
    checkpoint, problem = _inspect(path)
    if problem is not None:
        fix = "" if Path(path).is_file() and _export_of(Path(path)) else f" -- {fix}"  # an export's names its own
        raise CheckpointFileError(f"checkpoint {path}: {problem}{fix}")
    if checkpoint is None:  # objects beyond plain values, as Lightning's own load reads them
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    return checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary file beside it, then renames it over the old one.

    A kill during the write leaves the previous file whole (and at worst a stray `.<name>.*.tmp`).
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        atomic_write(path, lambda f: torch.save(checkpoint, f))


def run_dir(ckpt_path: str | None, resume: bool, new_dir: str) -> str:
    """The run folder (rules 2-4 of the module docstring); new_dir is where a new run would go."""
    if ckpt_path:
        checkpoint = Path(ckpt_path)
        return str(checkpoint.parent.parent) if checkpoint.parent.name == "checkpoints" else new_dir
    if not resume:
        return new_dir
    runs = Path(new_dir).parent
    resumable = sorted(folder for folder in runs.glob("*") if (folder / LAST).is_file())
    return str(resumable[-1]) if resumable else new_dir  # none: train() says so (an error here reads badly)


def register_run_dir_resolver() -> None:
    """Make ${hashnet_run_dir:ckpt_path,resume,new_dir} available to the Hydra configs."""
    if not OmegaConf.has_resolver("hashnet_run_dir"):
        OmegaConf.register_new_resolver("hashnet_run_dir", run_dir)


def resume_checkpoint(ckpt_path: str | None, resume: bool, output_dir: str | Path) -> str | None:
    """The checkpoint to continue from: ckpt_path, else with resume the run folder's last.ckpt, else None.

    Each is checked whole first. With resume=true, a damaged last.ckpt gives way (with a warning) to
    the newest intact stepNNNNNN.ckpt beside it; a damaged ckpt_path is refused, as the user chose it.
    """
    if ckpt_path:
        read_checkpoint(ckpt_path)
        return str(ckpt_path)
    if not resume:
        return None
    last = Path(output_dir) / LAST
    if not last.is_file():
        raise CheckpointFileError(
            f"checkpoint {last} does not exist -- resume=true found no earlier run of this dataset, net and hash_bit "
            "with one: pass hydra.run.dir=<the run folder> or ckpt_path=<a checkpoint>, or drop resume=true")
    problem = checkpoint_problem(last)
    if problem is None:
        return str(last)
    steps = sorted(last.parent.glob(STEPS), reverse=True)
    for step in steps:
        if checkpoint_problem(step) is None:
            log.warning("checkpoint %s: %s -- resuming from %s instead, the newest intact step checkpoint of this run",
                        last, problem, step)
            return str(step)
    tried = "".join(f"\n  {path}: {checkpoint_problem(path)}" for path in steps)
    raise CheckpointFileError(f"checkpoint {last}: {problem}, and no step checkpoint of the run can replace it"
                              f"{tried or ' (there is none)'}\n-- start the run again without resume=true, "
                              "or pass ckpt_path=<an intact checkpoint>")
