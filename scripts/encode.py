"""Encode a dataset split (the database by default), or a folder of images, into a file of bit-packed codes.

    python scripts/encode.py ckpt_path=outputs/.../checkpoints/last.ckpt dataset=digits [split=database] [out=codes.npz]
    python scripts/encode.py ckpt_path=outputs/.../checkpoints/last.ckpt images=photos/
"""
import hydra
from omegaconf import DictConfig

from hashnet.tasks.encode import encode
from hashnet.utils.entry import run
from hashnet.utils.errors import exit_on_error


@hydra.main(version_base="1.3", config_path="../configs", config_name="encode")
def main(cfg: DictConfig) -> None:
    with exit_on_error("encode"):  # a message, not a traceback (HASHNET_DEBUG=1 shows the chain)
        encode(cfg)


if __name__ == "__main__":
    run(main, "encode")  # Hydra's own errors (an unknown key, a bad override) as one line too
