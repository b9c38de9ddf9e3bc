"""Check a dataset's list files and images; exits 1 when it finds an error (see hashnet/data/check_lists.py).

    python scripts/check_lists.py dataset=coco
    python scripts/check_lists.py dataset=nus_wide_81 dataset.path_map='{/home/author/data/: /data/}' check_images=true
"""
import sys

import hydra
from omegaconf import DictConfig

from hashnet.tasks.check_lists import check_lists
from hashnet.utils.entry import run
from hashnet.utils.errors import exit_on_error


@hydra.main(version_base="1.3", config_path="../configs", config_name="check_lists")
def main(cfg: DictConfig) -> None:
    with exit_on_error("check_lists"):  # a message, not a traceback (HASHNET_DEBUG=1 shows the chain)
        findings = check_lists(cfg)
    if any(finding.level == "error" for finding in findings):
        sys.exit(1)


if __name__ == "__main__":
    run(main, "check_lists")  # Hydra's own errors (an unknown key, a bad override) as one line too
