"""Tests for hashnet.methods.dsh: DSH's loss against values computed by hand."""
import math

import torch

from hashnet.methods.dsh import dsh_loss

# u1 = [[1, 1]]; u2 rows [1, -1], [0, 1], [-1, -1]; s = [1, 0, 0].
# D = ||u1 - u2_j||^2 = [0 + 4, 1 + 0, 4 + 4] = [4, 1, 8].
U1 = torch.tensor([[1.0, 1.0]])
U2 = torch.tensor([[1.0, -1.0], [0.0, 1.0], [-1.0, -1.0]])
Y1 = torch.tensor([[1, 0]])
Y2 = torch.tensor([[1, 0], [0, 1], [0, 1]])


def test_hand_computed_loss_with_margin_2k():
    # m = 2K = 4. Pair terms: similar 0.5 * 4 = 2; dissimilar at D = 1: 0.5 * max(4 - 1, 0) = 1.5;
    # dissimilar at D = 8: 0.5 * max(4 - 8, 0) = 0. Mean over 3 pairs: 3.5 / 3 = 1.1666667.
    # | |u| - 1 | over cat(u1, u2): [0, 0, 0, 0, 1, 0, 0, 0] -> mean over the 8 entries 0.125 (a mean of the two
    # sets' means would be 1/12), times 0.1 = 0.0125. Total 1.1791667.
    expected = 3.5 / 3 + 0.1 * 0.125
    assert math.isclose(expected, 1.1791667, abs_tol=1e-6)
    assert math.isclose(dsh_loss(U1, U2, Y1, Y2).item(), expected, rel_tol=1e-6)


def test_explicit_margin_and_weight():
    # m = 2: the dissimilar pair at D = 1 costs 0.5 * (2 - 1) = 0.5; total (2 + 0.5 + 0) / 3 = 0.8333333.
    assert math.isclose(dsh_loss(U1, U2, Y1, Y2, margin=2.0, regularization_weight=0.0).item(), 2.5 / 3, rel_tol=1e-6)
    # The regulariser alone, weight 1: 0.125.
    with_term = dsh_loss(U1, U2, Y1, Y2, regularization_weight=1.0)
    regularizer = with_term - dsh_loss(U1, U2, Y1, Y2, regularization_weight=0.0)
    assert math.isclose(regularizer.item(), 0.125, rel_tol=1e-6)
