"""Tests for hashnet.methods.dfh: the codes, the centre step and the loss against straightforward float64 loops."""
import math

import numpy as np
import torch

from hashnet.methods.dfh import dfh_codes, dfh_loss, dfh_update_centres


def draws(rows: int = 10, bits: int = 6, classes: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(rows, bits, generator=g, dtype=torch.float64)
    y = torch.eye(classes, dtype=torch.float64)[torch.randint(0, classes, (rows,), generator=g)]
    y[::3, 2] = 1  # several labels in every third row
    y[-1] = 0  # one unlabelled image
    centres = torch.where(torch.randn(classes, bits, generator=g) >= 0, 1.0, -1.0).double()
    return u, y, centres


def scaled(y: np.ndarray) -> np.ndarray:
    return np.array([row / max(row.sum(), 1) for row in y])


def test_codes_are_the_sign_of_u_pulled_to_the_scaled_centres():
    u, y, centres = draws()
    b = dfh_codes(u, y, centres, mu=1.5)
    ys = scaled(y.numpy())
    ref = [[1.0 if 1.5 * (ys[i] @ centres.numpy()[:, k]) + u[i, k] >= 0 else -1.0 for k in range(6)] for i in range(10)]
    assert np.array_equal(b.numpy(), np.array(ref))
    assert torch.equal(dfh_codes(u, y, torch.zeros_like(centres)), torch.where(u >= 0, 1.0, -1.0).double())


def centre_objective(c, b, ys, nu):
    push = sum(float(c[i] @ c[j]) for i in range(len(c)) for j in range(len(c)) if i != j)
    return float(((b - ys @ c) ** 2).sum()) + nu * push


def test_centre_step_equals_the_loops_and_its_last_row_is_optimal():
    u, y, centres = draws()
    b = dfh_codes(u, y, centres)
    new = dfh_update_centres(centres, y, b, nu=0.7)
    ys, ref, bn = scaled(y.numpy()), centres.numpy().copy(), b.numpy()
    for i in range(4):
        value = ys[:, i] @ bn - sum((ys[:, j] @ ys[:, i]) * ref[j] + 0.7 * ref[j] for j in range(4) if j != i)
        ref[i] = np.where(value >= 0, 1.0, -1.0)
    assert np.array_equal(new.numpy(), ref) and not torch.equal(new, centres)
    best = centre_objective(new.numpy(), bn, ys, 0.7)
    for k in range(6):  # the last class, updated last, minimises the objective bit by bit
        flipped = new.numpy().copy()
        flipped[-1, k] *= -1
        assert centre_objective(flipped, bn, ys, 0.7) >= best - 1e-9
    absent = dfh_update_centres(centres, torch.zeros(10, 4), b, nu=1.0)[0]  # class 0 alone pushed from the others
    assert torch.equal(absent, torch.where(-centres[1:].sum(0) >= 0, 1.0, -1.0).double())


def test_loss_equals_the_formula():
    u, y, centres = draws()
    b = dfh_codes(u, y, centres)
    u1, u2, y1, y2, b1, b2 = u[:4], u[4:], y[:4], y[4:], b[:4], b[4:]
    softplus = lambda x: math.log1p(math.exp(x))
    cells = []
    for i in range(4):
        for j in range(6):
            theta, s = 0.5 * float(u1[i] @ u2[j]), float(y1[i] @ y2[j] > 0)
            cells.append((1 - s) * softplus(2.0 + theta) + s * softplus(2.0 - theta))
    expected = sum(cells) / 24 + 0.5 * float(((u - b) ** 2).mean())
    assert math.isclose(dfh_loss(u1, u2, y1, y2, b1, b2, margin=2.0).item(), expected, rel_tol=1e-12)
    bank = sum(cells) / 24 + 0.5 * float(((u1 - b1) ** 2).mean())
    assert math.isclose(dfh_loss(u1, u2, y1, y2, b1, None, margin=2.0).item(), bank, rel_tol=1e-12)
