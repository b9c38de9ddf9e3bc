"""A run's hyper-parameters with its final metrics, for the loggers' side-by-side views of a sweep.

TensorBoard's HParams tab, MLflow's and Weights & Biases' run tables and CSVLogger's hparams.yaml +
metrics.csv all get the same flat record: method, net, hash_bit, dataset, lr, class_num, seed,
protocol, and the test mAP and P@H<=2 under METRICS' names (which every logger accepts).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger, TensorBoardLogger, WandbLogger

# results key (metrics.json) -> the name logged with the hyper-parameters (MLflow refuses "<=" and "@")
METRICS = {"mAP": "hp/mAP", "precision_at_hamming_2": "hp/precision_at_hamming_2"}


def run_hparams(cfg: DictConfig, results: Mapping[str, Any]) -> dict[str, str | int | float]:
    """The flat scalars a sweep varies, from a training config (method.class_num already resolved from auto)
    and its results (the method's name, the protocol line); class_num is HashNet's, 0 for methods without one."""
    return {
        "method": results["method"],
        "net": cfg.net.backbone,
        "hash_bit": int(cfg.hash_bit),
        "dataset": cfg.dataset.name,
        "lr": float(cfg.optim.lr),
        "class_num": float(cfg.method.get("class_num") or 0.0),
        "seed": int(cfg.seed),
        "protocol": results.get("protocol", "none"),  # none: not evaluated (a dataset without labels)
    }


def log_run_hparams(logger: Logger | None, cfg: DictConfig, results: Mapping[str, Any], step: int | None = None) -> None:
    """Log run_hparams(cfg) with the final metrics of results (metrics.json's dict) to logger, and write them out.

    TensorBoardLogger gets them as one HParams-plugin record (its metrics also as scalars at step); other
    loggers log the parameters and the metrics separately. Only rank 0 logs (the loggers' own rule).
    The logger is finalized again afterwards, and a W&B run finished.
    """
    if logger is None:
        return
    params = run_hparams(cfg, results)
    metrics = {name: float(results[key]) for key, name in METRICS.items() if results.get(key) is not None}
    if isinstance(logger, TensorBoardLogger):
        logger.log_hyperparams(params, metrics, step=step)
    else:
        logger.log_hyperparams(params)
        logger.log_metrics(metrics, step=step)
    logger.finalize("success")  # the trainer finalized it after testing: flush (and close) what came after
    if isinstance(logger, WandbLogger):
        logger.experiment.finish()  # else the next run of a -m sweep in this process would log into this W&B run
