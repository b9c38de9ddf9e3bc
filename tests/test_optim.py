import math

import pytest
from torch import nn

from hashnet.optim import lr_multiplier, sgd


@pytest.mark.parametrize("step, factor", [(0, 1.0), (1999, 1.0), (2000, 0.5), (4500, 0.25), (10000, 0.5**5)])
def test_step_policy(step, factor):
    assert lr_multiplier(step) == factor


def test_inv_policy():
    assert math.isclose(lr_multiplier(1000, "inv", gamma=0.0005, power=0.75), 1.5**-0.75)


def test_unknown_policy():
    with pytest.raises(ValueError, match="unknown lr policy 'cosine'"):
        lr_multiplier(0, "cosine")


def test_hash_layer_learns_ten_times_faster():
    backbone, hash_layer = nn.Linear(4, 3), nn.Linear(3, 2)
    optimizer = sgd(backbone, hash_layer, lr=3e-4)
    assert [group["lr"] for group in optimizer.param_groups] == [3e-4, pytest.approx(3e-3)]
    assert optimizer.defaults["momentum"] == 0.9 and optimizer.defaults["nesterov"]
    assert optimizer.defaults["weight_decay"] == 5e-4
    assert len(optimizer.param_groups[1]["params"]) == 2
