"""Tests for the deep unsupervised methods (hashnet.methods.pair_cosine, bihalf, greedyhash_unsup, cibhash) against
straightforward float64 implementations of specs/methods-unsupervised.md sections 5-7: values and gradients to 1e-10,
the bi-half layer's balance and tie rule, finite losses at |u| = 1e4 in float32, and losses blind to the labels."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from method_inputs import huge_codes

from hashnet.methods.bihalf import bihalf, bihalf_forward, bihalf_loss
from hashnet.methods.cibhash import bernoulli_kl, cibhash_codes, cibhash_loss, nt_xent
from hashnet.methods.greedyhash_unsup import greedyhash_unsup_loss
from hashnet.methods.pair_cosine import pair_cos_mse
from hashnet.tasks.setup import build_model

from conftest import compose_config

pytestmark = [pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")]  # steps outside a Trainer
G = torch.Generator().manual_seed(0)
U = torch.randn(7, 6, generator=G, dtype=torch.float64)  # odd: the last row is in no pair
F = torch.randn(7, 20, generator=G, dtype=torch.float64)


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


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name", ["bihalf", "greedyhash_unsup", "cibhash"])
def test_the_labels_never_reach_the_loss(name, tmp_path: Path):
    # A training step with the batch's labels and with other labels: the same loss and gradients, bit for bit.
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    batch = torch.stack([images, images.flip(-1)], dim=1) if name == "cibhash" else images  # its two views
    model = build_model(compose_config("train", [f"method={name}", "hash_bit=16"], tmp_path)).train()
    seen = []
    for labels in (torch.eye(10)[[0, 1, 2, 3]], torch.eye(10)[[9, 9, 1, 0]]):
        model.zero_grad()
        loss = model.training_step((batch, labels, torch.arange(4)), 0)
        loss.backward()
        seen.append([loss.detach(), *(p.grad.clone() for p in model.parameters() if p.grad is not None)])
    assert len(seen[0]) > 2 and all(torch.equal(a, b) for a, b in zip(*seen))
