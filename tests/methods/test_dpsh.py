"""Tests for hashnet.methods.dpsh: DPSH's loss against values computed by hand."""
import math

import torch

from hashnet.methods.dpsh import dpsh_loss


def test_hand_computed_loss_with_sign_of_zero_plus_one():
    # u1 = [[1, 0]]; u2 rows [1, 1], [-1, 2]; s = [1, 0]; theta = 0.5 * [1, -1] = [0.5, -0.5].
    # pair terms: softplus(0.5) - 0.5 = log(1 + e^0.5) - 0.5 = 0.4740770 and softplus(-0.5) = 0.4740770.
    # u - sign(u) over cat(u1, u2) = [[0, 0 - 1], [0, 0], [0, 2 - 1]] (sign(0) = +1): squares sum to 2, mean
    # over the 6 entries 1/3 (torch.sign(0) = 0 would give 1/6; a mean of the two sets' means 0.375).
    # Total 0.4740770 + 0.1 / 3 = 0.5074103.
    u1 = torch.tensor([[1.0, 0.0]])
    u2 = torch.tensor([[1.0, 1.0], [-1.0, 2.0]])
    y1 = torch.tensor([[1, 0]])
    y2 = torch.tensor([[1, 0], [0, 1]])
    expected = math.log1p(math.exp(0.5)) - 0.5 + 0.1 / 3
    assert math.isclose(expected, 0.5074103, abs_tol=1e-6)
    assert math.isclose(dpsh_loss(u1, u2, y1, y2).item(), expected, rel_tol=1e-6)
    # The quantization term alone, weight 1: 1/3.
    with_term = dpsh_loss(u1, u2, y1, y2, quantization_weight=1.0)
    quantization = with_term - dpsh_loss(u1, u2, y1, y2, quantization_weight=0.0)
    assert math.isclose(quantization.item(), 1 / 3, rel_tol=1e-6)
    # scale 1: theta = [1, -1] -> both pairs log(1 + e^-1) = 0.3132617.
    assert math.isclose(dpsh_loss(u1, u2, y1, y2, scale=1.0, quantization_weight=0.0).item(),
                        math.log1p(math.exp(-1)), rel_tol=1e-6)
