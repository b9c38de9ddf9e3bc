"""What an evaluation leaves behind: metrics.json next to the run."""
from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl

from hashnet.files import atomic_write_json
from hashnet.module import HashNetModule


def write_results(trainer: pl.Trainer, model: HashNetModule, output_dir: Path, checkpoint: str | None) -> dict:
    """Summarise model.retrieval (filled by the last test run); rank 0 writes output_dir/metrics.json."""
    results = {
        "mAP": model.retrieval["mAP"],
        "topk": model.topk,
        "hash_bit": model.hash_bit,
        "net": model.hparams.net["backbone"],
        "dataset": model.hparams.dataset,
        "checkpoint": checkpoint,
        "num_queries": len(model.retrieval["query_codes"]),
        "num_database": len(model.retrieval["db_codes"]),
    }
    if trainer.is_global_zero:
        atomic_write_json(output_dir / "metrics.json", results)
    return results
