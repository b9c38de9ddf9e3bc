"""evaluate(cfg): the paper's retrieval protocol on a trained checkpoint."""
from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from hashnet.module import HashNetModule
from hashnet.results import write_results
from hashnet.train import build_datamodule, build_trainer


def load_checkpoint(path: str | Path, dataset: str | None = None, hash_bit: int | None = None,
                    net: str | None = None, **overrides) -> HashNetModule:
    """Rebuild HashNetModule from a checkpoint, refusing one trained for another dataset, code length or backbone.

    None skips a check; each error names what the checkpoint holds and what was asked for. overrides:
    constructor arguments that replace the checkpoint's (e.g. topk), in the module's hparams too.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    model = HashNetModule.load_from_checkpoint(path, map_location="cpu", **overrides)
    trained_on = model.hparams.dataset
    if dataset is not None and trained_on is not None and trained_on != dataset:
        raise ValueError(f"checkpoint {path} was trained on dataset={trained_on}, not dataset={dataset}: pass dataset={trained_on}")
    if hash_bit is not None and hash_bit != model.hash_bit:
        raise ValueError(f"checkpoint {path} holds {model.hash_bit}-bit codes, not hash_bit={hash_bit}: "
                         f"pass hash_bit={model.hash_bit} or another checkpoint")
    backbone = model.hparams.net["backbone"]
    if net is not None and net != backbone:
        raise ValueError(f"checkpoint {path} was trained with net={backbone}, not net={net}: pass net={backbone} or another checkpoint")
    return model


def use_trained_input_size(cfg: DictConfig) -> None:
    """Set cfg.dataset's resize_size / crop_size to those the checkpoint cfg.ckpt_path was trained with.

    The test transform must match training: a run whose recipe changed the input size (digits_multi
    reads its mosaics at 32 px, AlexNet needs 64) evaluates at that size without repeating the
    override. Says so when the dataset config differs; checkpoints without datamodule settings
    leave cfg as it is.
    """
    checkpoint = torch.load(cfg.ckpt_path, map_location="cpu", mmap=True, weights_only=True)
    trained = checkpoint.get("datamodule_hyper_parameters") or {}
    for key in ("resize_size", "crop_size"):
        if key in trained and trained[key] != cfg.dataset[key]:
            print(f"dataset.{key}={trained[key]}, as the checkpoint was trained (the dataset config says {cfg.dataset[key]})")
            cfg.dataset[key] = trained[key]


def evaluate(cfg: DictConfig) -> dict:
    """Encode query and database in eval mode, rank (sign codes by Hamming distance unless eval_codes says
    otherwise), write metrics.json."""
    net = cfg.get("net")  # set by net=<backbone> on the command line, as a check
    # the dataset's mAP settings, in the module's hparams too: Lightning refuses module and datamodule
    # hparams that disagree
    model = load_checkpoint(cfg.ckpt_path, cfg.dataset.name, cfg.get("hash_bit"), net.backbone if net else None,
                            topk=cfg.dataset.topk, ties=cfg.dataset.ties, empty_queries=cfg.dataset.empty_queries)
    model.eval_codes = cfg.get("eval_codes") or model.eval_codes
    use_trained_input_size(cfg)
    datamodule = build_datamodule(cfg)
    trainer = build_trainer(cfg)
    trainer.test(model, datamodule=datamodule)
    output_dir = Path(cfg.paths.output_dir)
    results = write_results(trainer, model, output_dir, str(cfg.ckpt_path))
    if trainer.is_global_zero:
        print(f"\nmAP = {results['mAP']:.4f}  ({results['protocol']})  -> {output_dir / 'metrics.json'}")
    return results
