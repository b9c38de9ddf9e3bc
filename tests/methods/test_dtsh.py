"""Tests for hashnet.methods.dtsh: DTSH's triplet loss against values computed by hand.

Huge inputs, float64 and the code layer (none): tests/methods/test_methods.py, for every method.
"""
import math

import torch
import torch.nn.functional as F

from hashnet.methods.dtsh import dtsh_loss


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


# K = 2; anchor u1 = [[1, 0]] (label 0); u2 rows [1, 0] (label 0), [0, 1], [-1, 0] (label 1): P = {0}, N = {1, 2}.
# theta = 0.5 * <u1, u2_j> = [0.5, 0, -0.5]; m = K / 2 = 1.
U1 = torch.tensor([[1.0, 0.0]])
U2 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
Y1 = torch.tensor([[1, 0]])
Y2 = torch.tensor([[1, 0], [0, 1], [0, 1]])


def test_hand_computed_loss_with_the_defaults():
    # l_001 = softplus(1 + 0 - 0.5) = softplus(0.5) = 0.9740770; l_002 = softplus(1 - 0.5 - 0.5) = log 2 = 0.6931472;
    # L_trip = 0.8336121. (u - sign u)^2 over cat(u1, u2) = [0, 1 | 0, 1, 1, 0, 0, 1] (sign(0) = +1): mean 0.5.
    # Total 1.3336121.
    expected = (softplus(0.5) + math.log(2)) / 2 + 0.5
    assert math.isclose(expected, 1.3336121, abs_tol=1e-6)
    assert math.isclose(dtsh_loss(U1, U2, Y1, Y2).item(), expected, rel_tol=1e-6)
    # the quantization term alone, weight 1: 0.5.
    quantization = dtsh_loss(U1, U2, Y1, Y2) - dtsh_loss(U1, U2, Y1, Y2, quantization_weight=0.0)
    assert math.isclose(quantization.item(), 0.5, rel_tol=1e-6)


def test_sources_disagree_deephash_pytorch_and_fire_likelihood():
    # DeepHash-pytorch / FIRe: unhalved product, margin alpha = 5 (without their clamp to [-100, 50]).
    # theta = [1, 0, -1]: softplus(5 + 0 - 1) = softplus(4) = 4.0181499; softplus(5 - 1 - 1) = softplus(3) = 3.0485874;
    # mean 3.5333686.
    expected = (softplus(4) + softplus(3)) / 2
    assert math.isclose(expected, 3.5333686, abs_tol=1e-6)
    loss = dtsh_loss(U1, U2, Y1, Y2, scale=1.0, margin=5.0, quantization_weight=0.0)
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)


def test_only_valid_anchors_count_and_each_weighs_the_same():
    # One set passed twice (j == i counts). Rows r0 = [1, 0] (label A), r1 = [0, 1] (B), r2 = [2, 0] (A and B),
    # r3 = [0, -1] (B). theta = 0.5 * <r_i, r_j> = [[.5, 0, 1, 0], [0, .5, 0, -.5], [1, 0, 2, 0], [0, -.5, 0, .5]];
    # m = 1.
    # anchor 0: P = {0, 2} (theta .5, 1), N = {1, 3} (theta 0, 0): softplus(.5) twice, softplus(0) = log 2 twice;
    #   mean 0.8336121.
    # anchor 1: P = {1, 2, 3} (theta .5, 0, -.5), N = {0} (theta 0): softplus(.5), softplus(1), softplus(1.5)
    #   = 0.9740770, 1.3132617, 1.7014132; mean 1.3295840. anchor 3: the same three values, mean 1.3295840.
    # anchor 2 shares a label with every row: N empty, not an anchor.
    # L_trip = (0.8336121 + 2 * 1.3295840) / 3 = 1.1642600. (Counting anchor 2 as 0: 0.8731950; a mean over the
    # 10 triplets instead of the anchors: 1.1311952.)
    u = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, -1.0]])
    y = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 1]])
    expected = ((softplus(0.5) + math.log(2)) / 2 + 2 * (softplus(0.5) + softplus(1) + softplus(1.5)) / 3) / 3
    assert math.isclose(expected, 1.1642600, abs_tol=1e-6)
    assert math.isclose(dtsh_loss(u, u, y, y, quantization_weight=0.0).item(), expected, rel_tol=1e-6)


def test_no_valid_anchor_gives_zero():
    # One label everywhere: no negatives; an unlabelled row: no positives. Only the quantization term is left.
    u = torch.tensor([[0.5, -2.0], [1.0, 1.0]], requires_grad=True)
    same = torch.tensor([[1, 0], [1, 0]])
    loss = dtsh_loss(u, u, same, same, quantization_weight=0.0)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(u.grad, torch.zeros(2, 2))
    unlabelled = torch.tensor([[0, 0]])
    assert dtsh_loss(u[:1], u, unlabelled, same, quantization_weight=0.0).item() == 0.0


def test_matches_a_loop_over_triplets_on_multi_label_sets():
    # Random codes, several labels per row, K = 6: the vectorised loss equals the definition, triplet by triplet.
    g = torch.Generator().manual_seed(0)
    u1, u2 = torch.randn(5, 6, generator=g, dtype=torch.float64), torch.randn(7, 6, generator=g, dtype=torch.float64)
    y1, y2 = torch.randint(0, 2, (5, 4), generator=g), torch.randint(0, 2, (7, 4), generator=g)
    anchors = []
    for i in range(5):
        shared = [(y1[i] * y2[j]).sum() > 0 for j in range(7)]
        terms = [F.softplus(3.0 + 0.5 * u1[i] @ u2[k] - 0.5 * u1[i] @ u2[j])
                 for j in range(7) if shared[j] for k in range(7) if not shared[k]]
        if terms:
            anchors.append(torch.stack(terms).mean())
    assert len(anchors) > 1
    expected = torch.stack(anchors).mean()
    assert torch.allclose(dtsh_loss(u1, u2, y1, y2, margin=3.0, quantization_weight=0.0), expected, rtol=1e-12)
