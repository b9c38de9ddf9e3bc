"""A trained checkpoint as a model: rebuilt in the layout of this version, checked against what the caller asks for,
with the eval input size it was trained with."""
from __future__ import annotations

import os
from pathlib import Path

from hashnet.methods import METHODS
from hashnet.nets.backbones import weights_follow
from hashnet.training.checkpoints import read_checkpoint
from hashnet.training.module import HashingModule
from hashnet.utils.errors import UserError


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be used: from an older layout, or of another dataset, length or backbone."""


def load_checkpoint(path: str | Path, dataset: str | None = None, hash_bit: int | None = None,
                    net: str | None = None, method: str | None = None, **overrides) -> HashingModule:
    """Rebuild the HashingModule of a checkpoint, refusing one of another dataset, code length, backbone or method.

    None skips a check; each error names what the checkpoint holds and what was asked for. overrides
    replace saved hyper-parameters (e.g. eval_codes="continuous"). The model's `trained_steps` is the
    checkpoint's global step (None when it has none).
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise CheckpointError(f"checkpoint {path!r}: pass the path of a checkpoint file written by scripts/train.py, "
                              "e.g. outputs/<run>/checkpoints/last.ckpt")
    path = Path(path)
    checkpoint = read_checkpoint(path)
    saved = checkpoint.get("hyper_parameters", {})
    if not saved.get("net"):
        raise CheckpointError(f"checkpoint {path} records no hashnet settings (no hyper_parameters['net']): it was "
                              "not written by scripts/train.py -- pass a checkpoint of a hashnet run "
                              "(outputs/<run>/checkpoints/last.ckpt)")
    if "method" not in saved:
        raise CheckpointError(
            f"checkpoint {path} comes from hashnet's first layout (0.1, before hashnet/methods/), which this version "
            "cannot load -- train it again with this version, or evaluate it with the version that wrote it "
            "(git checkout 80401af, then scripts/evaluate.py)")
    with weights_follow():  # the checkpoint's weights replace ImageNet's: no download, offline too
        model = HashingModule.load_from_checkpoint(path, map_location="cpu", **{**migrated(saved), **overrides})
    trained_on = model.hparams.dataset
    if dataset is not None and trained_on is not None and trained_on != dataset:
        raise CheckpointError(f"checkpoint {path} was trained on dataset={trained_on}, not dataset={dataset}: "
                              f"pass dataset={trained_on}")
    if hash_bit is not None and hash_bit != model.hash_bit:
        raise CheckpointError(f"checkpoint {path} holds {model.hash_bit}-bit codes, not hash_bit={hash_bit}: "
                              f"pass hash_bit={model.hash_bit} or another checkpoint")
    backbone = model.hparams.net["backbone"]
    if net is not None and net != backbone:
        raise CheckpointError(f"checkpoint {path} was trained with net={backbone}, not net={net}: "
                              f"pass net={backbone} or another checkpoint")
    if method is not None and method != model.method.name:
        raise CheckpointError(f"checkpoint {path} was trained with method={model.method.name}, not method={method}: "
                              f"drop +method=... (the checkpoint's method is used), or pass a {method} checkpoint")
    model.trained_steps = checkpoint.get("global_step")
    return model


def migrated(saved: dict) -> dict:
    """The hyper-parameters of a 0.2 checkpoint that this version names otherwise: its method config named its
    class (`_target_`), now its registered name (hashnet.methods.METHODS)."""
    method = saved["method"]
    if "_target_" not in method:
        return {}
    names = {f"{cls.__module__}.{cls.__name__}": name for name, cls in METHODS.items()}
    settings = {key: value for key, value in method.items() if key != "_target_"}
    return {"method": {"name": names[method["_target_"]], **settings}}


def trained_input_size(path: str | Path) -> tuple[int, int]:
    """(resize_size, crop_size) of the eval transform the checkpoint at path was trained with."""
    trained = read_checkpoint(path).get("datamodule_hyper_parameters") or {}
    if "resize_size" not in trained or "crop_size" not in trained:
        raise CheckpointError(f"checkpoint {path} does not record the input size it was trained with (no DataModule "
                              "settings in it): it was not written by scripts/train.py")
    return int(trained["resize_size"]), int(trained["crop_size"])
