"""Runs that must finish as the README prints them: trainer=ddp_spawn (one run and a -m sweep), and the same tiny
run twice in one process setting giving the same weights and mAP, bit for bit."""
from __future__ import annotations

import json
import os

import pytest
import torch

from hashnet.tasks.train import train

from conftest import compose_config
from script_runner import Case, run_scripts
from small_data import small_lists

SMALL = ["dataset.batch_size=8", "dataset.eval_batch_size=64", "trainer.accelerator=cpu", "threads=1"]


@pytest.mark.slow
def test_ddp_spawn_sweep_writes_every_jobs_metrics(digits_root, tmp_path):
    small = small_lists(tmp_path / "small", digits_root)
    sweep = tmp_path / "sweep"
    env = {"HASHNET_DATA_DIR": str(digits_root.parent)}
    (swept,) = run_scripts([Case("train", ["-m", "trainer=ddp_spawn", "hash_bit=16,32", "max_steps=2", "val_every=2",
                                           f"dataset.root={small}", *SMALL, f"hydra.sweep.dir={sweep}"], env=env,
                                 cwd=str(tmp_path), timeout=900)])
    assert swept.code == 0, swept.stderr[-3000:]
    runs = sorted(sweep.glob("*/metrics.json"))
    assert [json.loads(path.read_text())["hash_bit"] for path in runs] == [16, 32]
    for path in runs:  # each job evaluated in the launching process, from its own run folder
        metrics = json.loads(path.read_text())
        assert metrics["steps"] == 2 and 0 < metrics["mAP"] <= 1
        assert metrics["checkpoint"] == str(path.parent / "checkpoints" / "last.ckpt")
        log = (path.parent / "train.log").read_text()
        assert "test mAP@50 = " in log  # R clamped to the 50 database images
        assert "step 1/2" in log  # the spawned rank 0 logs into the run's log too


@pytest.mark.slow
def test_the_same_run_twice_gives_the_same_weights_and_map(digits_root, tmp_path):
    small = small_lists(tmp_path / "small", digits_root)
    threads, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    try:
        results = [train(compose_config("train", ["hash_bit=16", "max_steps=3", "val_every=3", *SMALL,
                                                  f"dataset.root={small}", f"paths.data_dir={digits_root.parent}"],
                                        tmp_path / name)) for name in ("first", "second")]
    finally:
        torch.set_num_threads(threads)
        os.environ.pop("OMP_NUM_THREADS") if omp is None else os.environ.update(OMP_NUM_THREADS=omp)
    first, second = (torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
                     for name in ("first", "second"))
    assert first.keys() == second.keys()
    for name, value in first.items():
        assert torch.equal(value, second[name]), name
    assert results[0]["mAP"] == results[1]["mAP"] and results[0]["threads"] == results[1]["threads"] == 1
