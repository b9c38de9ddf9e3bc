"""check_lists(cfg): check a dataset's list files and images before training (see hashnet.data.check_lists)."""
from __future__ import annotations

import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from hashnet.data.check_lists import Finding, check_dataset, format_findings
from hashnet.tasks.setup import build_datamodule

log = logging.getLogger(__name__)


def dataset_widths() -> dict[int, list[str]]:
    """{num_classes: dataset config names} over the dataset configs of this run's config folder (none outside Hydra)."""
    if not HydraConfig.initialized():
        return {}
    widths: dict[int, list[str]] = {}
    for source in HydraConfig.get().runtime.config_sources:
        if source.schema == "file":
            for path in sorted(Path(source.path).glob("dataset/*.yaml")):
                widths.setdefault(OmegaConf.load(path).get("num_classes"), []).append(path.stem)
    return widths


def check_lists(cfg: DictConfig) -> list[Finding]:
    """Build the dataset's DataModule (and an embedded dataset's files), check it, log the findings."""
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()  # builds the embedded datasets; a no-op for the others
    findings = check_dataset(datamodule, cfg.check_images, cfg.shown, dataset_widths())
    log.info("%s", format_findings(cfg.dataset.name, findings))
    return findings
