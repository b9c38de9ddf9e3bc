"""Print the nearest database images (Hamming distance) of one or more query images.

    python scripts/search.py ckpt_path=.../last.ckpt index=.../codes_database.npz image=query.png [k=10] [grid=out.png]
"""
import hydra
from omegaconf import DictConfig

from hashnet.tasks.search import search
from hashnet.utils.entry import run
from hashnet.utils.errors import exit_on_error


@hydra.main(version_base="1.3", config_path="../configs", config_name="search")
def main(cfg: DictConfig) -> None:
    with exit_on_error("search"):  # a message, not a traceback (HASHNET_DEBUG=1 shows the chain)
        search(cfg)


if __name__ == "__main__":
    run(main, "search")  # Hydra's own errors (an unknown key, a bad override) as one line too
