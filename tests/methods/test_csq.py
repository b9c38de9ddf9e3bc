"""Tests for hashnet.methods.csq: hash centres, each image's centre, and CSQ's loss by hand."""
import math

import pytest
import torch

from hashnet.methods.csq import csq_loss, hash_centers, image_centers

H4 = [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]  # H_4 = [[H_2, H_2], [H_2, -H_2]]


def hamming(a: torch.Tensor) -> torch.Tensor:
    """Pairwise Hamming distances of the rows of a (C, K) matrix in {-1, +1}."""
    return (a.shape[1] - a @ a.T) / 2


def test_hadamard_centres_are_the_sylvester_rows_and_k_over_2_apart():
    centres = hash_centers(4, 4)
    assert centres.dtype == torch.float32 and centres.tolist() == H4
    assert (hamming(centres) + 2 * torch.eye(4)).tolist() == [[2] * 4] * 4  # off the diagonal: K / 2 = 2
    centres = hash_centers(16, 16)
    off_diagonal = hamming(centres)[~torch.eye(16, dtype=torch.bool)]
    assert (off_diagonal == 8).all()


def test_more_classes_than_bits_take_rows_of_minus_h():
    centres = hash_centers(6, 4)  # 6 <= 2K = 8: H_4, then the first 2 rows of -H_4
    assert centres.tolist() == H4 + [[-1, -1, -1, -1], [-1, 1, -1, 1]]
    distances = hamming(centres)
    assert distances[0, 4] == 4 and distances[1, 5] == 4  # a row and its negation: K apart
    assert distances[0, 1] == 2 and distances[0, 5] == 2 and distances[4, 5] == 2


@pytest.mark.parametrize("num_classes, hash_bit", [(3, 6), (9, 4)])  # K not a power of 2; C > 2K
def test_bernoulli_centres_are_seeded_and_plus_minus_one(num_classes, hash_bit):
    centres = hash_centers(num_classes, hash_bit, seed=3)
    assert centres.shape == (num_classes, hash_bit) and centres.dtype == torch.float32
    assert set(centres.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(centres, hash_centers(num_classes, hash_bit, seed=3))
    assert not torch.equal(centres, hash_centers(num_classes, hash_bit, seed=4))
    # Exactly the draws of a generator seeded with `seed`.
    expected = torch.randint(0, 2, (num_classes, hash_bit), generator=torch.Generator().manual_seed(3)) * 2 - 1
    assert torch.equal(centres, expected.float())


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="num_classes=0"):
        hash_centers(0, 16)


def test_single_label_centre_is_that_labels_centre():
    centres = hash_centers(6, 4)
    assert torch.equal(image_centers(torch.eye(6), centres), centres)


def test_multi_label_centre_is_the_bitwise_majority():
    # Labels 0, 1, 2 of H_4: column sums [3, 1, 1, -1] -> [1, 1, 1, -1]; no tie.
    centres = hash_centers(3, 4)
    y = torch.tensor([[1, 1, 1], [0, 1, 1]])
    # Labels 1, 2: [1 + 1, -1 + 1, 1 - 1, -1 - 1] = [2, 0, 0, -2] -> [1, tie, tie, -1].
    out = image_centers(y, centres, torch.Generator().manual_seed(0))
    assert out[0].tolist() == [1, 1, 1, -1]
    assert out[1, 0] == 1 and out[1, 3] == -1


def test_ties_are_drawn_from_the_generator():
    centres = hash_centers(3, 4)
    y = torch.tensor([[1, 1, 0], [1, 1, 0]])  # labels 0, 1: [2, 0, 2, 0] -> bits 1 and 3 tied
    out = image_centers(y, centres, torch.Generator().manual_seed(5))
    draw = torch.randint(0, 2, (4,), generator=torch.Generator().manual_seed(5)) * 2 - 1
    assert out[0].tolist() == [1, draw[1], 1, draw[3]]
    assert torch.equal(out[0], out[1])  # one tie vector per call, shared by the batch
    assert torch.equal(out, image_centers(y, centres, torch.Generator().manual_seed(5)))
    tied_bits = {tuple(image_centers(y, centres, torch.Generator().manual_seed(s))[0, [1, 3]].tolist())
                 for s in range(20)}
    assert len(tied_bits) > 1  # the ties do vary with the seed


def test_mismatched_centres_are_refused():
    with pytest.raises(ValueError, match=r"hash_centers\(num_classes=3, hash_bit=4\)"):
        image_centers(torch.ones(2, 3), hash_centers(4, 4))


def test_hand_computed_loss():
    # K = 2, H_2 = [[1, 1], [1, -1]]; y one-hot [0], [1] -> centres [1, 1], [1, -1] -> targets [1, 1], [1, 0].
    # h rows [0.5, 0], [0, -0.5] -> p = (h + 1) / 2 rows [0.75, 0.5], [0.5, 0.25].
    # BCE: -log 0.75 = 0.2876821, -log 0.5 = 0.6931472; -log 0.5, -log(1 - 0.25) = 0.2876821.
    # Mean over the 4 entries 0.4904146. (|h| - 1)^2 = [0.25, 1, 1, 0.25], mean 0.625, times 1e-4: 6.25e-5.
    # Total 0.4904771.
    h = torch.tensor([[0.5, 0.0], [0.0, -0.5]])
    y = torch.tensor([[1, 0], [0, 1]])
    centres = hash_centers(2, 2)
    bce = (2 * -math.log(0.75) + 2 * math.log(2)) / 4
    assert math.isclose(bce + 1e-4 * 0.625, 0.4904771, abs_tol=1e-6)
    assert math.isclose(csq_loss(h, y, centres).item(), bce + 1e-4 * 0.625, rel_tol=1e-6)
    assert math.isclose(csq_loss(h, y, centres, quantization_weight=1.0).item(), bce + 0.625, rel_tol=1e-6)


def test_saturated_codes_give_finite_loss_and_gradients():
    # h exactly +-1: bits on their centre cost -log(1 - eps) ~ 0, bits on the wrong side -log(eps) = 15.942385
    # (float32 eps = 2^-23). Row 0 [1, -1] against centre [1, 1]: 0 and 15.94; row 1 [-1, 1] against [1, -1]:
    # 15.94 twice. Mean over 4 entries 3 * 15.942385 / 4 = 11.956789; the quantization term is 0.
    h = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], requires_grad=True)
    y = torch.tensor([[1, 0], [0, 1]])
    loss = csq_loss(h, y, hash_centers(2, 2))
    loss.backward()
    assert math.isclose(loss.item(), 3 * -math.log(2 ** -23) / 4, rel_tol=1e-5)
    assert torch.isfinite(h.grad).all()
