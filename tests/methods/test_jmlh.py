"""Tests for hashnet.methods.jmlh: the stochastic neurons, the KL and the loss against float64 formulas."""
import math

import torch

from hashnet.methods.jmlh import JMLH, jmlh_codes, jmlh_kl, jmlh_loss


def test_codes_threshold_sigmoid_at_eps_with_the_authors_gradient():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5, 7, generator=g, dtype=torch.float64).requires_grad_()
    eps = torch.rand(5, 7, generator=g, dtype=torch.float64)
    b = jmlh_codes(z, eps)
    p = torch.sigmoid(z.detach())
    assert torch.equal(b, (p >= eps).double())
    upstream = torch.randn(5, 7, generator=g, dtype=torch.float64)
    b.backward(upstream)
    torch.testing.assert_close(z.grad, p * (1 - p) * upstream, rtol=1e-14, atol=0)
    assert torch.equal(jmlh_codes(z, 0.5), (z >= 0).double())  # eps = 1/2: the bits of sign(z)


def test_kl_and_loss_equal_the_formulas():
    g = torch.Generator().manual_seed(1)
    z = 3 * torch.randn(4, 6, generator=g, dtype=torch.float64)
    logits = torch.randn(4, 3, generator=g, dtype=torch.float64)
    y = torch.tensor([[1.0, 0, 0], [0, 1, 1], [0, 0, 0], [1, 1, 1]], dtype=torch.float64)
    kl = 0.0
    for value in z.flatten().tolist():
        p = 1 / (1 + math.exp(-value))
        kl += p * math.log(p) + (1 - p) * math.log(1 - p) + math.log(2)
    assert math.isclose(jmlh_kl(z).item(), kl / 4, rel_tol=1e-12)
    ce = 0.0
    for row, labels in zip(logits.tolist(), y.tolist()):
        log_z = math.log(sum(math.exp(x) for x in row))
        ce -= sum(t / max(sum(labels), 1) * (x - log_z) for t, x in zip(labels, row))
    assert math.isclose(jmlh_loss(z, logits, y, kl_weight=0.3).item(), ce / 4 + 0.3 * kl / 4, rel_tol=1e-12)


def test_kl_is_finite_with_finite_gradients_at_1e4():
    z = torch.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    kl = jmlh_kl(z)
    kl.backward()
    assert math.isclose(kl.item(), math.log(2) * 2, rel_tol=1e-6) and torch.isfinite(z.grad).all()


def test_stochastic_false_thresholds_at_one_half():
    method = JMLH(6, 3, False, kl_weight=0.1, stochastic=False)
    z, y = torch.randn(4, 6, generator=torch.Generator().manual_seed(2)), torch.eye(3)[[0, 1, 2, 0]]
    expected = jmlh_loss(z, method.classifier((z >= 0).float()), y, 0.1)
    assert torch.equal(method.loss(z, y), expected)
