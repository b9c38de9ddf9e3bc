"""Shared fixtures: the embedded digits built once, a tiny run, and Hydra configs composed as the scripts do."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict
from PIL import Image

from hashnet.data.builders.digits import build_digits
from hashnet.data.datamodule import HashDataModule
from hashnet.tasks.setup import build_datamodule, build_model, resolve_method
from hashnet.tasks.train import train
from hashnet.training.module import HashingModule

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FIRST = ("tests/test_docs_commands.py", "tests/test_readme_commands.py")  # the longest files: started first


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker takes one core (its scripts too): N single-threaded workers on N cores, not N
    workers of N threads each fighting for them."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest work first: FIRST, then the files holding end-to-end (slow) tests, then the rest, each in its
    collected order. With --dist loadfile the workers take files in this order, so the short ones fill the end."""
    slow = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return 0 if path in FIRST else 1 if path in slow else 2
    items.sort(key=rank)


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded ``digits`` dataset (seed 0), built once per test session."""
    root = tmp_path_factory.mktemp("embedded") / "digits"
    build_digits(root)
    return root


# Data-dependent method settings (auto, filled by the method's resolve()) given as numbers, so that a model builds
# without reading data: what auto gives on the digits (HashNet's class_num, ADSH's r, DSDH's weight at 48 bits), and an
# ADSH database of 8 images (the batches of the method tests).
SETTLED = {"hashnet": ["method.class_num=10"], "dsdh": ["method.quantization_weight=1.32"],
           "adsh": ["method.soft_constraint=0.111", "+method.bank_size=8"]}


def compose_config(name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose configs/<name>.yaml with overrides, as @hydra.main would, writing into output_dir.

    HydraConfig is set before anything resolves ${hydra:...}; the run folder is output_dir.
    """
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose(name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def datamodule(**settings) -> HashDataModule:
    """A HashDataModule with configs/base/dataset.yaml's settings, except those given (name, root, num_classes,
    topk at least): the defaults live in that file only."""
    base = OmegaConf.to_container(OmegaConf.load(CONFIGS / "base" / "dataset.yaml"))
    base = {key: value for key, value in base.items() if key not in ("defaults", "_target_", "root")}
    return HashDataModule(**{**base, **settings})


def write_image_tree(root: Path, counts: dict[str, int], side: int = 8, seed: int = 0) -> Path:
    """An ImageFolder-style tree at root: counts[name] random side x side RGB PNGs in root/<name>/, every third one a
    folder deeper (root/<name>/more/), each class tinted its own colour so that a network can tell them apart."""
    rng = np.random.default_rng(seed)
    for label, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        tint = np.array([(label * 97) % 256, (label * 57 + 80) % 256, (label * 31 + 160) % 256], np.uint8)
        for i in range(count):
            path = root / name / ("more" if i % 3 == 2 else "") / f"{i:03d}.png"
            path.parent.mkdir(exist_ok=True)
            noise = rng.integers(0, 64, (side, side, 3), dtype=np.uint8)
            Image.fromarray(tint // 2 + noise).save(path)
    return root


def resolved_model(cfg: DictConfig) -> HashingModule:
    """The model train() would build from cfg: data-dependent settings (class_num=auto) resolved first."""
    resolve_method(cfg, build_datamodule(cfg))
    return build_model(cfg)


# 2 steps, 16 bits: a checkpoint and every output of a run, quick on 2 CPU cores.
TINY_RUN = ["hash_bit=16", "max_steps=2", "val_every=1000", "dataset.eval_batch_size=750", "trainer.accelerator=cpu"]


@pytest.fixture(scope="session")
def tiny_csv_run(digits_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A tiny digits run logged by CSVLogger (logger=csv): its folder and its results, trained once per session."""
    run_dir = tmp_path_factory.mktemp("tiny_csv_run")
    return run_dir, train(compose_config("train", [*TINY_RUN, "logger=csv", f"paths.data_dir={digits_root.parent}"], run_dir))


@pytest.fixture
def one_thread():
    """One torch thread for the test: on a busy 2-core machine two threads made a 32-px ResNet-18 forward take 1.5 s
    instead of 0.02 s (and a 1x1-pixel ShuffleNet's 2.5 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
