"""Tests for hashnet.methods.classifier: one-hot +-1 codes, the cross-entropy seen through the code layer, K >= C.

Huge inputs and float64: tests/methods/test_methods.py, for every method.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from hashnet.methods.classifier import Classifier, classifier_loss
from hashnet.utils.errors import ConfigError
from hashnet.utils.signs import sign

# K = 6 outputs, C = 4 classes: logits are the first 4.
Z = torch.tensor([[0.5, 2.0, -1.0, 1.9, 7.0, -3.0],
                  [-4.0, -3.0, -2.5, -2.6, 0.0, 0.0],
                  [0.0, 0.0, 0.0, 1e-3, 5.0, 5.0]])


def test_k_below_c_is_refused_naming_the_smallest_k():
    with pytest.raises(ConfigError, match="hash_bit=8 is less than the 10 classes -- pass hash_bit=16 \\(or more; "
                                          "codes are whole bytes"):
        Classifier(8, 10, False)
    assert Classifier(10, 10, False).hash_bit == 10


def test_codes_are_plus_one_at_the_predicted_class_and_minus_one_elsewhere():
    h = Classifier(6, 4, False)(Z)
    # predicted classes: 1 (2.0 > 1.9), 2 (-2.5), 3 (1e-3); the two bits past C are -1 whatever z is.
    assert sign(h).tolist() == [[-1, 1, -1, -1, -1, -1], [-1, -1, 1, -1, -1, -1], [-1, -1, -1, 1, -1, -1]]
    # h is the margin over the best rival: row 0: [0.5 - 2, 2 - 1.9, -1 - 2, 1.9 - 2, -1, -1].
    assert torch.allclose(h[0], torch.tensor([-1.5, 0.1, -3.0, -0.1, -1.0, -1.0]))


def test_multi_label_codes_are_plus_one_where_the_probability_is_above_one_half():
    h = Classifier(6, 4, True)(Z)
    # sigmoid(z) > 0.5 where z > 0: row 0 classes 0, 1, 3; row 1 none; row 2 class 3, and its logits of exactly 0
    # (probability 0.5, a tie) give +1 too, by sign(0) = +1 (module docstring).
    assert torch.equal(h[:, :4], Z[:, :4])  # the logits themselves
    assert sign(h).tolist() == [[1, 1, -1, 1, -1, -1], [-1, -1, -1, -1, -1, -1], [1, 1, 1, 1, -1, -1]]


def test_hand_computed_loss():
    # logits [0, 0] against class 0: log 2 = 0.6931472; [1, -1] against class 1: log(1 + e^2) = 2.1269280;
    # mean over the batch 1.4100376. Multi-label y = [[1, 1], [0, 1]]: BCE per entry log 2, log 2,
    # softplus(1) = 1.3132617, softplus(1) (x = -1, t = 1); mean over the 4 entries 1.0032044.
    logits = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    expected = (math.log(2) + math.log1p(math.exp(2))) / 2
    assert math.isclose(expected, 1.4100376, abs_tol=1e-6)
    assert math.isclose(classifier_loss(logits, torch.tensor([[1, 0], [0, 1]])).item(), expected, rel_tol=1e-6)
    expected = (2 * math.log(2) + 2 * math.log1p(math.e)) / 4
    assert math.isclose(expected, 1.0032044, abs_tol=1e-6)
    assert math.isclose(classifier_loss(logits, torch.tensor([[1, 1], [0, 1]]), multi_label=True).item(), expected,
                        rel_tol=1e-6)


@pytest.mark.parametrize("multi_label", [False, True])
def test_loss_through_the_code_layer_is_the_cross_entropy_of_the_logits(multi_label):
    # The code layer turns logits into margins; the loss recovers them: value and gradient are those of the
    # cross-entropy (BCE) of z[:, :C], and the outputs past C get no gradient.
    method = Classifier(6, 4, multi_label)
    y = torch.tensor([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1]])
    z = Z.clone().requires_grad_()
    loss = method.loss(method(z), y)
    loss.backward()
    reference = Z.clone().requires_grad_()
    if multi_label:
        expected = F.binary_cross_entropy_with_logits(reference[:, :4], y.float())
    else:
        expected = F.cross_entropy(reference[:, :4], y.argmax(1))
    expected.backward()
    assert torch.allclose(loss, expected, rtol=1e-6)
    assert torch.allclose(z.grad, reference.grad, atol=1e-7) and (z.grad[:, 4:] == 0).all()
