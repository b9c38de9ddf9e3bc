"""Checks of a training config that no constructor owns, run before anything is built: the top-level numbers,
the input size a dataset gives a net, sweeps with DDP.
The groups' own settings are checked by their classes (methods name method.<key>, the DataModule dataset.<key>)."""
from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from hashnet.nets.backbones import check_input_size
from hashnet.utils.errors import ConfigError

MAX_HASH_BIT = 1024  # 4x the longest codes hashing papers report (256): longer ones gain nothing a Hamming index can use


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


POSITIVE_INT = ("a positive integer", lambda v: _integer(v) and v > 0)
RANGES = [  # (key, (what it must be, test), a sensible value)
    ("hash_bit", (f"a multiple of 8 from 8 to {MAX_HASH_BIT} (codes are stored 8 bits a byte)",
                  lambda v: _integer(v) and 8 <= v <= MAX_HASH_BIT and v % 8 == 0), "hash_bit=48"),
    ("seed", ("an integer", _integer), "seed=0"),
    ("max_steps", POSITIVE_INT, "max_steps=10000"),
    ("val_every", POSITIVE_INT, "val_every=1000"),
    ("ckpt_every", POSITIVE_INT, "ckpt_every=1000"),
    ("optim.lr", ("a positive number", lambda v: _number(v) and v > 0), "optim.lr=3e-4"),
    ("hash_lr_mult", ("a positive number", lambda v: _number(v) and v > 0), "hash_lr_mult=10"),
    ("threads", ("a positive integer or null (torch's default)", lambda v: v is None or (_integer(v) and v > 0)),
     "threads=1"),
]


def nearest_multiples(value: object) -> str:
    """'40 or 48' for 44: the multiples of 8 around an integer hash_bit, for the message; '48' otherwise."""
    if not _integer(value) or value <= 8 or value >= MAX_HASH_BIT:
        return "48"
    low = value // 8 * 8
    return f"{low} or {low + 8}" if low != value else str(value)


def check_train_config(cfg: DictConfig) -> None:
    """ConfigError naming the key, the value and a valid one, for values no constructor checks."""
    for key, (must_be, valid), example in RANGES:
        value = OmegaConf.select(cfg, key, default=None)
        if not valid(value):
            if key == "hash_bit":
                example = f"hash_bit={nearest_multiples(value).replace(' or ', ' or hash_bit=')}"
            raise ConfigError(f"{key}={value!r}: it must be {must_be} -- pass e.g. {example}")
    net, crop, resize = cfg.net, cfg.dataset.crop_size, cfg.dataset.resize_size
    if all(_integer(size) and size > 0 for size in (crop, resize)):  # else the DataModule names the bad size
        check_input_size(net.backbone, net.pretrained, net.get("image_size"), crop, resize)


def check_launch(cfg: DictConfig) -> None:
    """Refuse `-m` sweeps with in-process DDP: each child rank would re-run the whole sweep.

    Under the SLURM launcher srun starts every rank and Lightning re-launches nothing, so ddp is right there.
    """
    in_sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    on_slurm = in_sweep and str(HydraConfig.get().launcher.get("_target_", "")).endswith("SlurmLauncher")
    if in_sweep and not on_slurm and cfg.trainer.get("strategy") == "ddp":
        raise ConfigError("trainer.strategy=ddp inside a -m sweep re-launches the sweep in every child rank -- use "
                          "trainer=ddp_spawn for sweeps on one node, or the SLURM launcher (hydra/launcher=slurm)")

