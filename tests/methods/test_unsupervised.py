"""Tests for the deep unsupervised methods (hashnet.methods.pair_cosine, bihalf, greedyhash_unsup, cibhash) against
straightforward float64 implementations of specs/methods-unsupervised.md sections 5-7: values and gradients to 1e-10,
the bi-half layer's balance and tie rule, finite losses at |u| = 1e4 in float32, and checkpoints blind to the training
labels (these three and a fitted one, ITQ)."""
import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from method_inputs import huge_codes
from omegaconf import DictConfig, OmegaConf

from hashnet.methods.bihalf import bihalf, bihalf_forward, bihalf_loss
from hashnet.methods.cibhash import bernoulli_kl, cibhash_codes, cibhash_loss, nt_xent
from hashnet.methods.greedyhash_unsup import greedyhash_unsup_loss
from hashnet.methods.pair_cosine import pair_cos_mse
from hashnet.tasks.setup import build_datamodule, build_model, build_trainer, resolve_method
from hashnet.training.fitting import centre_reference, fit_method

from conftest import compose_config
from small_data import digits_rows, small_lists

pytestmark = [pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")]  # steps outside a Trainer
G = torch.Generator().manual_seed(0)
U = torch.randn(7, 6, generator=G, dtype=torch.float64)  # odd: the last row is in no pair
F = torch.randn(7, 20, generator=G, dtype=torch.float64)
CALLBACKS = ("checkpoint", "best", "progress_bar", "model_summary", "lr_monitor")  # a run's, none needed here


def numpy_pair_cos_mse(b: np.ndarray, f: np.ndarray) -> float:
    m = len(b) // 2
    cos = [lambda x, i=i: x[i] @ x[m + i] / (max(np.linalg.norm(x[i]), 1e-8) * max(np.linalg.norm(x[m + i]), 1e-8))
           for i in range(m)]
    return float(np.mean([(c(b) - c(f)) ** 2 for c in cos]))


def straight_through(x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return x + (value - x).detach()


def test_bihalf_codes_half_of_each_column_plus_one_and_ties_keep_row_order():
    b = bihalf_forward(U)
    assert ((b == 1) | (b == -1)).all() and (b.sum(dim=0) == -1).all()  # 3 of 7 rows +1 in every column
    for k in range(6):  # the 3 largest of each column
        assert set(torch.nonzero(b[:, k] == 1).flatten().tolist()) == set(U[:, k].argsort(descending=True)[:3].tolist())
    ties = torch.tensor([[2.0], [1.0], [1.0], [1.0], [0.0]])
    assert bihalf_forward(ties).flatten().tolist() == [1, 1, -1, -1, -1]  # of the equal rows, the first ranks first


def test_bihalf_loss_and_gradient_match_the_straight_through_surrogate():
    gamma = 6.0
    u = U.clone().requires_grad_()
    f = F.clone().requires_grad_()
    loss = bihalf_loss(bihalf(u, gamma), f)
    loss.backward()
    b = bihalf_forward(U)
    assert math.isclose(loss.item(), numpy_pair_cos_mse(b.numpy(), F.numpy()), rel_tol=0, abs_tol=1e-10)
    ref = U.clone().requires_grad_()
    surrogate = pair_cos_mse(straight_through(ref, b), F) + gamma / 2 * ((ref - b) ** 2).mean()
    surrogate.backward()
    torch.testing.assert_close(u.grad, ref.grad, rtol=0, atol=1e-10)
    assert f.grad is None  # the reference carries no gradient
    assert (b - bihalf(U, gamma)).abs().max() == 0  # exactly +-1


def test_greedyhash_unsup_loss_and_gradient():
    h = U.clone().requires_grad_()
    loss = greedyhash_unsup_loss(h, F, alpha=0.1)
    loss.backward()
    cubic = float(np.mean(np.abs(np.abs(U.numpy()) - 1) ** 3))
    expected = numpy_pair_cos_mse(np.where(U.numpy() >= 0, 1.0, -1.0), F.numpy()) + 0.1 * cubic
    assert math.isclose(loss.item(), expected, rel_tol=0, abs_tol=1e-10)
    ref = U.clone().requires_grad_()
    (pair_cos_mse(straight_through(ref, torch.where(U >= 0, 1.0, -1.0).double()), F)
     + 0.1 * (ref.abs() - 1).abs().pow(3).mean()).backward()
    torch.testing.assert_close(h.grad, ref.grad, rtol=0, atol=1e-10)


def authors_nt_xent(z_i: np.ndarray, z_j: np.ndarray, temperature: float) -> float:
    """The authors' NtXentLoss, as numpy: positives first, the mask's negatives after, CE(reduction=sum) / N."""
    batch = len(z_i)
    n = 2 * batch
    z = np.concatenate([z_i, z_j])
    sim = (z @ z.T) / np.outer(np.linalg.norm(z, axis=1), np.linalg.norm(z, axis=1)) / temperature
    mask = np.ones((n, n), dtype=bool)
    np.fill_diagonal(mask, False)
    for i in range(batch):
        mask[i, batch + i] = mask[batch + i, i] = False
    positives = np.concatenate([np.diag(sim, batch), np.diag(sim, -batch)]).reshape(n, 1)
    logits = np.concatenate([positives, sim[mask].reshape(n, -1)], axis=1)
    return float(np.sum(np.log(np.exp(logits).sum(axis=1)) - logits[:, 0]) / n)


def test_nt_xent_is_the_authors_loss():
    z1, z2 = torch.sign(U[:6]), torch.sign(F[:6, :6])
    assert math.isclose(nt_xent(z1, z2, 0.3).item(), authors_nt_xent(z1.numpy(), z2.numpy(), 0.3), abs_tol=1e-10)


def numpy_kl(p: np.ndarray, q: np.ndarray) -> float:
    terms = p * (np.log(p + 1e-8) - np.log(q + 1e-8)) + (1 - p) * (np.log(1 - p + 1e-8) - np.log(1 - q + 1e-8))
    return float(terms.sum(axis=1).mean())


@pytest.mark.parametrize("stochastic", [False, True])
def test_cibhash_loss_and_gradient(stochastic):
    l1, l2 = U[:6].clone().requires_grad_(), F[:6, :6].clone().requires_grad_()
    u1, u2 = (torch.rand(6, 6, generator=G, dtype=torch.float64) for _ in range(2)) if stochastic else (None, None)
    loss = cibhash_loss(l1, l2, 0.3, 0.001, u1, u2)
    loss.backward()
    p1, p2 = torch.sigmoid(U[:6]), torch.sigmoid(F[:6, :6])
    t1, t2 = (0.5, 0.5) if u1 is None else (u1, u2)
    z1, z2 = torch.where(p1 - t1 >= 0, 1.0, -1.0).double(), torch.where(p2 - t2 >= 0, 1.0, -1.0).double()
    expected = authors_nt_xent(z1.numpy(), z2.numpy(), 0.3) + 0.001 * (
        numpy_kl(p1.numpy(), p2.numpy()) + numpy_kl(p2.numpy(), p1.numpy())) / 2
    assert math.isclose(loss.item(), expected, rel_tol=0, abs_tol=1e-10)
    r1, r2 = U[:6].clone().requires_grad_(), F[:6, :6].clone().requires_grad_()
    q1, q2 = torch.sigmoid(r1), torch.sigmoid(r2)  # straight through to p: dz/dl = p (1 - p); the KLs' q detached
    (nt_xent(straight_through(q1, z1), straight_through(q2, z2), 0.3)
     + 0.001 * (bernoulli_kl(q1, q2.detach()) + bernoulli_kl(q2, q1.detach())) / 2).backward()
    torch.testing.assert_close(l1.grad, r1.grad, rtol=0, atol=1e-10)
    torch.testing.assert_close(l2.grad, r2.grad, rtol=0, atol=1e-10)
    assert torch.equal(cibhash_codes(U[:6], u1), z1)


@pytest.mark.parametrize("loss", [lambda u: bihalf_loss(bihalf(u), torch.randn(8, 30)),
                                  lambda u: greedyhash_unsup_loss(u, torch.randn(8, 30)),
                                  lambda u: cibhash_loss(u[:4], u[4:])], ids=["bihalf", "greedyhash_unsup", "cibhash"])
def test_finite_loss_and_gradients_at_1e4_in_float32(loss):
    u = huge_codes()
    value = loss(u)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value) and torch.isfinite(u.grad).all()


@pytest.fixture(scope="module")
def label_lists(digits_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two digits list folders (small_lists: 40 training images) that differ only in the training labels: the second
    gives each training image the next one's label."""
    rows = digits_rows(digits_root, "train.txt", 40)
    moved = [(path, label) for (path, _), (_, label) in zip(rows, rows[1:] + rows[:1])]
    assert sum(a != b for a, b in zip(rows, moved)) >= 30  # most images change class
    root = tmp_path_factory.mktemp("labels")
    return small_lists(root / "given", digits_root), small_lists(root / "moved", digits_root, train=moved)


def trained_tensors(cfg: DictConfig) -> dict[str, torch.Tensor]:
    """The tensors a run of cfg checkpoints, by name: the model's state dict and (a trained method) the optimiser's
    state, after train()'s steps less evaluation: the method's data-dependent settings, its fit on the training split
    (fitted) or the reference's pixel mean and max_steps steps."""
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule = build_datamodule(cfg)
    resolve_method(cfg, datamodule)
    model = build_model(cfg)
    if model.method.fitted:
        fit_method(model, datamodule.split_dataloader(model.method.fit_on), cfg.seed)
        return model.state_dict()
    centre_reference(model, datamodule.split_dataloader("train"))
    trainer = build_trainer(cfg)
    trainer.fit(model, datamodule=datamodule)
    optimiser = trainer.optimizers[0].state_dict()["state"]
    return {**model.state_dict(), **{f"optimiser.{i}.{key}": value for i, state in optimiser.items()
                                     for key, value in state.items()}}


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name", ["bihalf", "greedyhash_unsup", "cibhash", "itq"])
def test_training_with_other_labels_gives_the_same_checkpoint(name, label_lists, digits_root, tmp_path):
    # 2 steps of 8 images (a fitted method: its fit), on the given training labels and on the moved ones: every tensor
    # of the checkpoint equal bit for bit, the optimiser's moments included (the labels never reach the training).
    # SqueezeNet 1.1 (1.2 M weights) trains 3x faster than ResNet-18; which net computes the codes is not the point.
    cfg = compose_config("train", [f"method={name}", "net=squeezenet1_1", "hash_bit=16", "max_steps=2",
                                   "dataset.batch_size=8",
                                   "trainer.accelerator=cpu", "logger=csv", "+trainer.limit_val_batches=0",
                                   "++trainer.enable_progress_bar=false", *(f"~callbacks.{c}" for c in CALLBACKS),
                                   f"paths.data_dir={digits_root.parent}"], tmp_path)
    given, moved = (trained_tensors(OmegaConf.merge(cfg, {"dataset": {"root": str(root)}})) for root in label_lists)
    assert given.keys() == moved.keys() and len(given) >= 2  # ITQ on pixels: its projection alone
    assert [key for key in given if not torch.equal(given[key], moved[key])] == []
