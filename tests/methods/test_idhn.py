"""Tests for hashnet.methods.idhn: the soft similarity and IDHN's loss against values computed by hand.

Huge inputs, float64 and the code layer (softsign): tests/methods/test_methods.py, for every method.
"""
import math

import torch

from hashnet.methods.common import pairwise_likelihood
from hashnet.methods.idhn import idhn_loss, soft_similarity

# y1 = [1, 1, 0]; y2 rows [1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0].
Y1 = torch.tensor([[1, 1, 0]])
Y2 = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0]])


def test_soft_similarity_is_the_cosine_of_the_labels_and_zero_without_labels():
    # <y1, y2_j> = [1, 2, 0, 0]; |y1| |y2_j| = [sqrt 2, 2, sqrt 2, 0] -> [1/sqrt 2, 1, 0, 0 (no label)].
    s = soft_similarity(Y1, Y2)
    assert s.dtype == torch.float32 and torch.allclose(s, torch.tensor([[1 / math.sqrt(2), 1.0, 0.0, 0.0]]))
    s64 = soft_similarity(Y1.double(), Y2.double())
    assert s64.dtype == torch.float64 and math.isclose(s64[0, 0].item(), 1 / math.sqrt(2), rel_tol=1e-15)
    assert soft_similarity(Y2, Y2).diagonal().tolist() == [1.0, 1.0, 1.0, 0.0]


def test_hand_computed_loss_with_hard_and_soft_pairs():
    # K = 2; h1 = [1, 0.5]; h2 rows [1, 1], [0.5, 0], [-1, 0], [0, 0]; ip = [1.5, 0.5, -1, 0];
    # theta = (5 / 2) * ip = [3.75, 1.25, -2.5, 0]; s = [0.7071068, 1, 0, 0]: pair 0 soft, pairs 1-3 hard.
    # pair 0: 0.1 * 2 * ((1.5 + 2) / 4 - 0.7071068)^2 = 0.2 * 0.1678932^2 = 0.0056376.
    # pair 1 (s = 1): softplus(1.25) - 1.25 = log1p(e^-1.25) = 0.2519291.
    # pair 2 (s = 0): softplus(-2.5) = 0.0788897.  pair 3 (s = 0, no label): softplus(0) = log 2 = 0.6931472.
    # mean over the 4 pairs 0.2574009.
    # | |h| - 1 | over cat(h1, h2) = [0, 0.5, 0, 0, 0.5, 1, 0, 1, 1, 1]: mean 0.5, times 0.1 = 0.05. Total 0.3074009.
    h1 = torch.tensor([[1.0, 0.5]])
    h2 = torch.tensor([[1.0, 1.0], [0.5, 0.0], [-1.0, 0.0], [0.0, 0.0]])
    soft = 0.2 * (0.875 - 1 / math.sqrt(2)) ** 2
    pairs = (soft + math.log1p(math.exp(-1.25)) + math.log1p(math.exp(-2.5)) + math.log(2)) / 4
    assert math.isclose(pairs + 0.05, 0.3074009, abs_tol=1e-6)
    assert math.isclose(idhn_loss(h1, h2, Y1, Y2).item(), pairs + 0.05, rel_tol=1e-6)
    # the regulariser alone, weight 1: 0.5.
    regularizer = idhn_loss(h1, h2, Y1, Y2, regularization_weight=1.0) - idhn_loss(h1, h2, Y1, Y2)
    assert math.isclose(regularizer.item(), 0.5 - 0.05, rel_tol=1e-5)
    # beta 2, gamma 1: theta = ip = [1.5, 0.5, -1, 0]; soft pair 1 * 2 * 0.1678932^2 = 0.0563763;
    # hard: log1p(e^-0.5) = 0.4740770, softplus(-1) = 0.3132617, log 2; mean 0.3842155.
    expected = (10 * soft + math.log1p(math.exp(-0.5)) + math.log1p(math.exp(-1)) + math.log(2)) / 4
    assert math.isclose(expected, 0.3842155, abs_tol=1e-6)
    loss = idhn_loss(h1, h2, Y1, Y2, beta=2.0, gamma=1.0, regularization_weight=0.0)
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)


def test_soft_term_is_gamma_over_4k_times_the_square():
    # gamma K ((ip + K) / (2K) - s)^2 = gamma / (4K) (ip + K - 2 K s)^2. K = 4, h1 = [1, 1, 1, 0], h2 = [1, -1, 1, 1]:
    # ip = 1; y1 = [1, 1], y2 = [0, 1]: s = 1/sqrt 2, soft. 0.1 / 16 * (1 + 4 - 8 / sqrt 2)^2 = 0.00625 * 0.6568542^2
    # = 0.0026966; gamma K ((ip + K) / (2K) - s)^2 = 0.4 * (5/8 - 0.7071068)^2 the same.
    h1, h2 = torch.tensor([[1.0, 1.0, 1.0, 0.0]]), torch.tensor([[1.0, -1.0, 1.0, 1.0]])
    expected = 0.1 / 16 * (5 - 8 / math.sqrt(2)) ** 2
    assert math.isclose(expected, 0.1 * 4 * (5 / 8 - 1 / math.sqrt(2)) ** 2, rel_tol=1e-12)
    assert math.isclose(expected, 0.0026966, abs_tol=1e-7)
    loss = idhn_loss(h1, h2, torch.tensor([[1, 1]]), torch.tensor([[0, 1]]), regularization_weight=0.0)
    assert math.isclose(loss.item(), expected, rel_tol=1e-5)


def test_one_label_per_image_is_the_pairwise_likelihood_with_beta_over_k():
    # Every pair hard (s = 0 or 1): the loss is DHN/DPSH's likelihood with scale beta / K.
    g = torch.Generator().manual_seed(0)
    h = torch.randn(6, 8, generator=g, dtype=torch.float64)
    y = torch.eye(3)[torch.randint(0, 3, (6,), generator=g)]
    expected = pairwise_likelihood(h, h, y, y, 5.0 / 8)
    assert torch.allclose(idhn_loss(h, h, y, y, regularization_weight=0.0), expected, rtol=1e-12)
