"""The LightningModule: HashNet's training step and retrieval evaluation, kept thin.

The math lives in pure functions (loss.pairwise_loss, optim.lr_multiplier, metrics.*); this class
wires them to the Trainer. Evaluation encodes the query and database splits (dataloader 0 and 1),
gathers the outputs from every rank by sample index and ranks the database by Hamming distance.
"""
from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from hashnet.codes import binarize
from hashnet.continuous import mean_average_precision_by_score
from hashnet.distributed import gather_by_index
from hashnet.loss import pairwise_loss
from hashnet.metrics import mean_average_precision
from hashnet.optim import lr_multiplier, sgd
from hashnet.protocol import check_conventions

SPLITS = ("query", "database")
EVAL_CODES = ("sign", "continuous")


def plain(config: Any) -> Any:
    """A DictConfig (or anything) as plain Python containers, so checkpoints hold no OmegaConf objects."""
    return OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else config


class HashNetModule(pl.LightningModule):
    """HashNet on Lightning.

    net:   config of hashnet.nets.HashNet (`_target_`, backbone, hash_bit, pretrained), instantiated here
           so the checkpoint's hyper-parameters rebuild the model.
    loss:  alpha (None -> 10 / hash_bit), class_num (weight of similar pairs), threshold,
           pairs ("halves": the two halves of a batch against each other, as the original's two
           streams; "all": every pair i != j of the batch).
    optim: keyword arguments of optim.sgd (lr, hash_lr_mult, momentum, weight_decay, nesterov) and
           of optim.lr_multiplier (policy, gamma, step_size, power) under `schedule`.
    topk:  R of mAP@R (None: the whole database).
    dataset: name of the training dataset, kept so evaluation can refuse a mismatched checkpoint.
    eval_codes: "sign" ranks sign codes by Hamming distance (the paper's protocol); "continuous" ranks
           the real-valued outputs by inner product (the paper's HashNet+C upper bound).
    ties, empty_queries: the mAP conventions (hashnet.metrics.mean_average_precision, hashnet.protocol).
    """

    def __init__(self, net: dict, loss: dict, optim: dict, topk: int | None = None, dataset: str | None = None,
                 eval_codes: str = "sign", ties: str = "index", empty_queries: str = "drop") -> None:
        super().__init__()
        if eval_codes not in EVAL_CODES:
            raise ValueError(f"model.eval_codes must be one of {list(EVAL_CODES)}, got {eval_codes!r}")
        check_conventions(ties, empty_queries, prefix="model.")
        net, loss, optim = plain(net), plain(loss), plain(optim)
        self.save_hyperparameters({"net": net, "loss": loss, "optim": optim, "topk": topk, "dataset": dataset,
                                   "eval_codes": eval_codes, "ties": ties, "empty_queries": empty_queries})
        self.eval_codes = eval_codes
        self.net = instantiate(net)
        self.hash_bit = net["hash_bit"]
        self.alpha = loss.get("alpha") or 10.0 / self.hash_bit
        self.class_num = float(loss.get("class_num", 1.0))
        self.threshold = float(loss.get("threshold", 15.0))
        self.pairs = loss.get("pairs", "halves")
        if self.pairs not in ("halves", "all"):
            raise ValueError(f"loss.pairs must be 'halves' or 'all', got {self.pairs!r}")
        self.topk, self.ties, self.empty_queries = topk, ties, empty_queries
        self.eval_outputs: dict[str, list[tuple[Tensor, Tensor, Tensor]]] = {}
        self.retrieval: dict[str, Tensor] = {}

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)

    # ---- training ----
    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels, _ = batch
        if len(images) < 2:
            raise ValueError(f"a training batch needs at least 2 images to form pairs, got {len(images)}")
        codes = self.net(images)
        if self.pairs == "halves":
            half = len(codes) // 2
            loss = pairwise_loss(codes[:half], codes[half:], labels[:half], labels[half:], self.alpha, self.class_num, self.threshold)
        else:
            loss = pairwise_loss(codes, codes, labels, labels, self.alpha, self.class_num, self.threshold, exclude_diagonal=True)
        self.log("train/loss", loss, prog_bar=True)  # beta: Continuation logs it; lr: LearningRateMonitor
        return loss

    def configure_optimizers(self) -> dict:
        settings = dict(self.hparams.optim)
        schedule = settings.pop("schedule", {})
        optimizer = sgd(self.net.backbone, self.net.hash_layer, **settings)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_multiplier(step, **schedule))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "train/lr"}}

    # ---- evaluation: encode query and database, then rank ----
    def on_validation_epoch_start(self) -> None:
        self.eval_outputs = {split: [] for split in SPLITS}

    on_test_epoch_start = on_validation_epoch_start

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        images, labels, index = batch
        self.eval_outputs[SPLITS[dataloader_idx]].append((self.net(images).float(), labels, index))

    test_step = validation_step

    def on_validation_epoch_end(self) -> None:
        self.log_retrieval("val")

    def on_test_epoch_end(self) -> None:
        self.log_retrieval("test")

    def gather_split(self, split: str) -> tuple[Tensor, Tensor]:
        """All ranks' (outputs (N, K), labels (N, C)) of one split, in dataset order, on the CPU."""
        outputs, labels, index = (torch.cat(parts) for parts in zip(*self.eval_outputs[split]))
        loaders = self.trainer.test_dataloaders if self.trainer.testing else self.trainer.val_dataloaders
        size = len(loaders[SPLITS.index(split)].dataset)
        all_gather = self.all_gather if self.trainer.world_size > 1 else None
        rows = gather_by_index(torch.cat([outputs, labels.float()], 1), index, size, all_gather).cpu()
        return rows[:, : self.hash_bit], rows[:, self.hash_bit :]

    def log_retrieval(self, stage: str) -> None:
        """Gather both splits, binarise, compute mAP@R (of eval_codes) and keep everything in self.retrieval."""
        query_out, query_labels = self.gather_split("query")
        db_out, db_labels = self.gather_split("database")
        self.eval_outputs = {}
        query_codes, db_codes = binarize(query_out), binarize(db_out)
        if self.eval_codes == "sign":
            mean_ap = mean_average_precision(query_codes, query_labels, db_codes, db_labels, self.topk, self.ties,
                                             self.empty_queries)
        else:
            mean_ap = mean_average_precision_by_score(query_out, query_labels, db_out, db_labels, self.topk,
                                                      self.empty_queries)
        self.log(f"{stage}/mAP", mean_ap, prog_bar=True)  # identical on every rank: no sync
        self.retrieval = {
            "query_outputs": query_out, "query_labels": query_labels, "query_codes": query_codes,
            "db_outputs": db_out, "db_labels": db_labels, "db_codes": db_codes, "mAP": mean_ap,
        }
