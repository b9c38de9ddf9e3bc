"""Tests for hashnet.methods.dbdh: the loss against a straightforward float64 loop."""
import math

import pytest
import torch

from hashnet.methods.dbdh import DBDH, dbdh_loss


@pytest.mark.parametrize("power", [1, 2])
def test_loss_equals_the_formula(power):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(7, 5, generator=g, dtype=torch.float64).clamp(-1, 1)
    y = torch.eye(3, dtype=torch.float64)[[0, 1, 2, 0, 1, 2, 0]]
    y[0, 1] = 1  # two labels
    u1, u2, y1, y2 = u[:3], u[3:], y[:3], y[3:]
    cells = [math.log1p(math.exp(0.5 * float(u1[i] @ u2[j]))) - float(y1[i] @ y2[j] > 0) * 0.5 * float(u1[i] @ u2[j])
             for i in range(3) for j in range(4)]
    balance = lambda rows: sum(abs(float(r.mean())) ** power for r in rows) / len(rows)
    expected = sum(cells) / 12 + 0.2 * balance(u)
    assert math.isclose(dbdh_loss(u1, u2, y1, y2, 0.2, power).item(), expected, rel_tol=1e-12)
    bank = sum(cells) / 12 + 0.2 * balance(u1)
    assert math.isclose(dbdh_loss(u1, u2, y1, y2, 0.2, power, regularize_u2=False).item(), bank, rel_tol=1e-12)


def test_code_layer_clamps():
    method = DBDH(4, 3, False, pairs="halves", scale=0.5, balance_weight=0.1, power=2)
    assert torch.equal(method(torch.tensor([[-3.0, -0.5, 0.5, 3.0]])), torch.tensor([[-1.0, -0.5, 0.5, 1.0]]))
