import math

import torch

from hashnet.loss import pairwise_loss, similarity


def test_similarity_is_share_at_least_one_label():
    y1 = torch.tensor([[1, 0, 1], [0, 0, 0]])
    y2 = torch.tensor([[0, 0, 1], [0, 1, 0], [1, 1, 1]])
    assert similarity(y1, y2).tolist() == [[1, 0, 1], [0, 0, 0]]


def test_hand_computed_weighted_loss():
    # theta = 0.5 * <h1, h2> = [1, 0]; the first pair is similar, the second is not.
    h1 = torch.tensor([[1.0, 1.0]])
    h2 = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    y1 = torch.tensor([[1, 0]])
    y2 = torch.tensor([[1, 0], [0, 1]])
    similar = math.log(1 + math.e) - 1
    dissimilar = math.log(2)
    assert math.isclose(pairwise_loss(h1, h2, y1, y2, alpha=0.5).item(), (similar + dissimilar) / 2, rel_tol=1e-6)
    weighted = pairwise_loss(h1, h2, y1, y2, alpha=0.5, class_num=2.0).item()
    assert math.isclose(weighted, (2 * similar + dissimilar) / 3, rel_tol=1e-6)


def test_above_threshold_uses_theta_times_one_minus_s():
    # theta = [20, -20]: the dissimilar pair at 20 is above the threshold and costs exactly 20.
    h1 = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    h2 = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    y1 = torch.tensor([[1, 0]])
    y2 = torch.tensor([[0, 1], [1, 0]])
    below = math.log(1 + math.exp(-20)) + 20  # similar pair at theta = -20
    loss = pairwise_loss(h1, h2, y1, y2, alpha=10.0).item()
    assert math.isclose(loss, (20 + below) / 2, rel_tol=1e-12)
    # Lowering the threshold past 20 switches the first pair to softplus: log(1 + e^20).
    softplus = pairwise_loss(h1, h2, y1, y2, alpha=10.0, threshold=25.0).item()
    assert math.isclose(softplus, (math.log1p(math.exp(20)) + below) / 2, rel_tol=1e-12)


def test_finite_loss_and_gradients_for_saturated_long_codes():
    torch.manual_seed(0)
    k = 4096
    z = torch.randn(8, k, requires_grad=True)
    codes = torch.tanh(1e6 * z)  # beta huge: codes are exactly +-1
    labels = torch.eye(4)[torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])]
    loss = pairwise_loss(codes[:4], codes[4:], labels[:4], labels[4:], alpha=1.0)  # |theta| up to 4096
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert torch.isfinite(z.grad).all()


def test_exclude_diagonal_matches_explicit_pair_sum():
    torch.manual_seed(1)
    h = torch.tanh(torch.randn(5, 8, dtype=torch.float64))
    y = torch.tensor([[1, 0], [0, 1], [1, 1], [1, 0], [0, 1]])
    alpha, class_num = 0.7, 3.0
    total, weight = 0.0, 0.0
    for i in range(5):
        for j in range(5):
            if i == j:
                continue
            theta = alpha * float(h[i] @ h[j])
            s = float(y[i] @ y[j] > 0)
            w = class_num if s else 1.0
            total += w * (math.log1p(math.exp(theta)) - s * theta)
            weight += w
    loss = pairwise_loss(h, h, y, y, alpha, class_num, exclude_diagonal=True).item()
    assert math.isclose(loss, total / weight, rel_tol=1e-12)


def test_loss_is_float32_under_bf16_autocast():
    generator = torch.Generator().manual_seed(0)
    h1, h2 = torch.rand(6, 48, generator=generator) * 2 - 1, torch.rand(5, 48, generator=generator) * 2 - 1
    y1, y2 = torch.eye(3)[[0, 1, 2, 0, 1, 2]], torch.eye(3)[[0, 0, 1, 2, 2]]
    exact = pairwise_loss(h1, h2, y1, y2, alpha=1.0, class_num=3.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = pairwise_loss(h1, h2, y1, y2, alpha=1.0, class_num=3.0)
        assert (h1 @ h2.T).dtype == torch.bfloat16  # what the loss would see without its guard
    assert mixed.dtype == torch.float32 and mixed.item() == exact.item()
