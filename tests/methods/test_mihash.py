"""Tests for hashnet.methods.mihash: the loss against a straightforward float64 loop over anchors and bins."""
import math

import pytest
import torch

from hashnet.methods.mihash import mihash_codes, mihash_loss


def reference(h: torch.Tensor, y: torch.Tensor, nbins: int) -> float:
    batch, bits = h.shape
    width = bits / nbins
    entropy = lambda q: -sum(x * math.log2(x) for x in q if x > 0)
    total = 0.0
    for i in range(batch):
        hist = {"all": [0.0] * (nbins + 1), "pos": [0.0] * (nbins + 1), "neg": [0.0] * (nbins + 1)}
        counts = {"all": 0, "pos": 0, "neg": 0}
        for j in range(batch):
            if j == i:
                continue
            d = (bits - float(h[i] @ h[j])) / 2
            kind = "pos" if float(y[i] @ y[j]) > 0 else "neg"
            for key in ("all", kind):
                counts[key] += 1
                for level in range(nbins + 1):
                    hist[key][level] += max(0.0, 1 - abs(d - level * width) / width)
        p = {key: [x / max(counts[key], 1) for x in hist[key]] for key in hist}
        n = max(batch - 1, 1)
        total += entropy(p["all"]) - counts["pos"] / n * entropy(p["pos"]) - counts["neg"] / n * entropy(p["neg"])
    return -total / batch


@pytest.mark.parametrize("multi", [False, True])
def test_loss_equals_the_loops(multi):
    g = torch.Generator().manual_seed(0)
    h = mihash_codes(torch.randn(7, 8, generator=g, dtype=torch.float64), sharpness=2.0)
    y = torch.eye(3, dtype=torch.float64)[[0, 1, 2, 0, 1, 2, 0]]
    if multi:
        y[1, 0] = y[4, 2] = 1
    assert math.isclose(mihash_loss(h, y).item(), reference(h, y, 4), rel_tol=1e-12)
    assert math.isclose(mihash_loss(h, y, nbins=3).item(), reference(h, y, 3), rel_tol=1e-12)


def test_codes_that_separate_the_classes_have_lower_loss():
    y = torch.eye(2, dtype=torch.float64)[[0, 0, 0, 1, 1, 1]]
    separated = (y[:, :1] * 2 - 1).expand(6, 8)  # class 0 all +1, class 1 all -1: distances 0 or K
    mixed = mihash_codes(torch.randn(6, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    # Perfect codes: the distance tells the pair label, so MI = H(p) = H(2/5, 3/5) bits.
    best = -(0.4 * math.log2(0.4) + 0.6 * math.log2(0.6))
    assert math.isclose(mihash_loss(separated, y).item(), -best, rel_tol=1e-12)
    assert mihash_loss(mixed, y).item() > -best


def test_finite_gradients_at_empty_bins_and_saturated_codes():
    z = torch.tensor([[1e4, -1e4, 1e4, 1e4], [1e4, -1e4, 1e4, 1e4], [-1e4, 1e4, -1e4, 1e4]], requires_grad=True)
    loss = mihash_loss(mihash_codes(z), torch.eye(2)[[0, 0, 1]])
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
