"""Train HashNet, then evaluate mAP@R on the test split.

    python scripts/train.py                                   # embedded digits, CPU, about a minute
    python scripts/train.py dataset=coco net=resnet50 hash_bit=48   # with COCO's recipe: the original's settings
    python scripts/train.py -m hash_bit=16,32,48,64           # one run per code length
    python scripts/train.py hash_bit=16 resume=true          # continue the newest digits/hashnet_resnet18_16bit run
"""
import hydra
from omegaconf import DictConfig

from hashnet.tasks.train import train
from hashnet.training.checkpoints import register_run_dir_resolver
from hashnet.utils.entry import run
from hashnet.utils.errors import exit_on_error

register_run_dir_resolver()  # configs/hydra/default.yaml picks the run folder with it


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    with exit_on_error("train"):  # a message, not a traceback: the fix is in it (HASHNET_DEBUG=1 shows the chain)
        return train(cfg).get("mAP")  # for Hydra sweepers that optimise it; None where nothing was evaluated


if __name__ == "__main__":
    run(main, "train")  # Hydra's own errors (an unknown key, a bad override) as one line too
