"""Check a code store's chunks and merge them into memory-mapped codes.npy / ids.npy (docs/scale.md).

    python scripts/merge_codes.py store=photos_store/
"""
import hydra
from omegaconf import DictConfig

from hashnet.tasks.merge_codes import merge_codes
from hashnet.utils.entry import run
from hashnet.utils.errors import exit_on_error


@hydra.main(version_base="1.3", config_path="../configs", config_name="merge_codes")
def main(cfg: DictConfig) -> None:
    with exit_on_error("merge_codes"):  # a message, not a traceback (HASHNET_DEBUG=1 shows the chain)
        merge_codes(cfg)


if __name__ == "__main__":
    run(main, "merge_codes")  # Hydra's own errors (an unknown key, a bad override) as one line too
