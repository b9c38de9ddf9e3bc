import math

import pytest

from hashnet.continuation import Continuation, beta_at


@pytest.mark.parametrize(
    "step, beta",
    [(0, 1.0), (199, 1.0), (200, math.sqrt(2.0)), (399, math.sqrt(2.0)), (9000, math.sqrt(46.0)), (9199, math.sqrt(46.0))],
)
def test_default_schedule(step, beta):
    assert math.isclose(beta_at(step), beta, rel_tol=1e-12)


def test_step_9000_is_about_6_78():
    assert round(beta_at(9000), 2) == 6.78


def test_custom_schedule():
    # t = 100 * floor(250 / 100) = 200: 2 * (1 + 0.01 * 200)^1 = 6
    assert math.isclose(beta_at(250, init_scale=2.0, gamma=0.01, power=1.0, step_size=100), 6.0)


def test_disabled_keeps_init_scale():
    assert Continuation(enabled=False, init_scale=1.5).beta(9000) == 1.5
    assert math.isclose(Continuation().beta(9000), math.sqrt(46.0))
