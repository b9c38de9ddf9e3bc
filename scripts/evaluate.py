"""Evaluate a checkpoint: mAP@R of the test split against the database, in eval mode.

    python scripts/evaluate.py ckpt_path=outputs/.../checkpoints/last.ckpt dataset=digits
    python scripts/evaluate.py ckpt_path=... dataset=digits dataset.empty_queries=zero dataset.ties=average
"""
import hydra
from omegaconf import DictConfig

from hashnet.tasks.evaluate import evaluate
from hashnet.utils.entry import run
from hashnet.utils.errors import exit_on_error


@hydra.main(version_base="1.3", config_path="../configs", config_name="evaluate")
def main(cfg: DictConfig) -> float | None:
    with exit_on_error("evaluate"):  # a message, not a traceback (HASHNET_DEBUG=1 shows the chain)
        return evaluate(cfg).get("mAP")  # none on a dataset without labels


if __name__ == "__main__":
    run(main, "evaluate")  # Hydra's own errors (an unknown key, a bad override) as one line too
