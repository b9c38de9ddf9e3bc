"""Tests for hashnet.methods.dsdh: the W- and B-steps and the loss against straightforward float64 loops."""
import math

import numpy as np
import pytest
import torch

from hashnet.methods.dsdh import DSDH, dsdh_codes, dsdh_loss


def draws(rows: int = 12, bits: int = 6, classes: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(rows, bits, generator=g, dtype=torch.float64)
    y = torch.eye(classes, dtype=torch.float64)[torch.randint(0, classes, (rows,), generator=g)]
    y[::3, 0] = 1  # every third row has a second label
    return u, y


def sgn(x: float) -> float:
    return 1.0 if x >= 0 else -1.0


def reference_codes(u: np.ndarray, y: np.ndarray, eta: float, nu: float, passes: int):
    b0 = np.where(u >= 0, 1.0, -1.0)
    w = np.linalg.inv(b0.T @ b0 + nu * np.eye(u.shape[1])) @ b0.T @ y
    q = eta * u + y @ w.T
    b = np.zeros_like(u)
    for _ in range(passes):
        changed = False
        for k in range(u.shape[1]):
            for i in range(len(u)):
                value = sgn(q[i, k] - sum(b[i, l] * (w[l] @ w[k]) for l in range(u.shape[1]) if l != k))
                changed |= value != b[i, k]
                b[i, k] = value
        if not changed:
            break
    return b, w


@pytest.mark.parametrize("eta", [0.1, 1.0, 55.0])
def test_codes_equal_the_loops_and_each_bit_is_optimal(eta):
    u, y = draws()
    b, w = dsdh_codes(u, y, eta=eta, nu=0.1, passes=10)
    b_ref, w_ref = reference_codes(u.numpy(), y.numpy(), eta, 0.1, 10)
    np.testing.assert_allclose(w.numpy(), w_ref, rtol=1e-10, atol=1e-12)
    assert np.array_equal(b.numpy(), b_ref)
    if eta == 0.1:
        assert (b != torch.where(u >= 0, 1.0, -1.0)).any()  # the labels flip some bits at a small eta
    # At a fixed point of the DCC no single bit flip lowers |y_i - W^T b_i|^2 + eta |b_i - u_i|^2.
    objective = lambda codes: ((y - codes @ w).pow(2).sum(1) + eta * (codes - u).pow(2).sum(1))
    for k in range(u.shape[1]):
        flipped = b.clone()
        flipped[:, k] *= -1
        assert (objective(flipped) >= objective(b) - 1e-9).all()


def test_a_given_w_replaces_the_regression():
    u, y = draws()
    w = torch.randn(6, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    b, used = dsdh_codes(u, y, eta=1.0, w=w)
    assert torch.equal(used, w)
    assert torch.equal(b, dsdh_codes(u, y, eta=1.0, w=w)[0])
    assert not torch.equal(b, dsdh_codes(u, y, eta=1.0)[0])


def test_loss_equals_the_formula():
    u, y = draws(rows=10)
    b = torch.where(torch.randn(10, 6, generator=torch.Generator().manual_seed(5)) >= 0, 1.0, -1.0).double()
    u1, u2, y1, y2, b1, b2 = u[:4], u[4:], y[:4], y[4:], b[:4], b[4:]
    pairs = [math.log1p(math.exp(0.5 * float(u1[i] @ u2[j]))) - float(y1[i] @ y2[j] > 0) * 0.5 * float(u1[i] @ u2[j])
             for i in range(4) for j in range(6)]
    quantization = float(((u - b) ** 2).mean())
    expected = sum(pairs) / len(pairs) + 0.3 * quantization
    assert math.isclose(dsdh_loss(u1, u2, y1, y2, b1, b2, quantization_weight=0.3).item(), expected, rel_tol=1e-12)
    against_bank = sum(pairs) / len(pairs) + 0.3 * float(((u1 - b1) ** 2).mean())
    assert math.isclose(dsdh_loss(u1, u2, y1, y2, b1, None, quantization_weight=0.3).item(), against_bank,
                        rel_tol=1e-12)


def test_auto_quantization_weight_is_eta_k_over_2n():
    method = DSDH(48, 10, False, pairs="halves", scale=0.5, eta=55.0, nu=0.1, dcc_passes=10,
                  quantization_weight="auto", train_size=5000)
    assert method.settings["quantization_weight"] == pytest.approx(0.264)
    resolved = DSDH.resolve({"quantization_weight": "auto", "pairs": "halves"}, lambda: np.zeros((700, 3)))
    assert resolved["train_size"] == 700
