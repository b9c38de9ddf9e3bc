"""Tests for hashnet.methods.greedyhash: the straight-through sign and GreedyHash's loss by hand."""
import math

import torch

from hashnet.methods.greedyhash import greedyhash_loss, sign_ste

# logits rows [0, 0], [1, -1]; h rows [0.5, -2], [1, 0].
# | |h| - 1 |^3 = [0.5^3, 1^3, 0^3, 1^3] = [0.125, 1, 0, 1]: mean over the 4 entries 0.53125, times 0.1 = 0.053125.
LOGITS = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
H = torch.tensor([[0.5, -2.0], [1.0, 0.0]])
PENALTY = 0.1 * 2.125 / 4


def test_sign_ste_forward_is_sign_with_zero_plus_one_and_backward_identity():
    x = torch.tensor([-2.0, -1e-8, 0.0, 0.3, 1e30], requires_grad=True)
    b = sign_ste(x)
    assert b.tolist() == [-1, -1, 1, 1, 1]
    weights = torch.tensor([1.0, -2.0, 3.0, -4.0, 5.0])
    (b * weights).sum().backward()
    assert x.grad.tolist() == weights.tolist()  # d(sum w * b)/dx = w: the gradient passes unchanged


def test_hand_computed_single_label_loss_is_a_batch_mean():
    # y one-hot -> targets argmax = [0, 1]. CE row 0: -log(1/2) = log 2 = 0.6931472;
    # row 1 (target 1, logits [1, -1]): -log(e^-1 / (e + e^-1)) = log(1 + e^2) = 2.1269280.
    # Mean over the batch 1.4100376; plus the penalty 0.053125: 1.4631626.
    y = torch.tensor([[1, 0], [0, 1]])
    expected = (math.log(2) + math.log1p(math.exp(2))) / 2 + PENALTY
    assert math.isclose(expected, 1.4631626, abs_tol=1e-6)
    assert math.isclose(greedyhash_loss(H, LOGITS, y).item(), expected, rel_tol=1e-6)
    assert math.isclose(greedyhash_loss(H, LOGITS, y, penalty_weight=1.0).item(),
                        expected - PENALTY + 2.125 / 4, rel_tol=1e-6)


def test_hand_computed_multi_label_loss_is_a_mean_over_entries():
    # y = [[1, 1], [0, 1]]. BCE with logits per entry: x = 0, t = 1: log 2 (twice); x = 1, t = 0: softplus(1) =
    # 1.3132617; x = -1, t = 1: softplus(1) = 1.3132617. Mean over the 4 entries 1.0032044; plus 0.053125: 1.0563294.
    y = torch.tensor([[1, 1], [0, 1]])
    expected = (2 * math.log(2) + 2 * math.log1p(math.e)) / 4 + PENALTY
    assert math.isclose(expected, 1.0563294, abs_tol=1e-6)
    assert math.isclose(greedyhash_loss(H, LOGITS, y, multi_label=True).item(), expected, rel_tol=1e-6)


def test_huge_inputs_give_finite_loss_and_gradients():
    h = torch.tensor([[1e4, -1e4], [-1e4, 1e4]], requires_grad=True)
    logits = torch.tensor([[1e4, -1e4], [1e4, -1e4]], requires_grad=True)
    y = torch.tensor([[1, 0], [0, 1]])
    for multi_label in (False, True):
        h.grad = logits.grad = None
        loss = greedyhash_loss(h, logits, y, multi_label=multi_label)
        loss.backward()
        assert torch.isfinite(loss) and loss > 0
        assert torch.isfinite(h.grad).all() and torch.isfinite(logits.grad).all()
