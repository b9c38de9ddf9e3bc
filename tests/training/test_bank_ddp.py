"""Per-image state under 2-process DDP, on ADSH: its memory bank (every rank writes every rank's codes, as a
method.pairs=bank method's bank: the same MemoryBank, written by the same observe() of the gathered batch) and its
database codes V (solved at the epoch's end on every rank, by the callback train() adds). The ranks' states are equal,
V is the V-step of their bank, and they hold the training images a one-process run with the global batch size sees."""
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from hashnet.methods import build_method
from hashnet.methods.adsh import ADSH
from hashnet.tasks.setup import build_datamodule, build_model, build_trainer, resolve_method

from conftest import compose_config


class SaveState(pl.Callback):
    """Saves this rank's method state (bank and V) to <folder>/state<rank>.pt when training ends."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        state = {name: value.cpu() for name, value in pl_module.method.state_dict().items()}
        torch.save(state, Path(self.folder) / f"state{trainer.global_rank}.pt")


def fit(overrides: list[str], folder: Path, digits_root: Path) -> tuple[dict[str, torch.Tensor], ADSH]:
    """2 steps of ADSH, an epoch of 2 batches (so V is solved once, at its end): rank 0's method state, and an ADSH of
    the run's settings (r and the bank's size resolved from the training labels) that has not trained."""
    cfg = compose_config("train", ["method=adsh", "hash_bit=16", "max_steps=2", "+trainer.limit_train_batches=2",
                                   "val_every=1000", "+trainer.limit_val_batches=0", "~callbacks.checkpoint",
                                   "~callbacks.best", "~callbacks.progress_bar", "+trainer.enable_progress_bar=false",
                                   "logger=csv", "trainer.accelerator=cpu", f"paths.data_dir={digits_root.parent}",
                                   *overrides], folder)
    datamodule = build_datamodule(cfg)
    resolve_method(cfg, datamodule)
    model = build_model(cfg)
    trainer = build_trainer(cfg, callbacks=[SaveState(str(folder)), *model.method.callbacks()])
    trainer.fit(model, datamodule=datamodule)
    return torch.load(folder / "state0.pt"), build_method(OmegaConf.to_container(cfg.method), 16, 10, False)


@pytest.mark.slow
def test_two_processes_keep_equal_banks_and_database_codes_of_the_global_batches(digits_root, tmp_path):
    rank0, solved = fit(["trainer=ddp_spawn", "dataset.batch_size=8"], tmp_path / "ddp", digits_root)
    rank1 = torch.load(tmp_path / "ddp" / "state1.pt")
    assert rank0.keys() == {"bank.codes", "bank.labels", "bank.written", "v"}
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), name
    written = rank0["bank.written"]
    assert int(written.sum()) == 2 * 2 * 8  # 2 steps x 2 ranks x 8 images, none twice
    assert rank0["bank.labels"][written].sum(1).eq(1).all() and not rank0["bank.codes"][~written].any()
    v = rank0["v"]
    assert v[written].abs().eq(1).all() and not v[~written].any()  # solved once, for the images seen
    solved.load_state_dict({**rank0, "v": torch.zeros_like(v)})
    solved.update_codes()
    assert torch.equal(solved.v, v)  # the V-step of the gathered bank, from V = 0

    one, _ = fit(["dataset.batch_size=16"], tmp_path / "one", digits_root)  # one process, the global batch of 16
    assert torch.equal(one["bank.written"], written) and torch.equal(one["bank.labels"], rank0["bank.labels"])
    assert torch.equal(one["v"].abs(), v.abs())  # V on the same images (its signs follow codes, which BatchNorm's
    # per-process statistics make differ)
