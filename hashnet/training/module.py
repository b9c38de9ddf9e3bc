"""The LightningModule every method trains with: network -> method's code layer -> method's loss.

The math lives in pure functions (the method's loss, optim.lr_multiplier, retrieval.metrics); this
class wires them to the Trainer. Evaluation encodes the query and database splits (dataloader 0 and
1), gathers the outputs from every rank by sample index and ranks the database
(hashnet.retrieval.evaluation); the result is kept in `self.retrieval`.
"""
from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from hashnet.methods.base import HashMethod
from hashnet.retrieval.evaluation import EVAL_CODES, Retrieval, evaluate_retrieval
from hashnet.training.distributed import gather_by_index
from hashnet.training.optim import lr_multiplier, param_groups

EVAL_SPLITS = ("query", "database")  # the evaluation dataloaders, in order


def build(config: dict, **extra: Any) -> Any:
    """config's `_target_` class called with the other keys and extra (its own errors, unwrapped by Hydra)."""
    settings = {key: value for key, value in config.items() if key != "_target_"}
    return get_class(config["_target_"])(**settings, **extra)


def plain(config: Any) -> Any:
    """A DictConfig (or anything) as plain Python containers, so checkpoints hold no OmegaConf objects."""
    return OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else config


class HashingModule(pl.LightningModule):
    """A hashing method on Lightning; every argument is a plain value saved in the checkpoint.

    net: config of hashnet.nets.HashEncoder (`_target_`, backbone, hash_bit, pretrained, channels_last);
    method: config of a hashnet.methods class (`_target_` and its own arguments); both are built here,
    the method with hash_bit, num_classes and multi_label added. optim: a torch.optim class config
    (`_target_`, lr, ...), given the parameter groups (backbone at lr, hash layer and the method's
    parameters at lr * hash_lr_mult); lr_schedule: keyword arguments of optim.lr_multiplier.
    dataset: name of the training dataset, kept so evaluation can refuse a mismatched checkpoint.
    eval_codes: "sign" ranks sign codes by Hamming distance (the paper's protocol); "continuous" ranks
    the outputs by inner product (HashNet+C). R of mAP@R is the evaluated datamodule's `topk`.
    """

    def __init__(self, net: dict, method: dict, optim: dict, lr_schedule: dict, hash_lr_mult: float,
                 num_classes: int, multi_label: bool, dataset: str | None, eval_codes: str) -> None:
        super().__init__()
        if eval_codes not in EVAL_CODES:
            raise ValueError(f"model.eval_codes must be one of {list(EVAL_CODES)}, got {eval_codes!r}")
        self.save_hyperparameters({"net": plain(net), "method": plain(method), "optim": plain(optim),
                                   "lr_schedule": plain(lr_schedule), "hash_lr_mult": hash_lr_mult,
                                   "num_classes": num_classes, "multi_label": multi_label, "dataset": dataset,
                                   "eval_codes": eval_codes})
        self.net = build(self.hparams.net)
        self.hash_bit: int = self.net.hash_bit
        self.method: HashMethod = build(self.hparams.method, hash_bit=self.hash_bit, num_classes=num_classes,
                                        multi_label=multi_label)
        self.eval_codes = eval_codes
        self.eval_outputs: dict[str, list[tuple[Tensor, Tensor, Tensor]]] = {}
        self.retrieval: Retrieval | None = None

    def forward(self, images: Tensor) -> Tensor:
        """images (N, 3, H, W) -> continuous codes (N, K): the method's code layer on the hash layer."""
        return self.method(self.net(images))

    # ---- training ----
    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels, _ = batch
        if len(images) < 2:
            raise ValueError(f"a training batch needs at least 2 images to form pairs, got {len(images)}")
        codes = self(images)
        with torch.autocast(codes.device.type, enabled=False):  # every loss in float32, even under bf16/fp16
            loss = self.method.loss(codes.float(), labels)
        self.log("train/loss", loss, prog_bar=True)  # lr: LearningRateMonitor; a method logs its own schedule
        return loss

    def configure_optimizers(self) -> dict:
        groups = param_groups(self.net.backbone, [self.net.hash_layer, self.method], self.hparams.optim["lr"],
                              self.hparams.hash_lr_mult)
        # null keys are left to the optimiser's defaults: a recipe that switches the class from SGD nulls momentum
        optimizer = build({key: value for key, value in self.hparams.optim.items() if value is not None}, params=groups)
        schedule = self.hparams.lr_schedule
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_multiplier(step, **schedule))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "train/lr"}}

    # ---- evaluation: encode query and database, then rank ----
    def on_validation_epoch_start(self) -> None:
        self.eval_outputs = {split: [] for split in EVAL_SPLITS}

    on_test_epoch_start = on_validation_epoch_start

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        images, labels, index = batch
        self.eval_outputs[EVAL_SPLITS[dataloader_idx]].append((self(images).float(), labels, index))

    test_step = validation_step

    def on_validation_epoch_end(self) -> None:
        self.evaluate("val")

    def on_test_epoch_end(self) -> None:
        self.evaluate("test")

    def gather_split(self, split: str) -> tuple[Tensor, Tensor]:
        """All ranks' (outputs (N, K), labels (N, C)) of one split, in dataset order, on the CPU."""
        outputs, labels, index = (torch.cat(parts) for parts in zip(*self.eval_outputs[split]))
        loaders = self.trainer.test_dataloaders if self.trainer.testing else self.trainer.val_dataloaders
        size = len(loaders[EVAL_SPLITS.index(split)].dataset)
        all_gather = self.all_gather if self.trainer.world_size > 1 else None
        rows = gather_by_index(torch.cat([outputs, labels.float()], 1), index, size, all_gather).cpu()
        return rows[:, : self.hash_bit], rows[:, self.hash_bit :]

    def evaluate(self, stage: str) -> None:
        """Gather both splits, rank the database for every query, log {stage}/mAP, keep self.retrieval."""
        query, database = self.gather_split("query"), self.gather_split("database")
        self.eval_outputs = {}
        data = self.trainer.datamodule  # R and the mAP conventions belong to the evaluated dataset
        self.retrieval = evaluate_retrieval(*query, *database, data.topk, self.eval_codes, data.ties, data.empty_queries)
        self.log(f"{stage}/mAP", self.retrieval.mAP, prog_bar=True, add_dataloader_idx=False)  # same on every rank
