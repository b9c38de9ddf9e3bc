"""CIBHash (Qiu, Su, Ou, Yu, Chen; IJCAI 2021, "Unsupervised Hashing with Contrastive Information Bottleneck";
specs: methods-unsupervised.md section 7), on two augmented views of each image (dataset views: 2).

    p = sigmoid(l);  z = sign(p - 0.5) forward (stochastic: sign(p - u), u ~ U(0, 1)), straight through to p
    Z = cat(z', z'') (2B, K);  s_ab = cos(Z_a, Z_b) / tau
    L_c = mean over the 2B anchors of -s_{a,a*} + log sum_{k != a} exp(s_ak)     (a*: the other view of a's image)
    KL(p || q) = mean over rows of sum over bits of p (log(p + 1e-8) - log(q + 1e-8))
                                                    + (1 - p) (log(1 - p + 1e-8) - log(1 - q + 1e-8))
    L = L_c + beta (KL(p' || sg p'') + KL(p'' || sg p')) / 2;   encode: b = sign(l)

tau = 0.3, beta = 0.001: the authors' argparser and FIRe's cibhash.yaml. stochastic = false: the released code
(and FIRe) threshold at 0.5, in training too; the paper's Bernoulli layer is the option.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from hashnet.methods.base import HashMethod
from hashnet.methods.common import check_number
from hashnet.methods.straight_through import sign_ste
from hashnet.utils.signs import sign

LOG_EPS = 1e-8


def cibhash_codes(logits: Tensor, u: Tensor | None = None) -> Tensor:
    """logits (B, K) -> z (B, K) = sign(sigmoid(l) - u) (u = 0.5 when None), gradient straight through to p."""
    p = torch.sigmoid(logits)
    return sign_ste(p - (0.5 if u is None else u))


def nt_xent(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """Two views z1, z2 (B, K) -> the NT-Xent loss over the 2B anchors (scalar)."""
    Z = torch.cat((z1, z2))
    unit = Z / Z.norm(dim=1, keepdim=True).clamp_min(LOG_EPS)
    s = unit @ unit.T / temperature
    n = len(Z)
    s = s.masked_fill(torch.eye(n, dtype=torch.bool, device=Z.device), float("-inf"))
    positives = s[torch.arange(n), (torch.arange(n) + n // 2) % n]
    return (torch.logsumexp(s, dim=1) - positives).mean()


def bernoulli_kl(p: Tensor, q: Tensor) -> Tensor:
    """KL of Bernoulli(p) from Bernoulli(q), (B, K) each, summed over bits, mean over rows (the 1e-8 bounds it)."""
    terms = p * (torch.log(p + LOG_EPS) - torch.log(q + LOG_EPS)) + \
        (1 - p) * (torch.log(1 - p + LOG_EPS) - torch.log(1 - q + LOG_EPS))
    return terms.sum(dim=1).mean()


def cibhash_loss(logits1: Tensor, logits2: Tensor, temperature: float = 0.3, beta: float = 0.001,
                 u1: Tensor | None = None, u2: Tensor | None = None) -> Tensor:
    """Logits of the two views (B, K) each -> scalar; u1, u2 (B, K): the stochastic layer's draws (None: 0.5)."""
    p1, p2 = torch.sigmoid(logits1), torch.sigmoid(logits2)
    contrastive = nt_xent(cibhash_codes(logits1, u1), cibhash_codes(logits2, u2), temperature)
    return contrastive + beta * (bernoulli_kl(p1, p2.detach()) + bernoulli_kl(p2, p1.detach())) / 2


def cibhash_encode(logits: Tensor) -> Tensor:
    """Codes sign(l) (B, K) (= sign(sigmoid(l) - 0.5))."""
    return sign(logits)


class CIBHash(HashMethod):
    """CIBHash: with hidden > 0 the authors' head, Linear(D, hidden) (the hash layer, replaced by attach), ReLU,
    Linear(hidden, K) (the method's own layer), gives the logits; hidden = 0: the hash layer's outputs are the logits.
    It trains on two views of each image and never reads the labels."""

    name = "cibhash"
    unsupervised = True
    views = 2

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, temperature: float, beta: float,
                 stochastic: bool, hidden: int) -> None:
        super().__init__(hash_bit, num_classes, multi_label)
        check_number("temperature", temperature, strict=True, example=0.3)
        check_number("beta", beta, example=0.001)
        check_number("hidden", hidden, example=1024)
        self.temperature, self.beta, self.stochastic, self.hidden = temperature, beta, stochastic, int(hidden)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(self.hidden, hash_bit)) if hidden else nn.Identity()

    def attach(self, net: nn.Module, pretrained: bool, image_size: int | None) -> None:
        if self.hidden:
            net.hash_layer = nn.Linear(net.hash_layer.in_features, self.hidden)

    def forward(self, z: Tensor) -> Tensor:
        return self.head(z)

    def image_loss(self, h: Tensor, images: Tensor, backbone: nn.Module) -> Tensor:
        """h (2B, K): the logits of the first views, then of the second."""
        l1, l2 = h.chunk(2)
        u1, u2 = (torch.rand_like(l1), torch.rand_like(l2)) if self.stochastic else (None, None)
        return cibhash_loss(l1, l2, self.temperature, self.beta, u1, u2)
