"""Fast reliability checks: atomic checkpoints, resumable sampling, run folder rules, config and checkpoint checks."""
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from hydra.utils import instantiate

from hashnet.data.sampling import ResumableSampler, SeededSamples, epoch_order, mix_seed
from hashnet.tasks.evaluate import evaluate
from hashnet.inference.checkpoint import CheckpointError, load_checkpoint
from hashnet.tasks.setup import build_trainer
from hashnet.tasks.train import train
from hashnet.training.checkpoints import (
    AtomicCheckpointIO,
    register_run_dir_resolver,
    resume_checkpoint,
    run_dir,
)
from hashnet.utils.errors import ConfigError

from conftest import CONFIGS, compose_config

ROOT = Path(__file__).resolve().parents[2]


# ---- atomic checkpoints ----
def test_failed_checkpoint_write_keeps_the_previous_file(tmp_path, monkeypatch):
    io, path = AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"global_step": 4, "w": torch.arange(3)}, path)

    def half_then_fail(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"global_step": 6}, path)
    assert io.load_checkpoint(path)["global_step"] == 4
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # the temporary file is removed


@pytest.mark.slow  # a fresh interpreter importing torch and Lightning
def test_kill_during_checkpoint_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"global_step": 4}, path)
    # A process SIGKILLed half-way through writing the next checkpoint: no cleanup code runs.
    script = (
        "import os, signal, sys, torch\n"
        "from hashnet.training.checkpoints import AtomicCheckpointIO\n"
        "def half_then_die(obj, f):\n"
        "    f.write(b'PK half'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
        "torch.save = half_then_die\n"
        "AtomicCheckpointIO().save_checkpoint({'global_step': 6}, sys.argv[1])\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, capture_output=True, timeout=120)
    assert result.returncode == -9
    assert AtomicCheckpointIO().load_checkpoint(path)["global_step"] == 4
    assert len(list(tmp_path.glob(".last.ckpt.*.tmp"))) == 1  # the stray half file, ignored by resume


def test_trainer_config_writes_checkpoints_atomically(tmp_path):
    cfg = compose_config("train", ["trainer.accelerator=cpu"], tmp_path)
    assert isinstance(build_trainer(cfg).strategy.checkpoint_io, AtomicCheckpointIO)
    assert cfg.callbacks.checkpoint.every_n_train_steps == cfg.val_every  # ckpt_every defaults to val_every
    assert compose_config("train", ["ckpt_every=7"], tmp_path).callbacks.checkpoint.every_n_train_steps == 7


# ---- training order as a pure function of (seed, epoch, step) ----
def stream(sampler: ResumableSampler, epochs: range) -> list[tuple[int, int]]:
    """(index, seed) pairs the sampler yields over epochs."""
    out = []
    for epoch in epochs:
        sampler.set_epoch(epoch)
        out.extend(sampler)
    return out


@pytest.mark.parametrize("start_step", [1, 5, 7, 8, 9, 15])
def test_sampler_built_at_a_step_continues_the_uninterrupted_order(start_step):
    data = list(range(30))  # 30 images, batches of 4: 7 steps an epoch, 2 images dropped
    full = stream(ResumableSampler(data, 4, seed=3), range(3))
    assert len(full) == 3 * 28 and len(ResumableSampler(data, 4, seed=3)) == 28
    resumed = ResumableSampler(data, 4, seed=3, start_step=start_step)
    first_epoch = start_step // 7
    assert stream(resumed, range(first_epoch, 3)) == full[start_step * 4:]


def test_sampler_epochs_differ_and_ranks_share_no_sample():
    data = list(range(30))
    one, other = stream(ResumableSampler(data, 4, seed=3), [0]), stream(ResumableSampler(data, 4, seed=3), [1])
    assert len(set(one)) == 28 and one != other  # 28 distinct samples, in another order each epoch
    assert stream(ResumableSampler(data, 4, seed=3), [0]) == one != stream(ResumableSampler(data, 4, seed=4), [0])
    ranks = [stream(ResumableSampler(data, 4, seed=3, num_replicas=2, rank=r), [0]) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 12  # 3 global steps of 2 x 4 images
    assert not {i for i, _ in ranks[0]} & {i for i, _ in ranks[1]}
    order, seeds = epoch_order(30, 3, 0)
    assert ranks[1][:4] == [(int(order[p]), int(seeds[p])) for p in range(4, 8)]  # step 0, rank 1
    with pytest.raises(ValueError, match="no full batch of 4 x 8 processes"):
        ResumableSampler(data, 4, seed=3, num_replicas=8)


def test_seeded_samples_depend_on_the_seed_only():
    draw = SeededSamples([None] * 3)
    draw.dataset = type("Random", (), {"__len__": lambda s: 3, "__getitem__": lambda s, i: torch.rand(2)})()
    torch.manual_seed(0)
    before = torch.get_rng_state()
    first = draw[(1, 42)]
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is left as it was
    torch.rand(5)
    assert torch.equal(draw[(2, 42)], first) and not torch.equal(draw[(1, 43)], first)
    assert mix_seed(0, 5) == mix_seed(0, 5) != mix_seed(0, 6) != mix_seed(1, 5)


# ---- which run folder and checkpoint a run continues ----
def test_run_dir_rules(tmp_path):
    runs = tmp_path / "outputs" / "digits" / "hashnet_resnet18_16bit"
    new = str(runs / "2026-01-03_00-00-00")
    assert run_dir(None, False, new) == new
    assert run_dir(str(tmp_path / "old" / "checkpoints" / "step000004.ckpt"), False, new) == str(tmp_path / "old")
    assert run_dir(str(tmp_path / "elsewhere.ckpt"), True, new) == new  # not in a run's checkpoints/
    assert run_dir(None, True, new) == new  # nothing to resume: train() stops (test_resume_checkpoint)
    for name in ("2026-01-01_00-00-00", "2026-01-02_00-00-00"):
        (runs / name / "checkpoints").mkdir(parents=True)
        (runs / name / "checkpoints" / "last.ckpt").touch()
    (runs / "2026-01-02_12-00-00").mkdir()  # newer, but it never saved a checkpoint
    assert run_dir(None, True, new) == str(runs / "2026-01-02_00-00-00")


def test_hydra_run_dir_follows_ckpt_path_and_resume(tmp_path, monkeypatch):
    register_run_dir_resolver()
    monkeypatch.chdir(tmp_path)
    earlier = Path("outputs/digits/hashnet_resnet18_16bit/2026-01-01_00-00-00")
    (earlier / "checkpoints").mkdir(parents=True)
    (earlier / "checkpoints" / "last.ckpt").touch()

    def run_dir_of(*overrides: str) -> str:
        with initialize_config_dir(str(CONFIGS), version_base="1.3"):
            return compose("train", overrides=list(overrides), return_hydra_config=True).hydra.run.dir

    assert run_dir_of(f"ckpt_path={tmp_path}/run/checkpoints/step000002.ckpt") == str(tmp_path / "run")
    assert run_dir_of("hash_bit=16", "resume=true") == str(earlier)
    fresh = run_dir_of("hash_bit=16")  # without resume=true: a new folder beside the earlier run
    assert fresh.startswith("outputs/digits/hashnet_resnet18_16bit/20") and fresh != str(earlier)
    assert run_dir_of("hash_bit=32", "resume=true").startswith("outputs/digits/hashnet_resnet18_32bit/20")


def test_resume_checkpoint(tmp_path):
    assert resume_checkpoint(None, False, tmp_path) is None
    with pytest.raises(FileNotFoundError, match="last.ckpt does not exist -- resume=true found no earlier run of "
                                                "this dataset, net and hash_bit with one: pass hydra.run.dir="):
        resume_checkpoint(None, True, tmp_path)
    (tmp_path / "checkpoints").mkdir()
    torch.save({"state_dict": {}, "global_step": 2}, tmp_path / "checkpoints" / "last.ckpt")
    assert resume_checkpoint(None, True, tmp_path) == str(tmp_path / "checkpoints" / "last.ckpt")
    with pytest.raises(FileNotFoundError, match="gone.ckpt: it does not exist -- check ckpt_path"):
        resume_checkpoint(str(tmp_path / "gone.ckpt"), True, tmp_path)


# ---- bad configs stop before anything is built ----
@pytest.mark.parametrize("override, message", [
    ("hash_bit=0", r"hash_bit=0: it must be a multiple of 8 from 8 to 1024 \(codes are stored 8 bits a byte\) -- pass "
                   "e.g. hash_bit=48"),
    ("hash_bit=-8", "hash_bit=-8: it must be a multiple of 8"),
    ("hash_bit=48.5", "hash_bit=48.5: it must be a multiple of 8"),
    ("hash_bit=abc", "hash_bit='abc': it must be a multiple of 8"),
    ("hash_bit=null", "hash_bit=None: it must be a multiple of 8"),
    ("hash_bit=12", "hash_bit=12: it must be a multiple of 8 .* pass e.g. hash_bit=8 or hash_bit=16"),
    ("hash_bit=100000", "hash_bit=100000: it must be a multiple of 8 from 8 to 1024"),
    ("seed=abc", "seed='abc': it must be an integer -- pass e.g. seed=0"),
    ("dataset.topk=0", r"dataset.topk=0: it must be a positive integer, null \(mAP over the whole database\)"),
    ("dataset.topk=abc", "dataset.topk='abc': it must be a positive integer"),
    ("dataset.crop_scale=[1.5,0.1]", r"dataset.crop_scale=\[1.5, 0.1\]: it must be \[min, max\] area fractions"),
    ("dataset.batch_size=1", "dataset.batch_size=1: it must be an integer >= 2 .*pass e.g. dataset.batch_size=72"),
    ("ckpt_every=0", "ckpt_every=0: it must be a positive integer -- pass e.g. ckpt_every=1000"),
    ("max_steps=-1", "max_steps=-1: it must be a positive integer"),
    ("val_every=true", "val_every=True: it must be a positive integer"),
    ("optim.lr=0", "optim.lr=0: it must be a positive number -- pass e.g. optim.lr=3e-4"),
    ("optim.lr=-1e-3", "optim.lr=-0.001: it must be a positive number"),
    ("hash_lr_mult=0", "hash_lr_mult=0: it must be a positive number -- pass e.g. hash_lr_mult=10"),
    ("dataset.eval_batch_size=0", "dataset.eval_batch_size=0: it must be an integer >= 1"),
    ("dataset.resize_size=0", "dataset.resize_size=0: it must be an integer >= 1"),
    ("dataset.crop_size=-32", "dataset.crop_size=-32: it must be an integer >= 1"),
    ("dataset.num_workers=-1", "dataset.num_workers=-1: it must be an integer >= 0 -- pass e.g. dataset.num_workers=4"),
    ("method.class_num=0", "method.class_num=0: it must be a positive number or auto -- pass e.g. method.class_num=auto"),
    ("method.class_num=many", "method.class_num='many': it must be a positive number or auto"),
    ("method=dpsh method.quantization_weight=-0.1", "method.quantization_weight=-0.1: it must be a number >= 0"),
    ("method=greedyhash method.penalty_weight=x", "method.penalty_weight='x': it must be a number >= 0"),
])
def test_bad_train_config_is_refused_early(override, message, tmp_path):
    cfg = compose_config("train", [*override.split(), f"paths.data_dir={tmp_path}/nothing"], tmp_path)
    with pytest.raises(ConfigError, match=message):
        train(cfg)  # data_dir is empty: the check must come before the data is touched
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("group, option, listed", [("net", "resnet19", "resnet18"), ("dataset", "cifar", "nus_wide_81")])
def test_unknown_net_or_dataset_lists_the_options(group, option, listed, tmp_path):
    with pytest.raises(MissingConfigException, match=f"(?s)Could not find '{group}/{option}'.*Available options in '{group}'.*{listed}"):
        compose_config("train", [f"{group}={option}"], tmp_path)


# ---- a checkpoint of another dataset / code length / backbone ----
@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory) -> Path:
    """A resnet18, 16-bit checkpoint for digits, as Lightning writes it (untrained)."""
    model = instantiate(compose_config("train", ["hash_bit=16", "method.class_num=10"], tmp_path_factory.mktemp("cfg")).model)
    path = tmp_path_factory.mktemp("ckpt") / "last.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": pl.__version__}, path)
    return path


@pytest.mark.parametrize("check, message", [
    ({"dataset": "coco"}, "was trained on dataset=digits, not dataset=coco: pass dataset=digits"),
    ({"hash_bit": 32}, "holds 16-bit codes, not hash_bit=32: pass hash_bit=16"),
    ({"net": "resnet50"}, "was trained with net=resnet18, not net=resnet50: pass net=resnet18"),
])
def test_checkpoint_of_another_setting_is_refused(digits_checkpoint, check, message):
    with pytest.raises(ValueError, match=f"checkpoint {digits_checkpoint} {message}"):
        load_checkpoint(digits_checkpoint, **check)
    assert load_checkpoint(digits_checkpoint, "digits", 16, "resnet18").hash_bit == 16


def test_checkpoint_of_the_first_layout_is_refused_with_the_way_out(digits_checkpoint, tmp_path):
    old = torch.load(digits_checkpoint, weights_only=True)
    old["hyper_parameters"] = {"net": old["hyper_parameters"]["net"], "loss": {"class_num": 1.0}, "optim": {"lr": 1e-3},
                               "topk": 1000, "dataset": "digits", "eval_codes": "sign"}  # what 0.1 saved
    torch.save(old, tmp_path / "old.ckpt")
    with pytest.raises(CheckpointError, match="comes from hashnet's first layout .*git checkout 80401af"):
        load_checkpoint(tmp_path / "old.ckpt")


def test_evaluate_command_line_checks_net(digits_checkpoint, tmp_path):
    cfg = compose_config("evaluate", [f"ckpt_path={digits_checkpoint}", "net=vgg16"], tmp_path)
    with pytest.raises(ValueError, match="trained with net=resnet18, not net=vgg16"):
        evaluate(cfg)
    assert "net" not in compose_config("evaluate", [f"ckpt_path={digits_checkpoint}"], tmp_path)


@pytest.mark.parametrize("content, message", [  # issue 29: named for what they are
    ({"state_dict": {}}, "records no hashnet settings \\(no hyper_parameters\\['net'\\]\\): it was not written by "
                         "scripts/train.py -- pass a checkpoint of a hashnet run"),
    (None, "checkpoint None: pass the path of a checkpoint file written by scripts/train.py"),
])
def test_a_file_that_is_not_a_hashnet_checkpoint_is_named(tmp_path, content, message):
    path = None
    if content is not None:
        path = tmp_path / "plain.ckpt"
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)
