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

from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import OmegaConf

from hashnet.utils.files import atomic_write

LAST = Path("checkpoints") / "last.ckpt"


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
    """The checkpoint to continue from: ckpt_path, else with resume the run folder's last.ckpt, else None."""
    checkpoint = Path(ckpt_path) if ckpt_path else Path(output_dir) / LAST if resume else None
    if checkpoint is not None and not checkpoint.is_file():
        fix = ("check ckpt_path" if ckpt_path else "resume=true found no earlier run of this dataset, net and hash_bit "
               "with one: pass hydra.run.dir=<the run folder> or ckpt_path=<a checkpoint>, or drop resume=true")
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist -- {fix}")
    return str(checkpoint) if checkpoint else None
