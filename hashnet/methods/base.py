"""What every hashing method implements (the shared math is in hashnet.methods.common).

A method sits on top of the network's hash layer (hashnet.nets.HashEncoder: images -> z (N, K)). It
owns its code layer (z -> continuous codes h, whose signs are the binary codes), its loss on a training
batch, any state of its own (buffers and parameters, saved with the checkpoint; its parameters train at
the hash layer's learning rate) and the callbacks it needs. Its constructor arguments are the keys of
`configs/method/<name>.yaml` (less `name`), plus hash_bit, num_classes and multi_label, which the training
module passes from the net and the dataset; it checks them itself, naming `method.<key>`.

A subclass in this package that sets `name` registers itself in METHODS, the registry that builds methods from their
configs (`build_method`) and that the report, the benchmarks and the tests list methods from.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np
import pytorch_lightning as pl
from torch import Tensor, nn

from hashnet.methods.bank import MemoryBank
from hashnet.methods.common import PAIRS, split_pairs
from hashnet.utils.errors import check_choice

METHODS: dict[str, type[HashMethod]] = {}


class HashMethod(nn.Module):
    """A hashing method: code layer (forward), loss, own state and callbacks. Subclasses set `name`."""

    name: ClassVar[str]
    fitted: ClassVar[bool] = False  # fitted in closed form on features, no loss (hashnet.methods.fitted)
    unsupervised: ClassVar[bool] = False  # never reads the training labels: its loss is image_loss, on images alone
    views: ClassVar[int] = 1  # augmented views of each training image a batch holds (hashnet.data.views)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and cls.__module__.startswith("hashnet.methods."):  # not a test's stand-in
            METHODS[cls.name] = cls

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool) -> None:
        super().__init__()
        self.hash_bit, self.num_classes, self.multi_label = hash_bit, num_classes, multi_label

    def forward(self, z: Tensor) -> Tensor:
        """Code layer: hash-layer outputs z (N, K) -> continuous codes h (N, K). Default: none (h = z)."""
        return z

    def loss(self, h: Tensor, labels: Tensor) -> Tensor:
        """Scalar loss of a training batch: h (B, K) from forward, labels (B, C) 0/1."""
        raise NotImplementedError

    def training_loss(self, h: Tensor, labels: Tensor, index: Tensor) -> Tensor:
        """The loss a training step minimises, given also the batch's dataset positions index (B,) (this process's
        rows): loss(h, labels), unless a method with per-image state (ADSH's own database codes) overrides it."""
        return self.loss(h, labels)

    def image_loss(self, h: Tensor, images: Tensor, backbone: nn.Module) -> Tensor:
        """An unsupervised method's loss: h (V*B, K) the codes of the batch's images (V*B, 3, H, W), its V views one
        after another; backbone: the net's, for a method that compares features. The labels never reach it."""
        raise NotImplementedError

    def attach(self, net: nn.Module, pretrained: bool, image_size: int | None) -> None:
        """Adapt to the net it sits on (HashEncoder; net.pretrained; the input size) when the model is built, before
        weights are loaded: a fitted method on pixels replaces its backbone. Default: nothing."""

    @property
    def observes(self) -> bool:
        """Whether the method wants every training batch of every process through observe() (a memory bank)."""
        return False

    def observe(self, h: Tensor, labels: Tensor, index: Tensor) -> None:
        """See the codes h (B, K), labels (B, C) and dataset positions index (B,) of a training step, every process's
        (called before training_loss() when observes is true; default: nothing). State updated here from the
        gathered batch (a memory bank, DSDH's W, DFH's centres) is the same on every process."""

    def callbacks(self) -> list[pl.Callback]:
        """Callbacks the method needs during training (e.g. a schedule, ADSH's epoch-end update of its database
        codes); none by default."""
        return []

    @classmethod
    def resolve(cls, config: dict, train_labels: Callable[[], np.ndarray]) -> dict:
        """config with its data-dependent values computed from the training labels (N, C) (default: as is).

        Runs once before the method is built, so the numbers, not placeholders, reach the checkpoint.
        """
        return config


class PairwiseMethod(HashMethod):
    """A method whose loss compares two sets of codes: pair_loss(u1, u2, y1, y2, **settings).

    pairs: "halves" (the first half of a batch against the second, as HashNet's two streams), "all" (the batch
    against itself, i == j included) or "bank" (the batch against a memory bank of every training image's latest
    codes, hashnet.methods.bank; bank_size, the training set's size, is filled in by resolve()). With the bank a
    loss whose `regularizes` is true regularises the batch only (pair_loss's regularize_u2=False). Subclasses set
    `pair_loss` and pass their own settings; one with state of its own updated from every process's batch (DSDH's W,
    DFH's centres) sets `keeps_state` and writes it in observe_state(), which observe() calls after the bank's write.
    """

    pair_loss: ClassVar[Callable[..., Tensor]]
    regularizes: ClassVar[bool] = True  # pair_loss takes regularize_u2
    keeps_state: ClassVar[bool] = False  # observe_state() updates the method's own state: observe every batch

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, pairs: str, bank_size: int | None = None,
                 **settings: float | None) -> None:
        super().__init__(hash_bit, num_classes, multi_label)
        check_choice("method.pairs", pairs, PAIRS)
        self.pairs, self.settings = pairs, settings
        self.bank = MemoryBank(bank_size, hash_bit, num_classes) if pairs == "bank" else None

    @property
    def observes(self) -> bool:
        return self.bank is not None or self.keeps_state

    def observe(self, h: Tensor, labels: Tensor, index: Tensor) -> None:
        if self.bank is not None:
            self.bank.write(h, labels, index)
        self.observe_state(h, labels, index)

    def observe_state(self, h: Tensor, labels: Tensor, index: Tensor) -> None:
        """Update the method's own state from every process's batch, as observe() (after the bank's write); default:
        nothing."""

    def loss(self, h: Tensor, labels: Tensor) -> Tensor:
        if self.bank is None:
            return type(self).pair_loss(*split_pairs(h, labels, self.pairs), **self.settings)
        bank_codes, bank_labels = self.bank.read()
        extra = {"regularize_u2": False} if self.regularizes else {}
        return type(self).pair_loss(h, bank_codes.to(h.dtype), labels, bank_labels, **self.settings, **extra)

    def coded_pair_loss(self, h: Tensor, labels: Tensor, b: Tensor) -> Tensor:
        """pair_loss(u1, u2, y1, y2, b1, b2, **settings) for a loss with a discrete target b (B, K) per row (DSDH,
        DFH): b split as h is; against the bank b2 is None (the bank's rows have no target)."""
        if self.bank is None:
            u1, u2, y1, y2 = split_pairs(h, labels, self.pairs)
            b1, b2, _, _ = split_pairs(b, labels, self.pairs)
            return type(self).pair_loss(u1, u2, y1, y2, b1, b2, **self.settings)
        bank_codes, bank_labels = self.bank.read()
        return type(self).pair_loss(h, bank_codes.to(h.dtype), labels, bank_labels, b, None, **self.settings)

    @classmethod
    def resolve(cls, config: dict, train_labels: Callable[[], np.ndarray]) -> dict:
        """pairs=bank: bank_size = the number of training images."""
        config = super().resolve(config, train_labels)
        return {**config, "bank_size": len(train_labels())} if config.get("pairs") == "bank" else config


def build_method(config: dict, hash_bit: int, num_classes: int, multi_label: bool) -> HashMethod:
    """The method METHODS[config["name"]] built from the other keys of config (configs/method/<name>.yaml)."""
    settings = dict(config)
    name = settings.pop("name", None)
    check_choice("method.name", name, tuple(METHODS))
    return METHODS[name](hash_bit=hash_bit, num_classes=num_classes, multi_label=multi_label, **settings)
