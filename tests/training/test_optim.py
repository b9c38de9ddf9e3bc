import math

import pytest
from torch import nn

from hashnet.training.optim import lr_multiplier, param_groups


@pytest.mark.parametrize("step, factor", [(0, 1.0), (1999, 1.0), (2000, 0.5), (4500, 0.25), (10000, 0.5**5)])
def test_step_policy(step, factor):
    assert lr_multiplier(step) == factor


def test_inv_policy():
    assert math.isclose(lr_multiplier(1000, "inv", gamma=0.0005, power=0.75), 1.5**-0.75)


def test_unknown_policy():
    with pytest.raises(ValueError, match="unknown lr policy 'cosine'"):
        lr_multiplier(0, "cosine")


def test_new_layers_learn_hash_lr_mult_times_faster():
    backbone, hash_layer, method = nn.Linear(4, 3), nn.Linear(3, 2), nn.Linear(2, 5)
    groups = param_groups(backbone, [hash_layer, method], lr=3e-4, hash_lr_mult=10.0)
    assert [group["lr"] for group in groups] == [3e-4, pytest.approx(3e-3)]
    assert [len(group["params"]) for group in groups] == [2, 4]  # weights and biases; the method's train at 10x
    assert groups[1]["params"][2] is method.weight
