"""What every registered method must do, so that a new one gets these checks for free: finite loss and gradients
on huge codes and hash-layer outputs (one-hot and multi-label), float64 in -> float64 out, the training loss in
float32 under bf16 autocast, a checkpoint round trip that gives the same codes, and the same codes when the
evaluation runs in two processes (DistributedSampler shards, padded, gathered by sample index). A fitted method
(hashnet.methods.fitted) has no loss: it is fitted on random pixels before its round trip instead."""
import copy
import functools
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from method_inputs import huge_codes
from omegaconf import OmegaConf
from torch.utils.data import DistributedSampler

from hashnet.methods import METHODS, HashMethod, PairwiseMethod
from hashnet.training.fitting import fit_method
from hashnet.training.module import HashingModule, build

from conftest import SETTLED, compose_config

pytestmark = [pytest.mark.filterwarnings("ignore:You are trying to `self.log\(\)`"),  # steps outside a Trainer
              pytest.mark.usefixtures("one_thread")]
IMAGES = 7  # odd: two processes get 4 each, one padded with a repeated image
LABELS = torch.eye(10)[torch.tensor([0, 1, 2, 0, 1, 3, 0])]
BATCH_LABELS = torch.eye(10)[[0, 1, 2, 0, 1, 1, 3, 0]]  # one label each, for a batch of 8
OBSERVES = (HashMethod.observes, PairwiseMethod.observes)  # nothing, or a memory bank only with pairs=bank
MULTI_LABELS = (BATCH_LABELS + torch.eye(10)[[5, 1, 0, 0, 3, 4, 3, 9]]).clamp(max=1)  # several 1s in most rows
SUPERVISED = sorted(name for name, method in METHODS.items() if not method.unsupervised)  # loss(h, labels)
TRAINED = sorted(name for name, method in METHODS.items() if not method.fitted)  # a training step


@functools.lru_cache(maxsize=None)
def model_config(name: str, hash_bit: int = 16, multi_label: bool = False) -> dict:
    """The model section of the composed training config of method name (composed once: a composition costs more
    than the model); data-dependent settings given as numbers."""
    overrides = [f"method={name}", f"hash_bit={hash_bit}", f"dataset.multi_label={multi_label}", *SETTLED.get(name, [])]
    config = OmegaConf.to_container(compose_config("train", overrides, Path("/tmp")).model, resolve=True)
    config.pop("_recursive_", None)
    return config


def model_of(name: str, hash_bit: int = 16, multi_label: bool = False, config: dict | None = None) -> HashingModule:
    """method name on resnet18 from scratch at the digits' 32 px, seeded (config: its model_config, given)."""
    torch.manual_seed(0)
    return build(copy.deepcopy(config or model_config(name, hash_bit, multi_label)))


def pixels(count: int = IMAGES) -> torch.Tensor:
    return torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def training_batch(model: HashingModule) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """8 images (each with its mirror image as a second view where the method asks for two), labels, index."""
    images = pixels(8)
    if model.method.views > 1:
        images = torch.stack([images, images.flip(-1)], dim=1)
    return images, LABELS[[0, 1, 2, 0, 1, 3, 0, 2]], torch.arange(8)


@pytest.mark.parametrize("multi_label, labels", [(False, BATCH_LABELS), (True, MULTI_LABELS)])
@pytest.mark.parametrize("name", SUPERVISED)
def test_huge_inputs_give_finite_loss_and_gradients(name, multi_label, labels):
    # Codes of +-1e4 (float32) straight into the loss, then hash-layer outputs of +-1e4 through the code layer.
    own = model_of(name, multi_label=multi_label).method
    h, z = huge_codes(), huge_codes()
    for leaf, codes in ((h, h), (z, own(z))):
        loss = own.training_loss(codes, labels, torch.arange(8))
        loss.backward()
        assert loss.dim() == 0 and loss.dtype == torch.float32 and torch.isfinite(loss)
        assert torch.isfinite(leaf.grad).all()


@pytest.mark.parametrize("name", SUPERVISED)
def test_float64_codes_give_a_float64_scalar(name):
    own = model_of(name).method.double()  # its own layers and buffers too
    codes = own(torch.randn(8, 16, generator=torch.Generator().manual_seed(0)).double())
    loss = own.training_loss(codes, BATCH_LABELS, torch.arange(8))
    assert loss.dim() == 0 and loss.dtype == torch.float64


@pytest.mark.parametrize("name", TRAINED)
def test_the_training_loss_is_float32_under_bf16_autocast(name):
    model = model_of(name).train()
    batch = training_batch(model)
    torch.manual_seed(3)
    exact = model.training_step(batch, 0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.manual_seed(3)
        mixed = model.training_step(batch, 0)
    assert exact.dtype == mixed.dtype == torch.float32 and torch.isfinite(mixed)


@pytest.mark.parametrize("name", METHODS)
def test_a_checkpoint_round_trip_gives_the_same_codes(name, tmp_path):
    model = model_of(name).train()
    if model.method.fitted:  # fitted on 24 random images (more rows than bits)
        fit_method(model, [(pixels(24), torch.zeros(24, 10), torch.arange(24))], seed=0)
    else:
        model.training_step(training_batch(model), 0)  # BatchNorm statistics move
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    restored = HashingModule(**torch.load(path, weights_only=False)["hyper_parameters"])
    restored.load_state_dict(torch.load(path, weights_only=False)["state_dict"])
    with torch.inference_mode():
        assert torch.equal(restored.eval()(pixels()), model.eval()(pixels()))
    for key, value in model.state_dict().items():
        assert torch.equal(value, restored.state_dict()[key]), key  # the method's own buffers and parameters too


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encode_in_two_processes(rank: int, port: int, configs: dict[str, dict], out: str) -> None:
    """Each rank encodes its DistributedSampler share of the images with every method's model (configs: name ->
    model_config), collects them with the model's SplitOutputs (torchmetrics gathers both ranks), and rank 0 saves
    what it collected."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    collected = {}
    for name, config in configs.items():
        model = model_of(name, config=config).eval()
        share = list(DistributedSampler(range(IMAGES), num_replicas=2, rank=rank, shuffle=False))
        index = torch.tensor(share)
        with torch.inference_mode():
            model.split_outputs["query"].update(model(pixels()[index]), LABELS[index], index)
        collected[name] = model.split_outputs["query"].compute()
    if rank == 0:
        torch.save(collected, out)
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_collect_the_codes_of_one(tmp_path):
    names = list(METHODS)
    configs = {name: model_config(name) for name in names}
    mp.spawn(encode_in_two_processes, args=(free_port(), configs, str(tmp_path / "two.pt")), nprocs=2)
    two = torch.load(tmp_path / "two.pt")
    for name in names:
        model = model_of(name).eval()
        with torch.inference_mode():
            one = model(pixels())
        outputs, labels, index = two[name]
        assert index.tolist() == list(range(IMAGES)), name  # the padded repeat counted once, in dataset order
        assert torch.equal(labels, LABELS), name
        torch.testing.assert_close(outputs, one, msg=name)  # the same network on the same images


STATEFUL = sorted(name for name, method in METHODS.items()  # own state: DSDH, DFH (observe_state), ADSH (observe)
                  if method.observes not in OBSERVES or getattr(method, "keeps_state", False))


@pytest.mark.parametrize("name", STATEFUL)
def test_state_from_the_gathered_batch_is_the_same_in_two_processes(name):
    # Under DDP every process's observe() gets the gathered batch and its training_loss() its own rows; its epoch-end
    # callbacks then run on every process. The state (W, centres, V, bank) must not depend on which rows were local.
    # (The other methods only write a bank there, with pairs=bank.)
    epoch_end = SimpleNamespace(current_epoch=0, global_step=1)
    one = model_of(name).method
    start = copy.deepcopy(one.state_dict())
    two = [copy.deepcopy(one) for _ in range(2)]
    index = torch.tensor([5, 0, 7, 2, 1, 6, 3, 4])
    for step in range(2):  # e.g. DFH's second step uses the centres the first one set
        codes = one(torch.randn(8, 16, generator=torch.Generator().manual_seed(step)))
        for method, rows in ((one, slice(0, 8)), (two[0], slice(0, 4)), (two[1], slice(4, 8))):
            method.observe(codes, BATCH_LABELS, index)
            method.training_loss(codes[rows], BATCH_LABELS[rows], index[rows])
            for callback in method.callbacks():
                callback.on_train_epoch_end(epoch_end, None)
    state = one.state_dict()
    assert any(not torch.equal(value, start[key]) for key, value in state.items())  # the steps did change it
    for key, value in state.items():
        assert torch.equal(value, two[0].state_dict()[key]) and torch.equal(value, two[1].state_dict()[key]), key
