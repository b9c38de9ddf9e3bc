"""Cluster runs: the submitit launcher configs, DDP under SLURM, and a submitit_local sweep on CPU."""
import json

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from hashnet.tasks.checks import check_launch

from conftest import CONFIGS
from script_runner import run_script
from small_data import small_lists


def compose_sweep(overrides: list[str]):
    """The train config of a -m sweep with its hydra node, as the launcher sees it."""
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.runtime.output_dir = "unused"
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


def test_slurm_launcher_requests_one_task_per_device_on_every_node():
    cfg = compose_sweep(["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "trainer=ddp",
                         "trainer.devices=4", "trainer.num_nodes=2"])
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher") and launcher["partition"] == "gpu"
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (2, 4, 4)
    assert (cfg.trainer.strategy, cfg.trainer.num_nodes) == ("ddp", 2)
    check_launch(cfg)  # srun starts the ranks: in-process ddp is right under SLURM


@pytest.mark.parametrize("launcher", ["basic", "local"])
def test_inprocess_ddp_sweep_is_refused_without_slurm(launcher):
    cfg = compose_sweep([f"hydra/launcher={launcher}", "trainer=ddp"])
    with pytest.raises(ValueError, match="re-launches the sweep in every child rank"):
        check_launch(cfg)


@pytest.mark.slow
def test_local_submitit_sweep_runs_two_jobs(digits_root, tmp_path):
    sweep, small = tmp_path / "sweep", small_lists(tmp_path / "small", digits_root)
    result = run_script("train", ["-m", "hydra/launcher=local", "hash_bit=8,16", "max_steps=2", "val_every=2",
                                  f"dataset.root={small}", "dataset.batch_size=8", "trainer.accelerator=cpu",
                                  f"hydra.sweep.dir={sweep}"], digits_root.parent, timeout=900)
    assert result.code == 0, result.stderr[-3000:]
    metrics = sorted(sweep.glob("*/metrics.json"))
    assert [p.parent.name for p in metrics] == ["0_digits_hashnet_resnet18_8bit_seed0", "1_digits_hashnet_resnet18_16bit_seed0"]
    assert [json.loads(p.read_text())["hash_bit"] for p in metrics] == [8, 16]
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 2  # each run went through submitit
