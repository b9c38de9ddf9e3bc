"""The LightningModule every method trains with: network -> method's code layer -> method's loss.

The math lives in pure functions (the method's loss, optim.lr_multiplier, retrieval.metrics); this
class wires them to the Trainer. Evaluation encodes the query and database splits (dataloader 0 and
1, any loaders of (images, labels, index) batches), collects them from every process by sample index
(hashnet.training.split_outputs) and ranks the database with the model's own retrieval settings
(hashnet.retrieval.evaluation); the result is kept in `self.retrieval`.
"""
from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from hashnet.data.protocol import check_conventions
from hashnet.methods import HashMethod, build_method
from hashnet.retrieval.evaluation import EVAL_CODES, Retrieval, evaluate_retrieval
from hashnet.training.optim import lr_multiplier, param_groups
from hashnet.training.split_outputs import SplitOutputs
from hashnet.utils.errors import check_choice

EVAL_SPLITS = ("query", "database")  # the evaluation dataloaders, in order

log = logging.getLogger(__name__)


def build(config: dict, **extra: Any) -> Any:
    """config's `_target_` class called with the other keys and extra (its own errors, unwrapped by Hydra)."""
    settings = {key: value for key, value in config.items() if key != "_target_"}
    return get_class(config["_target_"])(**settings, **extra)


def plain(config: Any) -> Any:
    """A DictConfig (or anything) as plain Python containers, so checkpoints hold no OmegaConf objects."""
    return OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else config


class HashingModule(pl.LightningModule):
    """A hashing method on Lightning; every argument is a plain value saved in the checkpoint.

    net: config of hashnet.nets.HashEncoder (`_target_`, backbone, hash_bit, pretrained, ...); method: a
    method's config (`name` and its own arguments, built by hashnet.methods.build_method with hash_bit,
    num_classes and multi_label added). optim: a torch.optim class config (`_target_`, lr, ...), given the
    parameter groups (backbone at lr, hash layer and the method's parameters at lr * hash_lr_mult);
    lr_schedule: keyword arguments of optim.lr_multiplier. dataset: name of the training dataset, kept so
    evaluation can refuse a mismatched checkpoint. Retrieval (hashnet.retrieval.evaluation): eval_codes "sign"
    ranks sign codes by Hamming distance (the paper's protocol), "continuous" the outputs by inner product
    (HashNet+C); topk is R of mAP@R (None: the whole database); ties and empty_queries its conventions.
    """

    def __init__(self, net: dict, method: dict, optim: dict, lr_schedule: dict, hash_lr_mult: float,
                 num_classes: int, multi_label: bool, dataset: str | None, eval_codes: str,
                 topk: int | list[int] | None = None, ties: str = "index", empty_queries: str = "drop") -> None:
        super().__init__()
        check_choice("model.eval_codes", eval_codes, EVAL_CODES)
        check_conventions(ties, empty_queries, prefix="dataset.")
        self.save_hyperparameters({"net": plain(net), "method": plain(method), "optim": plain(optim),
                                   "lr_schedule": plain(lr_schedule), "hash_lr_mult": hash_lr_mult,
                                   "num_classes": num_classes, "multi_label": multi_label, "dataset": dataset,
                                   "eval_codes": eval_codes, "topk": plain(topk), "ties": ties,
                                   "empty_queries": empty_queries})
        self.net = build(self.hparams.net)
        self.hash_bit: int = self.net.hash_bit
        self.method: HashMethod = build_method(self.hparams.method, self.hash_bit, num_classes, multi_label)
        self.method.attach(self.net, self.hparams.net["pretrained"], self.hparams.net.get("image_size"))
        self.eval_codes, self.topk, self.ties, self.empty_queries = eval_codes, plain(topk), ties, empty_queries
        self.split_outputs = torch.nn.ModuleDict({split: SplitOutputs() for split in EVAL_SPLITS})
        self.retrieval: Retrieval | None = None

    def forward(self, images: Tensor) -> Tensor:
        """images (N, 3, H, W) -> continuous codes (N, K): the method's code layer on the hash layer."""
        return self.method(self.net(images))

    # ---- training ----
    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels, index = batch
        if self.method.views > 1:  # (B, V, 3, H, W) -> the first views of the batch, then the second, ...
            images = images.transpose(0, 1).flatten(0, 1)
        codes = self(images)
        if self.method.unsupervised:  # the labels never reach its loss
            with torch.autocast(codes.device.type, enabled=False):
                loss = self.method.image_loss(codes.float(), images, self.net.backbone)
            self.log("train/loss", loss, prog_bar=True)
            return loss
        if self.method.observes:  # e.g. a memory bank: every process's batch, so that all ranks' banks stay equal
            self.method.observe(*(self.every_rank(x) for x in (codes.detach().float(), labels, index)))
        with torch.autocast(codes.device.type, enabled=False):  # every loss in float32, even under bf16/fp16
            loss = self.method.training_loss(codes.float(), labels, index)
        self.log("train/loss", loss, prog_bar=True)  # lr: LearningRateMonitor; a method logs its own schedule
        return loss

    def every_rank(self, x: Tensor) -> Tensor:
        """x (B, ...) of this process -> (world * B, ...) of every process (x itself in one process or without a
        Trainer)."""
        distributed = self._trainer is not None and self.trainer.world_size > 1
        return self.all_gather(x).flatten(0, 1) if distributed else x

    def configure_optimizers(self) -> dict:
        groups = param_groups(self.net.backbone, [self.net.hash_layer, self.method], self.hparams.optim["lr"],
                              self.hparams.hash_lr_mult)
        optimizer = build(self.hparams.optim, params=groups)
        schedule = self.hparams.lr_schedule
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_multiplier(step, **schedule))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "train/lr"}}

    # ---- evaluation: encode query and database, then rank ----
    def on_validation_epoch_start(self) -> None:
        for outputs in self.split_outputs.values():
            outputs.reset()

    on_test_epoch_start = on_validation_epoch_start

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        images, labels, index = batch
        self.split_outputs[EVAL_SPLITS[dataloader_idx]].update(self(images), labels, index)

    test_step = validation_step

    def on_validation_epoch_end(self) -> None:
        self.evaluate("val")

    def on_test_epoch_end(self) -> None:
        self.evaluate("test")

    def collected(self, split: str) -> tuple[Tensor, Tensor, Tensor]:
        """Every process's (outputs (N, K), labels (N, C), dataset index (N,)) of one split, on the CPU; the
        samples a loader skipped as unreadable (dataset.on_bad_image=skip) are absent and logged."""
        outputs, labels, index = (part.cpu() for part in self.split_outputs[split].compute())
        loaders = self.trainer.test_dataloaders if self.trainer.testing else self.trainer.val_dataloaders
        size = len(loaders[EVAL_SPLITS.index(split)].dataset)
        if len(index) < size:
            log.warning("%s: %d of %d images were not encoded (skipped as unreadable) and are left out of the "
                        "evaluation", split, size - len(index), size)
        return outputs, labels, index

    def evaluate(self, stage: str) -> None:
        """Collect both splits, rank the database for every query, log {stage}/mAP, keep self.retrieval."""
        (query, query_labels, query_index), (db, db_labels, db_index) = map(self.collected, EVAL_SPLITS)
        for outputs in self.split_outputs.values():
            outputs.reset()
        self.retrieval = evaluate_retrieval(query, query_labels, db, db_labels, self.topk, self.eval_codes, self.ties,
                                            self.empty_queries, query_index, db_index)
        # the same on every rank; sync_dist says so (Lightning warns otherwise) at the cost of one tiny all-reduce
        self.log(f"{stage}/mAP", self.retrieval.mAP, prog_bar=True, add_dataloader_idx=False, sync_dist=True)
