"""Tests for hashnet.methods.common (similarity, the pairwise likelihood) and the sign convention."""
import math

import pytest
import torch

from hashnet.methods.common import likelihood_terms, pairwise_likelihood, similarity
from hashnet.utils.signs import sign


def test_similarity_is_share_at_least_one_label():
    y1 = torch.tensor([[1, 0, 1], [0, 0, 0]])
    y2 = torch.tensor([[0, 0, 1], [0, 1, 0], [1, 1, 1]])
    assert similarity(y1, y2).tolist() == [[1, 0, 1], [0, 0, 0]]


def test_sign_of_zero_is_plus_one_in_the_input_dtype():
    out = sign(torch.tensor([-3.0, -0.0, 0.0, 1e-30, 7.0], dtype=torch.float64))
    assert out.dtype == torch.float64 and out.tolist() == [-1, 1, 1, 1, 1]


def test_likelihood_by_hand_is_a_mean_over_pairs():
    # u1 = [1, 1]; u2 rows [2, 0], [1, -1], [-2, 0]; scale 0.5 -> theta = [1, 0, -1]; s = [1, 0, 0].
    # pair terms: softplus(1) - 1 = log(1 + e) - 1 = 0.3132617, softplus(0) = log 2 = 0.6931472,
    # softplus(-1) = log(1 + 1/e) = 0.3132617; mean over the 3 pairs = 1.3196706 / 3 = 0.4398902.
    u1 = torch.tensor([[1.0, 1.0]])
    u2 = torch.tensor([[2.0, 0.0], [1.0, -1.0], [-2.0, 0.0]])
    y1 = torch.tensor([[1, 0]])
    y2 = torch.tensor([[1, 1], [0, 1], [0, 1]])
    expected = (2 * (math.log1p(math.e) - 1) + math.log(2)) / 3
    assert math.isclose(expected, 0.4398902, abs_tol=1e-6)
    assert math.isclose(pairwise_likelihood(u1, u2, y1, y2, 0.5).item(), expected, rel_tol=1e-6)


def test_likelihood_is_finite_for_huge_logits():
    # theta = +-1e8: a naive log(1 + exp(theta)) overflows. A similar pair at +1e8 and a dissimilar one
    # at -1e8 cost ~0; a dissimilar pair at +1e8 costs theta itself: mean = 1e8 / 3.
    u1 = torch.full((1, 2), 1e4, requires_grad=True)
    u2 = torch.tensor([[1e4, 1e4], [-1e4, -1e4], [1e4, 1e4]], requires_grad=True)
    y1 = torch.tensor([[1, 0]])
    y2 = torch.tensor([[1, 0], [0, 1], [0, 1]])
    loss = pairwise_likelihood(u1, u2, y1, y2, 0.5)
    loss.backward()
    assert math.isclose(loss.item(), 1e8 / 3, rel_tol=1e-6)
    assert torch.isfinite(u1.grad).all() and torch.isfinite(u2.grad).all()


def test_likelihood_terms_switch_to_theta_times_one_minus_s_above_the_threshold():
    # HashNet's approximation: at theta = 20 > 15 a dissimilar pair costs 20, a similar one 0; below, softplus.
    theta = torch.tensor([20.0, 20.0, 1.0], dtype=torch.float64)
    s = torch.tensor([0.0, 1.0, 1.0])
    assert likelihood_terms(theta, s, threshold=15.0).tolist() == [20.0, 0.0, math.log1p(math.e) - 1]
    assert likelihood_terms(theta, s).tolist() == pytest.approx([math.log1p(math.exp(20)), math.log1p(math.exp(-20)),
                                                                 math.log1p(math.e) - 1], rel=1e-12)
