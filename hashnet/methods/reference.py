"""Methods that copy a reference similarity into the codes (BiHalf, GreedyHash-unsupervised; specs:
methods-unsupervised.md section 5, "This project's reference"), trained on images alone.

reference "pixels" (default, our adaptation: no pretrained weights here): f = the training batch exactly as the net
receives it (augmented, normalised), flattened, minus mu, the mean of the training images under the evaluation
transform and the same normalisation (reference_centre=true; computed once before training: set_reference_mean).
Centred, random pairs have cosines of mean about 0, as balanced codes do. "backbone": the authors' arrangement, f =
the backbone's pooled features of the batch, detached (right with a pretrained, frozen backbone; from scratch the
target moves with the net).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from hashnet.data.images import normalize_pixels
from hashnet.methods.base import HashMethod
from hashnet.utils.errors import check_choice

REFERENCES = ("pixels", "backbone")


class ReferenceMethod(HashMethod):
    """A method whose loss is reference_loss(h, f) with f the batch's reference (module docstring)."""

    unsupervised = True

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, reference: str,
                 reference_centre: bool) -> None:
        super().__init__(hash_bit, num_classes, multi_label)
        check_choice("method.reference", reference, REFERENCES)
        self.reference, self.reference_centre = reference, reference_centre
        self.register_buffer("reference_mean", torch.zeros(0))

    @property
    def needs_reference_mean(self) -> bool:
        return self.reference == "pixels" and self.reference_centre

    def attach(self, net: nn.Module, pretrained: bool, image_size: int) -> None:
        """mu's place: 3 * image_size^2 numbers (filled by set_reference_mean before training)."""
        if self.needs_reference_mean:
            self.reference_mean = torch.zeros(3 * image_size * image_size)

    def set_reference_mean(self, mean: Tensor) -> None:
        """mu (3 H W,): the mean of the normalised, flattened training images under the evaluation transform."""
        self.reference_mean.copy_(mean)

    def reference_loss(self, h: Tensor, f: Tensor) -> Tensor:
        """Codes h (B, K), reference f (B, D) -> scalar."""
        raise NotImplementedError

    def image_loss(self, h: Tensor, images: Tensor, backbone: nn.Module) -> Tensor:
        if self.reference == "backbone":
            with torch.no_grad():
                f = backbone(normalize_pixels(images) if images.dtype == torch.uint8 else images).flatten(1)
        else:
            f = (normalize_pixels(images) if images.dtype == torch.uint8 else images).flatten(1).to(h.dtype)
            if self.needs_reference_mean:
                f = f - self.reference_mean.to(f.dtype)
        return self.reference_loss(h, f)
