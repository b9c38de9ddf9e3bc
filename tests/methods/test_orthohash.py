"""Tests for hashnet.methods.orthohash: the codebook, the cosine-margin loss by hand, and the method's own state.

Huge inputs and float64: tests/methods/test_methods.py, for every method.
"""
import io
import math

import torch
import torch.nn.functional as F

from hashnet.methods.csq import hash_centers
from hashnet.methods.orthohash import OrthoHash, orthohash_codebook, orthohash_loss

SQRT2 = math.sqrt(2)


def test_codebook_is_csqs_hash_centres():
    # Hadamard rows where K is a power of 2 and C <= 2K; seeded Bernoulli otherwise (K = 6; C = 9 > 2K = 8).
    assert torch.equal(orthohash_codebook(6, 4), hash_centers(6, 4))
    assert orthohash_codebook(2, 2).tolist() == [[1, 1], [1, -1]]
    for num_classes, hash_bit in ((3, 6), (9, 4)):
        codebook = orthohash_codebook(num_classes, hash_bit, seed=3)
        assert codebook.dtype == torch.float32 and torch.equal(codebook, hash_centers(num_classes, hash_bit, seed=3))
        assert not torch.equal(codebook, orthohash_codebook(num_classes, hash_bit, seed=4))


def test_hand_computed_single_label_loss():
    # K = 2, codebook H_2 = [[1, 1], [1, -1]] (norms sqrt 2).
    # h0 = [1, 0], label 0: cos = [1/sqrt2, 1/sqrt2] -> logits 8 * (0.7071068 - 0.3) = 3.2568542 and 5.6568542:
    #   CE = log(1 + e^(5.6568542 - 3.2568542)) = log1p(e^2.4) = 2.4868362 (the gap is scale * margin).
    # h1 = [0, -3], label 1: cos = [-1/sqrt2, 1/sqrt2] (|h| divides out) -> logits -5.6568542, 3.2568542:
    #   CE = log1p(e^(-5.6568542 - 3.2568542)) = log1p(e^-8.9137085) = 0.0001345.
    # Mean over the 2 images 1.2434853.
    h = torch.tensor([[1.0, 0.0], [0.0, -3.0]])
    y = torch.tensor([[1, 0], [0, 1]])
    expected = (math.log1p(math.exp(2.4)) + math.log1p(math.exp(-(8 * SQRT2 - 2.4)))) / 2
    assert math.isclose(expected, 1.2434853, abs_tol=1e-6)
    codebook = orthohash_codebook(2, 2)
    assert math.isclose(orthohash_loss(h, y, codebook).item(), expected, rel_tol=1e-6)
    # One-hot labels: cross-entropy of the margin logits against argmax y.
    cos = torch.tensor([[1, 1], [-1, 1]]) / SQRT2
    assert torch.allclose(orthohash_loss(h, y, codebook), F.cross_entropy(8 * (cos - 0.3 * y), y.argmax(1)))
    # margin 0.2 (the authors' main.py default): log1p(e^1.6) = 1.7839007 and log1p(e^-(8 sqrt 2 - 1.6)) = 0.0000604.
    expected = (math.log1p(math.exp(1.6)) + math.log1p(math.exp(-(8 * SQRT2 - 1.6)))) / 2
    assert math.isclose(orthohash_loss(h, y, codebook, margin=0.2).item(), expected, rel_tol=1e-6)
    # scale 1, margin 0: logits are the cosines: log1p(e^0) = log 2 and log1p(e^-sqrt2) = 0.2176217.
    expected = (math.log(2) + math.log1p(math.exp(-SQRT2))) / 2
    assert math.isclose(orthohash_loss(h, y, codebook, scale=1.0, margin=0.0).item(), expected, rel_tol=1e-6)


def test_hand_computed_multi_label_loss_smooths_over_the_positives():
    # K = 4, C = 3: the first 3 rows of H_4: [1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1].
    # h0 = [1, 1, 1, 1], labels {0, 1}: cos = [1, 0, 0] -> logits 8 * ([1, 0, 0] - 0.3 * [1, 1, 0]) = [5.6, -2.4, 0];
    #   p = [0.5, 0.5, 0]; -sum p log_softmax = LSE - (5.6 - 2.4) / 2, LSE = log(e^5.6 + e^-2.4 + 1) = 5.6040252:
    #   4.0040252.
    # h1 (anything), no label: adds 0 but counts. Mean over the 2 images 2.0020126.
    h = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.3, -2.0, 0.5, 1.0]])
    y = torch.tensor([[1, 1, 0], [0, 0, 0]])
    lse = math.log(math.exp(5.6) + math.exp(-2.4) + 1)
    assert math.isclose((lse - 1.6) / 2, 2.0020126, abs_tol=1e-6)
    assert math.isclose(orthohash_loss(h, y, orthohash_codebook(3, 4)).item(), (lse - 1.6) / 2, rel_tol=1e-6)


def test_code_layer_is_a_batch_norm_with_torchs_defaults():
    method = OrthoHash(4, 3, False, scale=8.0, margin=0.3, seed=0)
    bn = method.batch_norm
    assert (bn.eps, bn.momentum, bn.affine, bn.track_running_stats) == (1e-5, 0.1, True, True)
    z = torch.tensor([[1.0, -2.0, 0.0, 4.0], [3.0, 2.0, 0.0, -4.0]])
    # training: (z - batch mean) / sqrt(biased var + eps) per bit: [[-1, -1, 0, 1], [1, 1, 0, -1]] (up to eps)
    assert torch.allclose(method.train()(z), torch.tensor([[-1.0, -1, 0, 1], [1, 1, 0, -1]]), atol=1e-4)
    # running mean after one batch: 0.1 * [2, 0, 0, 0]; evaluation uses it.
    assert torch.allclose(bn.running_mean, torch.tensor([0.2, 0.0, 0.0, 0.0]))
    assert torch.allclose(method.eval()(z), bn(z)) and not torch.allclose(method(z), method.train()(z))


def test_codebook_and_batch_norm_survive_a_state_dict_round_trip():
    # K = 12 is not a power of 2: the codebook depends on the seed, so a fresh method with another seed differs
    # until the saved state is loaded.
    method = OrthoHash(12, 10, False, scale=8.0, margin=0.3, seed=0)
    method.train()(torch.randn(16, 12, generator=torch.Generator().manual_seed(1)) * 3 + 1)  # moves the running stats
    with torch.no_grad():
        method.batch_norm.weight.mul_(2.0)
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    assert set(method.state_dict()) == {"codebook", "batch_norm.weight", "batch_norm.bias", "batch_norm.running_mean",
                                        "batch_norm.running_var", "batch_norm.num_batches_tracked"}
    other = OrthoHash(12, 10, False, scale=8.0, margin=0.3, seed=1)
    assert not torch.equal(other.codebook, method.codebook)
    buffer.seek(0)
    other.load_state_dict(torch.load(buffer))
    for key, value in method.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key
    z = torch.randn(5, 12)
    assert torch.equal(other.eval()(z), method.eval()(z))
