"""method.pairs=bank: the memory bank of training codes (hashnet.methods.bank) and the pairwise methods that read it."""
import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from hashnet.methods import METHODS, PairwiseMethod
from hashnet.methods.bank import MemoryBank
from hashnet.methods.dhn import dhn_loss, log_cosh
from hashnet.methods.dpsh import dpsh_loss
from hashnet.methods.dsh import dsh_loss
from hashnet.methods.hashnet import HashNet, pairwise_loss
from hashnet.utils.errors import ConfigError

from conftest import CONFIGS

PAIRWISE = sorted(name for name, cls in METHODS.items() if issubclass(cls, PairwiseMethod))


def settings(name: str) -> dict:
    """The method's settings as its config file has them (less name and pairs)."""
    config = OmegaConf.to_container(OmegaConf.load(CONFIGS / "method" / f"{name}.yaml"))
    return {key: value for key, value in config.items() if key not in ("defaults", "name", "pairs")}


def banked(name: str, size: int = 10, hash_bit: int = 4) -> PairwiseMethod:
    config = settings(name)
    auto = {"class_num": 10.0, "quantization_weight": 0.26}  # numbers in place of HashNet's and DSDH's auto
    config = {key: auto[key] if value == "auto" else value for key, value in config.items()}
    return METHODS[name](hash_bit=hash_bit, num_classes=3, multi_label=False, pairs="bank", bank_size=size, **config)


def test_the_bank_stores_detached_rows_at_their_indices_and_reads_only_written_ones():
    bank = MemoryBank(size=5, hash_bit=2, num_classes=3)
    codes = torch.tensor([[1.0, -1.0], [0.5, 0.5]], requires_grad=True)
    bank.write(codes, torch.tensor([[0, 1, 0], [1, 0, 0]]), torch.tensor([3, 1]))
    assert bank.written.tolist() == [False, True, False, True, False]
    read_codes, read_labels = bank.read()
    assert read_codes.tolist() == [[0.5, 0.5], [1.0, -1.0]] and not read_codes.requires_grad  # rows 1, 3 in order
    assert read_labels.tolist() == [[1, 0, 0], [0, 1, 0]]
    bank.write(torch.tensor([[-2.0, 2.0]]), torch.tensor([[0, 0, 1]]), torch.tensor([1]))  # the latest code wins
    assert bank.read()[0].tolist() == [[-2.0, 2.0], [1.0, -1.0]]
    assert set(bank.state_dict()) == {"codes", "labels", "written"}  # saved with checkpoints


def test_bank_size_is_the_number_of_training_images():
    labels = np.eye(3, dtype=np.uint8)[[0, 1, 2, 0, 1]]
    assert METHODS["dhn"].resolve({"pairs": "bank"}, lambda: labels)["bank_size"] == 5
    assert "bank_size" not in METHODS["dhn"].resolve({"pairs": "halves"}, lambda: 1 / 0)  # labels not read
    resolved = HashNet.resolve({"pairs": "bank", "class_num": "auto"}, lambda: labels)
    assert resolved["bank_size"] == 5 and resolved["class_num"] == pytest.approx(20 / 4)  # 20 ordered pairs, 4 similar


def test_dhn_against_the_bank_by_hand_with_the_regulariser_on_the_batch_only():
    # One batch code u1 = [1, 1] (class 0); the bank holds rows 2 and 7 of 10: [2, 0] (class 0), [1, -1] (class 1).
    # theta = 0.5 * <u1, bank> = [1, 0]; s = [1, 0]: likelihood mean = ((log(1+e) - 1) + log 2) / 2.
    # Regulariser on u1 only: log cosh(|1| - 1) = 0 for both entries; the bank rows would add log cosh(1) terms.
    method = banked("dhn", size=10, hash_bit=2)
    method.observe(torch.tensor([[2.0, 0.0], [1.0, -1.0]]), torch.tensor([[1, 0, 0], [0, 1, 0]]), torch.tensor([2, 7]))
    u1, y1 = torch.tensor([[1.0, 1.0]]), torch.tensor([[1, 0, 0]])
    expected = ((math.log1p(math.e) - 1) + math.log(2)) / 2
    assert method.loss(u1, y1).item() == pytest.approx(expected, rel=1e-6)
    with_bank_regularised = expected + 0.1 * (2 * float(log_cosh(torch.tensor(1.0))) + 0) / 6
    bank_codes = torch.tensor([[2.0, 0.0], [1.0, -1.0]])
    assert dhn_loss(u1, bank_codes, y1, torch.tensor([[1, 0, 0], [0, 1, 0]])).item() == pytest.approx(
        with_bank_regularised, rel=1e-6)  # the batch-pairs default: both sets regularised


@pytest.mark.parametrize("name, loss", [("dhn", dhn_loss), ("dpsh", dpsh_loss), ("dsh", dsh_loss)])
def test_a_banked_method_compares_the_batch_with_the_written_rows_only(name, loss):
    generator = torch.Generator().manual_seed(0)
    method = banked(name, size=10)
    written = torch.tensor([0, 4, 5, 9])
    codes, labels = torch.randn(4, 4, generator=generator), torch.eye(3)[[0, 1, 2, 0]]
    method.observe(codes, labels, written)
    h, y = torch.randn(3, 4, generator=generator), torch.eye(3)[[1, 0, 0]]
    expected = loss(h, codes, y, labels, regularize_u2=False)  # rows 0, 4, 5, 9 in index order: as written
    assert method.loss(h, y) == expected and method.observes
    assert loss(h, codes, y, labels, regularize_u2=False) != loss(h, codes, y, labels)  # the batch-only regulariser


def test_hashnet_against_the_bank_is_its_weighted_loss_on_the_written_rows():
    method = banked("hashnet", size=6)
    codes, labels = torch.tanh(torch.randn(2, 4)), torch.eye(3)[[0, 1]]
    method.observe(codes, labels, torch.tensor([5, 1]))
    h, y = torch.tanh(torch.randn(3, 4)), torch.eye(3)[[0, 0, 2]]
    expected = pairwise_loss(h, codes[[1, 0]], y, labels[[1, 0]], 10 / 4, 10.0, 15.0)
    assert method.loss(h, y).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("name", PAIRWISE)
def test_every_pairwise_method_takes_the_bank_and_saves_it(name):
    method = banked(name, size=8)
    method.observe(torch.randn(3, 4), torch.eye(3)[[0, 1, 2]], torch.tensor([0, 3, 7]))
    h = torch.randn(2, 4, requires_grad=True)
    loss = method.loss(method(h), torch.eye(3)[[0, 1]])
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss) and torch.isfinite(h.grad).all()
    restored = banked(name, size=8)
    restored.load_state_dict(method.state_dict())
    assert torch.equal(restored.bank.codes, method.bank.codes) and restored.bank.written.sum() == 3


def test_dtsh_refuses_a_bank_too_large_for_its_triplets():
    with pytest.raises(ConfigError, match=r"method.pairs=bank: DTSH would compare each anchor with every .* bank of "
                                          r"5000 training codes .* -- pass method.pairs=all"):
        banked("dtsh", size=5000)
