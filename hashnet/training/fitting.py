"""What a method computes from the data without a training step: a fitted method's closed-form fit (hashnet.methods.
fitted) on the features of its fit split, written into the model (fit_method); a reference method's pixel mean mu,
before it trains (centre_reference, hashnet.methods.reference).

fit_features runs the net's backbone (PixelFeatures on pixels) in eval mode on a loader of (images, labels, index)
batches, the labels unread; with method.features=<checkpoint> the backbone first takes that checkpoint's weights.
"""
from __future__ import annotations

import logging
import time

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from hashnet.data.images import normalize_pixels
from hashnet.methods.reference import ReferenceMethod
from hashnet.training.checkpoints import read_checkpoint
from hashnet.training.module import HashingModule
from hashnet.utils.errors import ConfigError

log = logging.getLogger(__name__)

BACKBONE = "net.backbone."  # the prefix of a HashingModule checkpoint's backbone weights


@torch.no_grad()
def fit_features(backbone: nn.Module, loader: DataLoader) -> Tensor:
    """The backbone's outputs on every image of loader, in order: (n, d) float64 (run where the backbone is: the
    CPU before the Trainer moves the model)."""
    was_training = backbone.training
    backbone.eval()
    rows = []
    for images, _, _ in loader:
        if images.dtype == torch.uint8:
            images = normalize_pixels(images)
        rows.append(backbone(images).flatten(1).double().cpu())
    backbone.train(was_training)
    return torch.cat(rows)


def load_backbone(backbone: nn.Module, path: str) -> None:
    """The backbone weights of the checkpoint at path (a HashingModule's, of the same net) into backbone."""
    state = read_checkpoint(path, fix="pass method.features=<a run's checkpoints/last.ckpt>")["state_dict"]
    weights = {key[len(BACKBONE):]: value for key, value in state.items() if key.startswith(BACKBONE)}
    try:
        backbone.load_state_dict(weights)
    except RuntimeError as err:
        raise ConfigError(f"method.features={path}: its backbone does not fit this net ({str(err).splitlines()[0]}) "
                          "-- pass the net it was trained with (net=<its net>)") from err


def fit_method(model: HashingModule, loader: DataLoader, seed: int) -> None:
    """Fit model's method on the features of loader's images (its fit split) and write it into the model.

    seed: the run's, used unless method.seed is set.
    """
    method = model.method
    source = method.feature_source(model.hparams.net["pretrained"])
    if source not in ("pixels", "backbone"):
        load_backbone(model.net.backbone, source)
    started = time.perf_counter()
    X = fit_features(model.net.backbone, loader)
    method.load_fit(model.net.hash_layer, X, seed if method.seed is None else method.seed)
    log.info("%s fitted on %d x %d features (%s, %s split) in %.1f s, no optimiser step", method.name, *X.shape,
             source, method.fit_on, time.perf_counter() - started)


def centre_reference(model: HashingModule, loader: DataLoader) -> None:
    """Set a reference method's mu to the mean of loader's images (the training split under the evaluation
    transform), normalised and flattened; other methods are left alone."""
    if isinstance(model.method, ReferenceMethod) and model.method.needs_reference_mean:
        model.method.set_reference_mean(fit_features(nn.Flatten(), loader).mean(dim=0))
