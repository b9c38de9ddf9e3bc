"""Tests for hashnet.methods.adsh: r, the soft similarity, the loss and the V-step against float64 loops."""
import math

import numpy as np
import pytest
import torch

from hashnet.methods.adsh import ADSH, adsh_loss, adsh_ratio, adsh_soft_similarity, adsh_update_codes


def labels(rows: int, classes: int = 4, seed: int = 0, multi: bool = True) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    y = torch.eye(classes, dtype=torch.float64)[torch.randint(0, classes, (rows,), generator=g)]
    if multi:
        y[::3, 1] = 1
    return y


def soft(y1, y2, r):
    return np.array([[1.0 if y1[i] @ y2[j] > 0 else -r for j in range(len(y2))] for i in range(len(y1))])


def test_ratio_over_all_ordered_pairs():
    y = torch.eye(10)[torch.arange(100) % 10]  # balanced single-label: 1,000 similar of 10,000 pairs
    assert adsh_ratio(y) == pytest.approx(1 / 9, rel=1e-12)
    multi = labels(9).numpy()
    similar = sum(float(a @ b > 0) for a in multi for b in multi)
    assert adsh_ratio(multi) == pytest.approx(similar / (81 - similar), rel=1e-12)
    assert ADSH.resolve({"soft_constraint": "auto"}, lambda: multi) == {
        "soft_constraint": pytest.approx(similar / (81 - similar)), "bank_size": 9}


def test_loss_equals_the_formula():
    g = torch.Generator().manual_seed(1)
    u, v, own = (torch.randn(n, 5, generator=g, dtype=torch.float64) for n in (3, 7, 3))
    y, y_db = labels(3, seed=2), labels(7, seed=3)
    s = soft(y.numpy(), y_db.numpy(), 0.25)
    fit = sum((float(u[i] @ v[j]) - 5 * s[i, j]) ** 2 for i in range(3) for j in range(7))
    anchor = float(((own - u) ** 2).sum())
    expected = (fit + 200 * anchor) / (3 * 7)
    assert math.isclose(adsh_loss(u, y, v, y_db, own, r=0.25).item(), expected, rel_tol=1e-12)
    assert torch.equal(adsh_soft_similarity(y, y_db, 0.25), torch.tensor(s, dtype=torch.float32))


def objective(v, u, omega, s_tilde, gamma):
    return float(((u @ v.T - u.shape[1] * s_tilde) ** 2).sum() + gamma * ((v[omega] - u) ** 2).sum())


@pytest.mark.parametrize("gamma", [0.5, 200.0])
def test_v_step_equals_the_loops_and_its_last_column_is_optimal(gamma):
    g = torch.Generator().manual_seed(4)
    n, m, bits = 9, 6, 5
    u = torch.tanh(torch.randn(m, bits, generator=g, dtype=torch.float64))
    omega = torch.tensor([7, 0, 3, 8, 2, 5])
    y = labels(n, seed=5)
    s_tilde = adsh_soft_similarity(y[omega], y, 0.2).double()
    v0 = torch.where(torch.randn(n, bits, generator=g) >= 0, 1.0, -1.0).double()
    before = v0.clone()
    v = adsh_update_codes(v0, u, omega, s_tilde, gamma)
    ref, un, st = v0.numpy().copy(), u.numpy(), s_tilde.numpy()
    ubar = np.zeros((n, bits))
    ubar[omega.numpy()] = un
    for k in range(bits):
        rest = [l for l in range(bits) if l != k]
        for j in range(n):
            value = bits * (st[:, j] @ un[:, k]) + gamma * ubar[j, k] - ref[j, rest] @ (un[:, rest].T @ un[:, k])
            ref[j, k] = 1.0 if value >= 0 else -1.0
    assert np.array_equal(v.numpy(), ref) and torch.equal(v0, before)  # a new tensor; v0 as it was
    best = objective(v, u, omega, s_tilde, gamma)
    for j in range(n):  # the last column, updated last, minimises J entry by entry
        flipped = v.clone()
        flipped[j, -1] *= -1
        assert objective(flipped, u, omega, s_tilde, gamma) >= best - 1e-9
