"""Evaluate a checkpoint: mAP@R of the test split against the database, in eval mode.

    python scripts/evaluate.py ckpt_path=outputs/.../checkpoints/last.ckpt dataset=digits
"""
import hydra
from omegaconf import DictConfig

from hashnet.tasks.evaluate import evaluate


@hydra.main(version_base="1.3", config_path="../configs", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    return evaluate(cfg)["mAP"]


if __name__ == "__main__":
    main()
