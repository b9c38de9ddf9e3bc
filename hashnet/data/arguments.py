"""The DataModule's settings, checked before anything is read: each is refused with its dataset.<key>, the value and
a valid one (configs/base/dataset.yaml gives the defaults and their reasons)."""
from __future__ import annotations

from typing import Any, Sequence

from hashnet.data.builders import check_builder
from hashnet.data.dataset import BAD_IMAGE_MODES
from hashnet.data.protocol import check_conventions
from hashnet.utils.errors import ConfigError, check_choice

VAL_MODES = ("test", "heldout")  # validation on the test queries (the original) or on held-out training rows


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _refuse(key: str, value: Any, must_be: str, example: str) -> ConfigError:
    return ConfigError(f"dataset.{key}={value!r}: it must be {must_be} -- pass e.g. dataset.{key}={example}")


def check_topk(topk: Any) -> None:
    """R of mAP@R: a positive integer, null (the whole database), or a list of them."""
    values = topk if isinstance(topk, (list, tuple)) else [topk]
    if not values or not all(value is None or (_integer(value) and value > 0) for value in values):
        raise _refuse("topk", topk, "a positive integer, null (mAP over the whole database) or a list of them", "1000")


def check_arguments(*, topk: Any, ties: str, empty_queries: str, builder: Any, resize_size: Any, crop_size: Any,
                    crop_scale: Sequence[float], batch_size: Any, eval_batch_size: Any, num_workers: Any, val: str,
                    val_fraction: Any, on_bad_image: str) -> None:
    """ConfigError for the first dataset setting that would fail later or silently."""
    check_topk(topk)
    check_conventions(ties, empty_queries, prefix="dataset.")
    check_builder(builder)
    check_choice("dataset.val", val, VAL_MODES)
    check_choice("dataset.on_bad_image", on_bad_image, BAD_IMAGE_MODES)
    for key, value, minimum, example, why in (
            ("batch_size", batch_size, 2, "72", " (a pairwise loss needs 2 images a batch, BatchNorm 2 a statistic)"),
            ("eval_batch_size", eval_batch_size, 1, "256", ""), ("resize_size", resize_size, 1, "256", ""),
            ("crop_size", crop_size, 1, "224", ""), ("num_workers", num_workers, 0, "4", "")):
        if not _integer(value) or value < minimum:
            raise _refuse(key, value, f"an integer >= {minimum}{why}", example)
    if crop_size > resize_size:
        raise _refuse("crop_size", crop_size, f"at most dataset.resize_size={resize_size} (the crop is cut from the "
                      "resized image)", str(resize_size))
    scale = list(crop_scale) if isinstance(crop_scale, Sequence) and not isinstance(crop_scale, str) else crop_scale
    numbers = isinstance(scale, list) and len(scale) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in scale)
    if not numbers or not 0 < scale[0] <= scale[1] <= 1:
        raise _refuse("crop_scale", scale, "[min, max] area fractions with 0 < min <= max <= 1", "[0.08,1.0]")
    if not isinstance(val_fraction, (int, float)) or isinstance(val_fraction, bool) or not 0 < val_fraction < 1:
        raise _refuse("val_fraction", val_fraction, "a fraction between 0 and 1", "0.05")
