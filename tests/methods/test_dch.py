"""Tests for hashnet.methods.dch: the Cauchy distance and DCH's loss against values computed by hand.

Huge inputs, float64 and the code layer (tanh): tests/methods/test_methods.py, for every method.
"""
import math

import torch

from hashnet.methods.dch import cauchy_distance, dch_loss

# K = 2; u1 = [[1, 0]]; u2 rows [1, 0], [0, 1], [-1, 0]; s = [1, 0, 0].
# cos = [1, 0, -1] -> min(cos, 0.99) = [0.99, 0, -1] -> d = (K / 2) * (1 - .) = [0.01, 1, 2].
U1 = torch.tensor([[1.0, 0.0]])
U2 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
Y1 = torch.tensor([[1, 0]])
Y2 = torch.tensor([[1, 0], [0, 1], [0, 1]])
# Quantization of these four rows: each |r| is a unit vector along an axis, cos(|r|, 1_2) = 1 / sqrt 2,
# d = 1 - 0.7071068 = 0.2928932, log1p(0.2928932 / 20) = 0.0145385 for every row: Q = 0.0145385.
Q = math.log1p((1 - 1 / math.sqrt(2)) / 20)


def test_distance_is_half_k_times_one_minus_clamped_cosine():
    assert torch.allclose(cauchy_distance(U1, U2), torch.tensor([[0.01, 1.0, 2.0]]))
    # Scale-free: 5 u1 and 0.1 u2 are the same distances. K = 4, opposite rows: cos -1, d = K = 4.
    assert torch.allclose(cauchy_distance(5 * U1, 0.1 * U2), torch.tensor([[0.01, 1.0, 2.0]]))
    assert cauchy_distance(torch.ones(1, 4), -torch.ones(1, 4)).item() == 4.0


def test_hand_computed_loss_weighs_similar_and_dissimilar_cells_equally():
    # similar cell: log1p(0.01 / 20) = 0.0004999; dissimilar: log1p(20 / 1) = log 21 = 3.0445224 and
    # log1p(20 / 2) = log 11 = 2.3978953, mean 2.7212089. L_pair = 0.0004999 + 2.7212089 = 2.7217087
    # (a plain mean over the 3 cells would be 1.8143059). Plus 0.1 * Q = 0.0014538: 2.7231626.
    pair = math.log1p(0.01 / 20) + (math.log(21) + math.log(11)) / 2
    assert math.isclose(pair + 0.1 * Q, 2.7231626, abs_tol=1e-6)
    assert math.isclose(dch_loss(U1, U2, Y1, Y2).item(), pair + 0.1 * Q, rel_tol=1e-6)
    # quantization alone, weight 1: Q.
    quantization = dch_loss(U1, U2, Y1, Y2, quantization_weight=1.0) - dch_loss(U1, U2, Y1, Y2, quantization_weight=0.0)
    assert math.isclose(quantization.item(), Q, rel_tol=1e-4)
    # gamma 2: log1p(0.01 / 2) = 0.0049875; log1p(2 / 1) = log 3, log1p(2 / 2) = log 2, mean 0.8958797: 0.9008673.
    expected = math.log1p(0.005) + (math.log(3) + math.log(2)) / 2
    assert math.isclose(expected, 0.9008673, abs_tol=1e-6)
    assert math.isclose(dch_loss(U1, U2, Y1, Y2, gamma=2.0, quantization_weight=0.0).item(), expected, rel_tol=1e-6)


def test_a_term_with_no_cell_is_zero():
    # Every cell similar: u1 = [[1, 0]], u2 rows [1, 0], [0, 1]: d = [0.01, 1];
    # log1p(0.0005) = 0.0004999, log1p(0.05) = 0.0487902; mean 0.0246450 and no dissimilar term.
    y = torch.tensor([[1, 0]])
    loss = dch_loss(U1, U2[:2], y, y.repeat(2, 1), quantization_weight=0.0)
    assert math.isclose(loss.item(), (math.log1p(0.0005) + math.log1p(0.05)) / 2, rel_tol=1e-6)


def test_multi_label_pairs_are_similar_when_they_share_a_label():
    # y1 = [1, 1, 0] shares label 1 with [0, 1, 0] (s = 1) and nothing with [0, 0, 1] (s = 0).
    # u2 rows [0, 1], [1, 0]: d = [1, 0.01]. similar log1p(1 / 20) = 0.0487902; dissimilar
    # log1p(20 / 0.01) = log 2001 = 7.6014023; total 7.6501925.
    y1 = torch.tensor([[1, 1, 0]])
    y2 = torch.tensor([[0, 1, 0], [0, 0, 1]])
    u2 = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    expected = math.log1p(1 / 20) + math.log(2001)
    assert math.isclose(expected, 7.6501925, abs_tol=1e-6)
    assert math.isclose(dch_loss(U1, u2, y1, y2, quantization_weight=0.0).item(), expected, rel_tol=1e-6)


def test_zero_codes_hit_the_norm_floor_with_finite_gradients():
    # u1 = [[0, 0]]: |u1| * |u2| = 0 -> floored at 1e-4, cos 0, d = K / 2 = 1: log1p(1 / 20) = 0.0487902.
    # Q: the zero row d(0, 1) = 1 -> log1p(0.05); the row [1, 0] -> 0.0145385; mean 0.0316643.
    u1 = torch.zeros(1, 2, requires_grad=True)
    u2 = torch.tensor([[1.0, 0.0]], requires_grad=True)
    y = torch.tensor([[1]])
    loss = dch_loss(u1, u2, y, y, quantization_weight=1.0)
    loss.backward()
    assert math.isclose(loss.item(), math.log1p(0.05) + (math.log1p(0.05) + Q) / 2, rel_tol=1e-5)
    assert torch.isfinite(u1.grad).all() and torch.isfinite(u2.grad).all()


def test_loss_is_scale_invariant():
    # Every term is a function of cosines: scaling the codes by 1000 changes nothing.
    assert math.isclose(dch_loss(1000 * U1, 1000 * U2, Y1, Y2).item(), dch_loss(U1, U2, Y1, Y2).item(), rel_tol=1e-6)
