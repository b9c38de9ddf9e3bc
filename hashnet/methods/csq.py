"""CSQ: Central Similarity Quantization (Yuan, Wang, Zhang, Tay, Jie, Liu, Feng, CVPR 2020).

Each class gets a hash centre, a K-bit vector in {-1, +1}, and the centres are far apart in
Hamming space. The codes h = tanh(hash layer) are pulled to their image's centre c bit by bit with
a binary cross-entropy, and towards +-1 by a quadratic penalty:

    c = sign(y @ centers), ties (y @ centers = 0) broken by random +-1
    L = mean over the B x K entries of BCE((h + 1) / 2, (c + 1) / 2)
        + quantization_weight * mean over the entries of h of (|h| - 1)^2

Centres: the rows of [H; -H], H the K x K Sylvester Hadamard matrix, when K is a power of 2 and
C <= 2K (any two rows of H are K/2 apart; row i of H and of -H are K apart); otherwise Bernoulli(0.5)
+-1 entries (the paper's fallback: such centres are K/2 apart only in expectation, and nothing here
checks their distances). For several labels the centre is the bitwise majority of their centres.

Default: quantization_weight = 1e-4, DeepHash-pytorch's CSQ config (swuxyj); the authors' code
(yuanli2333/Hadamard-Matrix-for-hashing) weights its quantization term lambda2 = 0.05, next to a
pairwise term (lambda1 = 0.2) that this loss leaves out.
"""
from __future__ import annotations

import torch
from torch import Tensor

from hashnet.methods.base import HashMethod
from hashnet.methods.common import check_number, random_codes


def sylvester_hadamard(k: int) -> Tensor:
    """(k, k) float Sylvester Hadamard matrix, k a power of 2: H_1 = [1], H_2n = [[H_n, H_n], [H_n, -H_n]]."""
    h = torch.ones(1, 1)
    while h.shape[0] < k:
        h = torch.cat((torch.cat((h, h), dim=1), torch.cat((h, -h), dim=1)))
    return h


def hash_centers(num_classes: int, hash_bit: int, seed: int = 0) -> Tensor:
    """(num_classes, hash_bit) float centres in {-1, +1} (module docstring); seed drives the Bernoulli case."""
    if num_classes < 1 or hash_bit < 1:
        raise ValueError(f"hash_centers needs num_classes >= 1 and hash_bit >= 1, got num_classes={num_classes}, "
                         f"hash_bit={hash_bit}")
    if hash_bit & (hash_bit - 1) == 0 and num_classes <= 2 * hash_bit:
        h = sylvester_hadamard(hash_bit)
        return torch.cat((h, -h))[:num_classes]
    return random_codes(num_classes, hash_bit, seed)


def image_centers(y: Tensor, centers: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Each image's centre: y (B, C) 0/1 labels, centers (C, K) -> (B, K) in {-1, +1}, centers' dtype.

    sign(y @ centers): one label gives that label's centre, several their bitwise majority. Bits
    where the vote is tied (or the image has no label) take one random +-1 vector of K bits drawn
    per call from generator (None: torch's default generator of centers' device); every call draws
    it, ties or not, so the random stream does not depend on the batch.
    """
    if y.shape[1] != centers.shape[0]:
        raise ValueError(f"labels have {y.shape[1]} classes but centers has {centers.shape[0]} rows: build them "
                         f"with hash_centers(num_classes={y.shape[1]}, hash_bit={centers.shape[1]})")
    votes = y.to(centers.dtype) @ centers
    device = generator.device if generator is not None else centers.device
    tie = torch.randint(0, 2, (centers.shape[1],), generator=generator, device=device)
    tie = (tie * 2 - 1).to(centers.device, centers.dtype)
    return torch.where(votes == 0, tie, votes.sign())


def csq_loss(h: Tensor, y: Tensor, centers: Tensor, quantization_weight: float = 1e-4,
             generator: torch.Generator | None = None) -> Tensor:
    """CSQ's loss (module docstring) -> scalar.

    h: (B, K) codes in [-1, 1] (tanh of the hash layer); y: (B, C) 0/1 labels; centers: (C, K) from
    hash_centers; generator breaks ties (image_centers). The BCE clamps the probability (h + 1) / 2
    to [eps, 1 - eps], eps = torch.finfo(dtype).eps, so it is finite (at most -log eps, 15.9 in
    float32) with finite gradients for h = +-1 exactly; outside that range the gradient is 0.
    """
    t = (image_centers(y, centers.to(h.device, h.dtype), generator) + 1) / 2
    eps = torch.finfo(h.dtype).eps
    p = ((h + 1) / 2).clamp(eps, 1 - eps)
    bce = -(t * torch.log(p) + (1 - t) * torch.log1p(-p)).mean()
    return bce + quantization_weight * (h.abs() - 1).pow(2).mean()


class CSQ(HashMethod):
    """CSQ: h = tanh(hash layer), pulled to hash centres (C, K), a buffer saved with the checkpoint.

    Ties of a multi-label centre are drawn from torch's global generator, which
    hashnet.training.callbacks.StepSeed reseeds from (seed, step, rank): a resumed run draws the same.
    """

    name = "csq"

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, quantization_weight: float,
                 seed: int) -> None:
        super().__init__(hash_bit, num_classes, multi_label)
        check_number("quantization_weight", quantization_weight)
        self.quantization_weight = quantization_weight
        self.register_buffer("centers", hash_centers(num_classes, hash_bit, seed))

    def forward(self, z: Tensor) -> Tensor:
        """z (N, K) -> tanh(z) (N, K) in (-1, 1)."""
        return torch.tanh(z)

    def loss(self, h: Tensor, labels: Tensor) -> Tensor:
        return csq_loss(h, labels, self.centers, self.quantization_weight)
