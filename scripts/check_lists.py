"""Check a dataset's list files and images; exits 1 when it finds an error (see hashnet/checks.py).

    python scripts/check_lists.py dataset=coco
    python scripts/check_lists.py dataset=nus_wide_81 dataset.path_map='{/home/author/data/: /data/}' check_images=true
"""
import sys

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from hashnet.checks import check_dataset, format_findings


@hydra.main(version_base="1.3", config_path="../configs", config_name="check_lists")
def main(cfg: DictConfig) -> None:
    datamodule = instantiate(cfg.dataset)
    datamodule.prepare_data()  # builds the embedded datasets; a no-op for the others
    findings = check_dataset(datamodule, cfg.check_images, cfg.shown)
    print(format_findings(cfg.dataset.name, findings))
    if any(finding.level == "error" for finding in findings):
        sys.exit(1)


if __name__ == "__main__":
    main()
