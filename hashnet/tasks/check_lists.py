"""check_lists(cfg): check a dataset's list files and images before training (see hashnet.data.check_lists)."""
from __future__ import annotations

import logging

from omegaconf import DictConfig

from hashnet.data.check_lists import Finding, check_dataset, format_findings
from hashnet.tasks.setup import build_datamodule

log = logging.getLogger(__name__)


def check_lists(cfg: DictConfig) -> list[Finding]:
    """Build the dataset's DataModule (and an embedded dataset's files), check it, log the findings."""
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()  # builds the embedded datasets; a no-op for the others
    findings = check_dataset(datamodule, cfg.check_images, cfg.shown)
    log.info("%s", format_findings(cfg.dataset.name, findings))
    return findings
