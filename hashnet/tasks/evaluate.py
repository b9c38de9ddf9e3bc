"""evaluate(cfg): the paper's retrieval protocol on a trained checkpoint."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hashnet.inference.checkpoint import load_checkpoint
from hashnet.outputs.results import NOT_EVALUATED, clamped_note, no_labels, write_results
from hashnet.retrieval.evaluation import EVAL_CODES, unscored_reason
from hashnet.tasks.setup import (apply_threads, build_datamodule, build_trainer, run_info, save_run_config,
                                 use_trained_input_size)
from hashnet.utils.errors import ConfigError, check_choice

log = logging.getLogger(__name__)


def check_not_a_training_run(output_dir: Path) -> None:
    """ConfigError when output_dir holds a training run (its metrics.json, or its checkpoints/), whose metrics.json
    or .hydra/config.yaml an evaluation there would replace."""
    metrics = output_dir / "metrics.json"
    try:
        kind = json.loads(metrics.read_text()).get("kind", "training") if metrics.is_file() else None
    except (OSError, ValueError, AttributeError):
        kind = "unreadable"
    held = f"a {kind} run's metrics.json" if kind not in (None, "evaluation") else \
        "a training run's checkpoints/ and .hydra/config.yaml" if (output_dir / "checkpoints").is_dir() else None
    if held:
        raise ConfigError(f"hydra.run.dir={output_dir} holds {held}, which this evaluation would write over -- pass "
                          "hydra.run.dir=<a new folder> (or leave it out)")


def evaluate(cfg: DictConfig) -> dict:
    """Encode query and database in eval mode, rank (sign codes by Hamming distance unless eval_codes says
    otherwise), write metrics.json; on a dataset without labels only say why there is nothing to evaluate."""
    logging.captureWarnings(True)  # warnings.warn (e.g. R clamped to the database) reach evaluate.log too
    check_choice("eval_codes", cfg.get("eval_codes"), (None, *EVAL_CODES))
    check_not_a_training_run(Path(cfg.paths.output_dir))
    threads = apply_threads(cfg.get("threads"))
    net, method = cfg.get("net"), cfg.get("method")  # set by net=<backbone> / +method=<name>, as checks
    use_trained_input_size(cfg)
    datamodule = build_datamodule(cfg)  # checks the dataset's settings, the mAP protocol among them
    protocol = {"topk": datamodule.topk, "ties": datamodule.ties, "empty_queries": datamodule.empty_queries}
    overrides = {"eval_codes": cfg.eval_codes} if cfg.get("eval_codes") else {}
    model = load_checkpoint(cfg.ckpt_path, cfg.dataset.name, cfg.get("hash_bit"), net.backbone if net else None,
                            method.name if method else None, **protocol, **overrides)
    datamodule.prepare_data()
    if not datamodule.labelled("database"):  # a folder without labels: nothing to score, nothing written
        log.info(NOT_EVALUATED, no_labels(cfg.dataset.name))
        return {"not_evaluated": no_labels(cfg.dataset.name)}
    save_run_config(Path(cfg.paths.output_dir), OmegaConf.to_yaml(cfg))  # after the checks (Hydra's writing is off)
    trainer = build_trainer(cfg)
    trainer.test(model, datamodule=datamodule, verbose=False)
    output_dir = Path(cfg.paths.output_dir)
    results = write_results(trainer, model.retrieval, run_info(model, str(cfg.ckpt_path), model.trained_steps),
                            output_dir)
    if trainer.is_global_zero:
        if results["mAP"] is None:
            log.warning("mAP@%s: no query could be scored: %s -- check the labels of the query and database lists "
                        "(scripts/check_lists.py)", results["topk"] or "all", unscored_reason(model.retrieval))
        else:
            note = clamped_note(cfg.dataset.topk, results)
            clamped = f"; {note}" if note else ""
            log.info("mAP = %.4f  (%s, %s steps, %d threads%s)  -> %s", results["mAP"], results["protocol"],
                     results["steps"], threads, clamped, output_dir / "metrics.json")
    return results
