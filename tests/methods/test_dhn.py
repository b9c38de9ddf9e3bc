"""Tests for hashnet.methods.dhn: the stable log cosh and DHN's loss against values computed by hand."""
import math

import pytest
import torch

from hashnet.methods.dhn import dhn_loss, log_cosh

LOG_COSH_1 = math.log(math.cosh(1.0))  # 0.4337808


def test_log_cosh_is_finite_with_gradient_tanh():
    x = torch.tensor([-1e4, -1.0, 0.0, 0.5, 1e4], dtype=torch.float64, requires_grad=True)
    out = log_cosh(x)
    out.sum().backward()
    # log cosh(1e4) = 1e4 - log 2 (cosh overflows there); small values match math.cosh.
    expected = [1e4 - math.log(2), LOG_COSH_1, 0.0, math.log(math.cosh(0.5)), 1e4 - math.log(2)]
    assert out.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert x.grad.tolist() == pytest.approx([math.tanh(v) for v in [-1e4, -1.0, 0.0, 0.5, 1e4]], abs=1e-12)


def test_hand_computed_loss():
    # u1 rows [1, 1], [-1, 1]; u2 rows [2, 0], [0, 0]; s = [[1, 1], [0, 1]].
    # theta = 0.5 * u1 @ u2.T = [[1, 0], [-1, 0]]; pair terms [[log(1+e) - 1, log 2], [log(1+1/e), log 2]]
    # = [[0.3132617, 0.6931472], [0.3132617, 0.6931472]], mean 0.5032044.
    # |u| - 1 over cat(u1, u2): [0, 0, 0, 0, 1, -1, -1, -1] -> log cosh: four zeros and four 0.4337808,
    # mean 0.2168904, times 0.1 = 0.0216890. Total 0.5248934.
    u1 = torch.tensor([[1.0, 1.0], [-1.0, 1.0]])
    u2 = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    y1 = torch.tensor([[1, 0], [0, 1]])
    y2 = torch.tensor([[1, 0], [1, 1]])
    likelihood = (2 * (math.log1p(math.e) - 1) + 2 * math.log(2)) / 4
    expected = likelihood + 0.1 * 4 * LOG_COSH_1 / 8
    assert math.isclose(expected, 0.5248934, abs_tol=1e-6)
    assert math.isclose(dhn_loss(u1, u2, y1, y2).item(), expected, rel_tol=1e-6)
    # scale and weight are taken as given: scale 1 doubles theta, weight 0 drops the quantization.
    # theta = [[2, 0], [-2, 0]]: [[log(1+e^2) - 2, log 2], [log(1+e^-2), log 2]] -> mean 0.4122848.
    doubled = (2 * (math.log1p(math.exp(2)) - 2) + 2 * math.log(2)) / 4
    assert math.isclose(dhn_loss(u1, u2, y1, y2, scale=1.0, quantization_weight=0.0).item(), doubled, rel_tol=1e-6)


def test_quantization_is_a_mean_over_the_entries_of_both_sets():
    # u1 = [[2, 2]] (|u| - 1 = 1 twice), u2 = three rows of [1, 1] (0 six times): the mean over the 8 entries
    # of cat(u1, u2) is 2 * 0.4337808 / 8 = 0.1084452; a mean of the two sets' means would be 0.2168904.
    # The difference of the losses with weights 1 and 0 is the quantization term alone.
    u1 = torch.tensor([[2.0, 2.0]])
    u2 = torch.ones(3, 2)
    y1, y2 = torch.tensor([[1, 0]]), torch.tensor([[1, 0], [0, 1], [0, 1]])
    quantization = dhn_loss(u1, u2, y1, y2, quantization_weight=1.0) - dhn_loss(u1, u2, y1, y2, quantization_weight=0.0)
    assert math.isclose(quantization.item(), 2 * LOG_COSH_1 / 8, rel_tol=1e-6)
