"""Runs that are interrupted or collide: a SIGTERM saves and says how to resume; one process per run folder."""
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys

import pytest
import torch

from hashnet.tasks.train import train
from hashnet.training.preemption import resume_command
from hashnet.utils.runlock import LOCK, RunFolderInUseError, acquire, release

from conftest import compose_config
from script_runner import run_script

# 6 steps of 8 images, checkpoints at 2 and 4; R = 5000 is above the 1,497 database images: a clamping warning.
RUN = ["hash_bit=16", "max_steps=6", "ckpt_every=2", "val_every=1000", "dataset.batch_size=8",
       "dataset.eval_batch_size=750", "dataset.topk=5000", "trainer.accelerator=cpu", "trainer.deterministic=true",
       "~callbacks.progress_bar", "+trainer.enable_progress_bar=false"]


def lock_of(pid: int, host: str | None = None) -> str:
    return json.dumps({"pid": pid, "host": host or socket.gethostname(), "started": "2026-01-01 10:00:00",
                       "command": "python scripts/train.py hash_bit=16"})


def test_run_folder_in_use_by_a_live_process_is_refused(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK).write_text(lock_of(other.pid))
        cfg = compose_config("train", [f"paths.data_dir={tmp_path}/nothing"], tmp_path)
        with pytest.raises(RunFolderInUseError, match=f"run folder {tmp_path} is in use by process {other.pid} on "
                                                      f"{socket.gethostname()} .started 2026-01-01 10:00:00.: python "
                                                      "scripts/train.py hash_bit=16 -- wait for it to end or stop it"):
            train(cfg)
        assert (tmp_path / LOCK).read_text() == lock_of(other.pid)  # still the other process's
        (tmp_path / LOCK).write_text(lock_of(1, "elsewhere"))  # another host: cannot be checked, refused
        with pytest.raises(RunFolderInUseError, match=f"on elsewhere .*if that process is gone, delete {tmp_path / LOCK}"):
            acquire(tmp_path)
    finally:
        other.kill()
        other.wait()


def test_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid now names no process
    (tmp_path / LOCK).write_text(lock_of(gone.pid))
    with caplog.at_level(logging.WARNING):
        path = acquire(tmp_path)
    assert f"run folder {tmp_path}: taking over the lock of process {gone.pid}" in caplog.text
    assert f'"pid": {os.getpid()}' in path.read_text()
    release(path)
    assert not path.exists()


def test_resume_command_replaces_ckpt_path_and_resume():
    command = resume_command("scripts/train.py", ["hash_bit=16", "resume=true", "ckpt_path=old.ckpt",
                                                  "dataset.path_map={/a: /b}"], "run/checkpoints/preempted.ckpt")
    assert command == "python scripts/train.py hash_bit=16 'dataset.path_map={/a: /b}' ckpt_path=run/checkpoints/preempted.ckpt"


@pytest.mark.slow
def test_sigterm_saves_and_the_printed_command_resumes_to_the_same_weights(digits_root, tmp_path):
    data_dir = digits_root.parent
    run_dir = tmp_path / "stopped"
    # From step 3 on each step waits 0.5 s, so the signal, sent once step000002.ckpt exists, lands mid-run.
    args = [*RUN, f"hydra.run.dir={run_dir}", "+callbacks.slow._target_=faults.SlowFrom", "+callbacks.slow.step=3",
            "+callbacks.slow.seconds=0.5"]
    stopped = run_script("train", args, data_dir, until=f"file:{run_dir}/checkpoints/step000002.ckpt",
                         stop=signal.SIGTERM, timeout=300)
    out, err = stopped.stdout, stopped.stderr
    assert stopped.code == 143, err[-3000:]
    saved = run_dir / "checkpoints" / "preempted.ckpt"
    step = torch.load(saved, weights_only=False)["global_step"]
    assert 2 <= step < 6
    assert f"stopped by SIGTERM at step {step}; checkpoint: {saved}\nresume with:\n" in out
    assert "Traceback" not in err and not (run_dir / LOCK).exists()  # the lock is released on the way out
    command = out.split("resume with:\n  ")[1].splitlines()[0]
    assert command == shlex.join(["python", "scripts/train.py", *args[:-4], *args[-3:], f"ckpt_path={saved}"])

    resumed = run_script("train", shlex.split(command)[2:], data_dir, timeout=300)
    assert resumed.code == 0, resumed.stderr[-3000:]
    whole = tmp_path / "whole"
    train(compose_config("train", [*RUN, f"paths.data_dir={data_dir}"], whole))
    final = [torch.load(path / "checkpoints" / "last.ckpt", weights_only=False) for path in (whole, run_dir)]
    assert final[0]["global_step"] == final[1]["global_step"] == 6
    for name, value in final[0]["state_dict"].items():
        assert torch.equal(value, final[1]["state_dict"][name]), name  # bitwise, as the uninterrupted run
    # Everything logged reaches the run folder's train.log: the stop, a warnings.warn, the final line.
    log = (run_dir / "train.log").read_text()
    assert f"stopped by SIGTERM at step {step}" in log
    assert "UserWarning: topk=5000 is larger than the database (1497 items); using 1497" in log
    assert "test mAP@1497 = " in log and "(dataset.topk=5000 is more than the 1497 database images)" in log  # R used
