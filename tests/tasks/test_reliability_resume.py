"""End-to-end faults: a run SIGKILLed and resumed ends exactly as an uninterrupted one; a NaN loss stops the run."""
import json
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hashnet.tasks.train import train
from hashnet.training.callbacks import NonFiniteLossError

from conftest import compose_config
from script_runner import run_script

# Batches of 8 keep a step short. Checkpoints at steps 2 and 4; the lr halves and beta rises at step 5, after the
# resume point, so the restored schedules are exercised; every step is logged so the curves can be compared.
RUN = ["hash_bit=16", "max_steps=6", "ckpt_every=2", "val_every=1000", "dataset.batch_size=8",
       "dataset.eval_batch_size=750", "lr_schedule.step_size=5",
       "trainer.accelerator=cpu", "trainer.deterministic=true", "trainer.log_every_n_steps=1",
       "~callbacks.progress_bar", "+trainer.enable_progress_bar=false"]


def losses(run_dir: Path) -> dict[int, float]:
    """train/loss by step as TensorBoard shows the run folder (a step logged again replaces the old one)."""
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {event.step: event.value for event in events.Scalars("train/loss")}


@pytest.mark.slow
@pytest.mark.parametrize("method", [["method.step_size=5"],  # HashNet, beta raised at step 5
                                    ["method=dpsh", "method.pairs=bank", "optim=sgd"]],  # DPSH against a memory bank
                         ids=["hashnet", "dpsh-bank"])
def test_killed_and_resumed_run_ends_as_the_uninterrupted_one(method, digits_root, tmp_path):
    data_dir = digits_root.parent
    whole = train(compose_config("train", [*RUN, *method, f"paths.data_dir={data_dir}"], tmp_path / "whole"))

    run_dir = tmp_path / "killed"
    killed = run_script("train", [*RUN, *method, f"hydra.run.dir={run_dir}", "+callbacks.kill._target_=faults.KillAt",
                           "+callbacks.kill.step=5"], data_dir)
    assert killed.code == -9, killed.stderr[-3000:]  # SIGKILLed after step 5, mid-epoch (125 steps)
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4

    resumed = run_script("train", [*RUN, *method, f"hydra.run.dir={run_dir}", "resume=true"], data_dir)
    assert resumed.code == 0, resumed.stderr[-3000:]

    final = [torch.load(path / "checkpoints" / "last.ckpt", weights_only=False) for path in (tmp_path / "whole", run_dir)]
    assert final[0]["global_step"] == final[1]["global_step"] == 6
    for name, value in final[0]["state_dict"].items():
        assert torch.equal(value, final[1]["state_dict"][name]), name  # bitwise: weights, BatchNorm stats, beta, bank
    if "method.pairs=bank" in method:  # 6 steps of 8 images written, the same rows in both runs
        assert int(final[1]["state_dict"]["method.bank.written"].sum()) == 48
    assert final[0]["optimizer_states"][0]["param_groups"][1]["lr"] == final[1]["optimizer_states"][0]["param_groups"][1]["lr"] == 2e-2 * 0.5
    for a, b in zip(final[0]["optimizer_states"][0]["state"].values(), final[1]["optimizer_states"][0]["state"].values()):
        assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])
    assert f"test mAP@1000 = {whole['mAP']:.4f}" in resumed.stdout
    scores = json.loads((run_dir / "metrics.json").read_text())
    assert scores["mAP"] == scores["mAP_at"]["1000"] == whole["mAP"]  # the resumed run's test, to the last bit
    # One TensorBoard folder whose loss curve continues: the resumed steps equal the uninterrupted ones.
    assert losses(run_dir) == losses(tmp_path / "whole")
    assert sorted(losses(run_dir)) == [0, 1, 2, 3, 4, 5]


@pytest.mark.slow
def test_nan_loss_stops_the_run_naming_step_and_checkpoint(digits_root, tmp_path):
    cfg = compose_config("train", [*RUN, "method.step_size=5", f"paths.data_dir={digits_root.parent}",
                                   "+callbacks.poison._target_=faults.PoisonAt",
                                   "+callbacks.poison.step=3"], tmp_path)
    last = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(NonFiniteLossError, match=f"training loss is nan at step 3 .* Last checkpoint: {last} -- check the data of this step"):
        train(cfg)
    assert torch.load(last, weights_only=False)["global_step"] == 2  # nothing written after the bad step
    assert not (tmp_path / "metrics.json").exists()
