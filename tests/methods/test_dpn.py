"""Tests for hashnet.methods.dpn: the random targets, the polarization loss by hand, and the targets buffer.

Huge inputs, float64 and the code layer (none): tests/methods/test_methods.py, for every method.
"""
import io
import math

import pytest
import torch

from hashnet.methods.csq import hash_centers
from hashnet.methods.dpn import DPN, dpn_loss, dpn_targets

# targets t0 = [1, -1], t1 = [-1, 1]; K = 2.
TARGETS = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])


def test_targets_are_the_bernoulli_draw_even_where_csq_takes_hadamard_rows():
    targets = dpn_targets(4, 4, seed=0)  # K a power of 2, C <= 2K: CSQ / OrthoHash would take H_4
    expected = torch.randint(0, 2, (4, 4), generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert targets.dtype == torch.float32 and torch.equal(targets, expected.float())
    assert not torch.equal(targets, hash_centers(4, 4))
    assert torch.equal(dpn_targets(3, 6, seed=3), hash_centers(3, 6, seed=3))  # the Bernoulli branch, same draws
    assert not torch.equal(dpn_targets(3, 6, seed=3), dpn_targets(3, 6, seed=4))


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="hash_bit=0"):
        dpn_targets(10, 0)


def test_hand_computed_loss():
    # h0 = [0.5, -2], label 0 (t0 = [1, -1]): max(0, 1 - 0.5) = 0.5, max(0, 1 - 2) = 0 -> 0.5.
    # h1 = [0, 0], labels 0 and 1: 1 per bit per label -> 2 + 2 = 4.
    # Sum 4.5 over B * K = 4 entries: 1.125 (the authors' sum over bits, mean over images: K times, 2.25).
    h = torch.tensor([[0.5, -2.0], [0.0, 0.0]])
    y = torch.tensor([[1, 0], [1, 1]])
    assert math.isclose(dpn_loss(h, y, TARGETS).item(), 4.5 / 4, rel_tol=1e-6)
    # margin 2: h0: max(0, 2 - 0.5) = 1.5, max(0, 2 - 2) = 0; h1: 2 per bit per label = 8. (1.5 + 8) / 4 = 2.375.
    assert math.isclose(dpn_loss(h, y, TARGETS, margin=2.0).item(), 9.5 / 4, rel_tol=1e-6)


def test_single_label_is_the_mean_hinge_towards_the_labels_target_and_an_unlabelled_image_adds_zero():
    # One label each: mean over B x K of max(0, m - h * t_y), as DeepHash-pytorch's DPN.py.
    # h0 = [2, 0.5] label 1 (t1 = [-1, 1]): max(0, 1 + 2) = 3, max(0, 1 - 0.5) = 0.5.
    # h1 = [5, -5], no label: 0, but it counts in B. Sum 3.5 over 4 entries: 0.875.
    h = torch.tensor([[2.0, 0.5], [5.0, -5.0]])
    y = torch.tensor([[0, 1], [0, 0]])
    assert math.isclose(dpn_loss(h, y, TARGETS).item(), 3.5 / 4, rel_tol=1e-6)
    # With the label row alone: the mean over its 2 entries, 1.75.
    assert math.isclose(dpn_loss(h[:1], y[:1], TARGETS).item(), 3.5 / 2, rel_tol=1e-6)


def test_targets_survive_a_state_dict_round_trip():
    method = DPN(16, 10, False, margin=1.0, seed=0)
    assert list(method.state_dict()) == ["targets"] and torch.equal(method.targets, dpn_targets(10, 16, seed=0))
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    other = DPN(16, 10, False, margin=1.0, seed=1)
    assert not torch.equal(other.targets, method.targets)
    buffer.seek(0)
    other.load_state_dict(torch.load(buffer))
    assert torch.equal(other.targets, method.targets)
