"""Tests for hashnet.data.views: CIBHash's augmentation (specs/methods-unsupervised.md section 8) and samples of
several views."""
import torch
from torchvision.transforms import v2

from hashnet.data.views import Views, contrastive_transform


def steps(transform: v2.Compose) -> list[str]:
    return [type(step).__name__ + (f"[{type(step.transforms[0]).__name__}, p={step.p}]" if isinstance(
        step, v2.RandomApply) else "") for step in transform.transforms]


def test_the_spec_pipeline_blurs_only_from_224_px():
    at_32 = contrastive_transform(32, 32, normalize=False)
    assert steps(at_32)[2:] == ["RandomResizedCrop", "RandomHorizontalFlip", "RandomApply[ColorJitter, p=0.7]",
                                "RandomGrayscale", "ToPureTensor"]
    crop, jitter = at_32.transforms[2], at_32.transforms[4].transforms[0]
    assert crop.scale == (0.5, 1.0) and at_32.transforms[5].p == 0.2
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == ((0.6, 1.4), (0.6, 1.4), (0.6, 1.4),
                                                                                    (-0.1, 0.1))
    assert "RandomApply[GaussianBlur, p=0.5]" in steps(contrastive_transform(256, 224, normalize=True))


def test_views_are_independent_draws_of_one_image():
    image = torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    views = Views(contrastive_transform(40, 32, normalize=False), 2)(image)
    assert views.shape == (2, 3, 32, 32) and views.dtype == torch.uint8
    assert not torch.equal(views[0], views[1])
