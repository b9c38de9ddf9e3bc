"""A memory bank under 2-process DDP: every rank writes every rank's codes, so the banks stay equal, and they hold the
training images a one-process run with the global batch size sees."""
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from hashnet.tasks.setup import build_datamodule, build_model, build_trainer, resolve_method

from conftest import compose_config


class SaveBank(pl.Callback):
    """Saves this rank's bank buffers to <folder>/bank<rank>.pt when training ends."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        bank = {name: value.cpu() for name, value in pl_module.method.bank.state_dict().items()}
        torch.save(bank, Path(self.folder) / f"bank{trainer.global_rank}.pt")


def fit(overrides: list[str], folder: Path, digits_root: Path) -> None:
    cfg = compose_config("train", ["method=dpsh", "method.pairs=bank", "hash_bit=16", "max_steps=2", "val_every=1000",
                                   "+trainer.limit_val_batches=0", "~callbacks.checkpoint", "~callbacks.best",
                                   "~callbacks.progress_bar", "+trainer.enable_progress_bar=false", "logger=csv",
                                   "trainer.accelerator=cpu", f"paths.data_dir={digits_root.parent}", *overrides], folder)
    datamodule = build_datamodule(cfg)
    resolve_method(cfg, datamodule)
    trainer = build_trainer(cfg, callbacks=[SaveBank(str(folder))])
    trainer.fit(build_model(cfg), datamodule=datamodule)


@pytest.mark.slow
def test_two_processes_keep_equal_banks_of_the_global_batches(digits_root, tmp_path):
    fit(["trainer=ddp_spawn", "dataset.batch_size=8"], tmp_path / "ddp", digits_root)
    rank0, rank1 = (torch.load(tmp_path / "ddp" / f"bank{rank}.pt") for rank in (0, 1))
    for name in ("codes", "labels", "written"):
        assert torch.equal(rank0[name], rank1[name]), name
    assert int(rank0["written"].sum()) == 2 * 2 * 8  # 2 steps x 2 ranks x 8 images, none twice
    assert rank0["labels"][rank0["written"]].sum(1).eq(1).all() and not rank0["codes"][~rank0["written"]].any()

    fit(["dataset.batch_size=16"], tmp_path / "one", digits_root)  # one process, the global batch of 16
    one = torch.load(tmp_path / "one" / "bank0.pt")
    assert torch.equal(one["written"], rank0["written"]) and torch.equal(one["labels"], rank0["labels"])
