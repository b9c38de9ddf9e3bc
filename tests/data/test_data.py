"""Transforms, ImageDataset and HashDataModule (loaders, missing and unreadable images)."""
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from hashnet.data.builders import BUILDERS, Builder
from hashnet.data.dataset import Unreadable
from hashnet.data.datamodule import (
    BadImageError,
    HashDataModule,
    ImageDataset,
    ListFileError,
    MissingImagesError,
    collate_readable,
    normalize_pixels,
    read_image,
    read_list,
    transforms,
)
from hashnet.outputs.results import skipped_images
from hashnet.utils.errors import ConfigError

from conftest import datamodule

MEAN = torch.tensor([0.485, 0.456, 0.406])
STD = torch.tensor([0.229, 0.224, 0.225])


def digits_module(root: Path, **overrides) -> HashDataModule:
    """digits with identity-sized transforms (32 -> 32) and no worker processes."""
    kwargs = dict(name="digits", root=str(root), num_classes=10, topk=None, builder="digits",
                  resize_size=32, crop_size=32, batch_size=300, eval_batch_size=128, num_workers=0)
    return datamodule(**{**kwargs, **overrides})


def small_dataset(root: Path, entries: dict[str, str]) -> None:
    """Write 3-class lists {list name: text} under root and 8x8 RGB PNGs img0..img5.png."""
    (root / "imgs").mkdir(parents=True)
    for i in range(6):
        Image.new("RGB", (8, 8), (40 * i, 0, 255)).save(root / "imgs" / f"img{i}.png")
    for name, text in entries.items():
        (root / name).write_text(text)


def small_module(root: Path, **overrides) -> HashDataModule:
    kwargs = dict(name="small", root=str(root), num_classes=3, topk=None, resize_size=8, multi_label=True,
                  crop_size=8, batch_size=2, eval_batch_size=4, num_workers=0)
    return datamodule(**{**kwargs, **overrides})


def test_eval_transform_normalises_with_imagenet_statistics():
    out = transforms(36, 32, train=False)(Image.new("RGB", (50, 40), (255, 255, 255)))
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert torch.allclose(out, ((1 - MEAN) / STD)[:, None, None].expand(3, 32, 32))
    assert torch.allclose(out[:, 0, 0], torch.tensor([2.2489, 2.4286, 2.6400]), atol=1e-4)


def test_train_transform_steps():
    steps = transforms(256, 224, (0.5, 1.0), hflip=True, train=True).transforms
    assert [type(s) for s in steps] == [v2.ToImage, v2.Resize, v2.RandomResizedCrop, v2.RandomHorizontalFlip,
                                        v2.ToDtype, v2.Normalize, v2.ToPureTensor]
    assert steps[1].size == [256, 256] and steps[2].scale == (0.5, 1.0) and steps[2].size == (224, 224)
    no_flip = transforms(256, 224, (0.5, 1.0), hflip=False, train=True).transforms
    assert v2.RandomHorizontalFlip not in [type(s) for s in no_flip]
    assert transforms(36, 32, train=True)(Image.new("RGB", (20, 30))).shape == (3, 32, 32)
    raw = transforms(36, 32, train=True, normalize=False)(torch.zeros(3, 20, 30, dtype=torch.uint8))
    assert raw.shape == (3, 32, 32) and raw.dtype == torch.uint8 and type(raw) is torch.Tensor
    with pytest.raises(ValueError, match="crop_size 40 exceeds resize_size 32"):
        transforms(32, 40)


def test_dataset_sample(digits_root):
    images = read_list(digits_root / "test.txt", 10, root=digits_root)
    image, labels, index = ImageDataset(images, transforms(32, 32))[5]
    with Image.open(images.paths[5]) as png:
        grey = torch.from_numpy(np.array(png)).float() / 255
    assert torch.allclose(image, (grey - MEAN[:, None, None]) / STD[:, None, None], atol=1e-6)
    assert labels.dtype == torch.float32 and labels.tolist() == images.labels[5].tolist()
    assert index == 5


def test_train_loader_shuffles_full_batches(digits_root):
    module = digits_module(digits_root)
    module.prepare_data()
    module.setup("fit")
    loader = module.train_dataloader()
    assert len(loader) == 3  # 1000 images in batches of 300, the last 100 dropped
    labels = torch.from_numpy(read_list(digits_root / "train.txt", 10).labels).float()
    seen = []
    for images, batch_labels, index in loader:
        assert images.shape == (300, 3, 32, 32) and images.dtype == torch.uint8  # normalised on the device
        assert index.dtype == torch.int64 and batch_labels.shape == (300, 10)
        assert torch.equal(batch_labels, labels[index])
        seen.append(index)
    seen = torch.cat(seen)
    assert len(seen.unique()) == 900 and 0 <= seen.min() and seen.max() < 1000
    assert not torch.equal(seen, torch.arange(900))


def test_test_loaders_are_query_then_database_in_list_order(digits_root):
    module = digits_module(digits_root)
    module.setup("test")
    query, database = module.test_dataloader()
    batches = list(query)
    assert [len(index) for _, _, index in batches] == [128, 128, 44]
    assert torch.equal(torch.cat([index for _, _, index in batches]), torch.arange(300))
    expected = torch.from_numpy(read_list(digits_root / "test.txt", 10).labels).float()
    assert torch.equal(torch.cat([labels for _, labels, _ in batches]), expected)
    assert len(database) == 12 and len(database.dataset) == 1497
    train = module.split_dataloader("train")
    assert not train.drop_last and torch.equal(next(iter(train))[2], torch.arange(128))
    assert module.num_skipped == 0


def test_prepare_data_builds_when_lists_are_absent_and_rechecks_a_build(digits_root, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setitem(BUILDERS, "digits_multi", Builder(lambda root, size=1: calls.append((root, size))))
    digits_module(tmp_path / "new", builder="digits_multi").prepare_data()
    digits_module(tmp_path / "new", builder={"name": "digits_multi", "size": 3}).prepare_data()
    digits_module(digits_root, builder="digits_multi").prepare_data()  # built there: the builder checks its settings
    (tmp_path / "own").mkdir()
    for name in ("train.txt", "test.txt", "database.txt"):  # lists of one's own (no build marker): left alone
        (tmp_path / "own" / name).write_text((digits_root / name).read_text())
    digits_module(tmp_path / "own", builder="digits_multi").prepare_data()
    assert calls == [(tmp_path / "new", 1), (tmp_path / "new", 3), (digits_root, 1)]  # with the config's options
    (tmp_path / "none").mkdir()  # no lists and no builder: one line naming every missing list
    with pytest.raises(ListFileError, match=r"none: dataset=digits has no list files train.txt, test.txt, "
                                            r"database.txt here \(missing\) -- put them there"):
        digits_module(tmp_path / "none", builder=None).prepare_data()


def test_setup_reads_the_stage_splits(tmp_path):
    small_dataset(tmp_path, {"test.txt": "imgs/img0.png 1 0 0\n", "database.txt": "imgs/img1.png 0 1 0\n"})
    module = small_module(tmp_path)
    module.setup("test")  # testing needs no training list
    assert [len(loader) for loader in module.test_dataloader()] == [1, 1]
    with pytest.raises(ListFileError, match="train.txt: list file not found"):
        module.setup("fit")  # fitting validates on query and database: all three lists


def test_missing_images_of_every_split_are_counted_before_fitting(tmp_path):
    small_dataset(tmp_path, {"train.txt": "imgs/img0.png 1 0 0\nimgs/gone0.png 1 0 0\nimgs/img1.png 0 1 0\n",
                             "test.txt": "imgs/img2.png 0 0 1\n",
                             "database.txt": "imgs/img3.png 0 0 1\nimgs/gone1.png 0 1 0\nimgs/gone2.png 0 1 0\n"})
    with pytest.raises(MissingImagesError) as caught:
        small_module(tmp_path).setup("fit")
    message = str(caught.value)  # 3 + 1 + 3 = 7 images listed, gone0 (train) and gone1, gone2 (database) missing
    assert message.startswith("3 of 7 images named by the lists are missing, e.g.:\n"
                              f"  {tmp_path}/imgs/gone0.png  ({tmp_path}/train.txt:2: 'imgs/gone0.png')\n"
                              f"  {tmp_path}/imgs/gone1.png  ({tmp_path}/database.txt:2: 'imgs/gone1.png')\n")


def test_missing_images_are_reported_together(tmp_path):
    train = "imgs/img0.png 1 0 0\n" + "".join(f"imgs/gone{i}.png 0 1 0\n" for i in range(6))
    small_dataset(tmp_path, {"train.txt": train, "test.txt": "/elsewhere/q.png 0 0 1\n",
                             "database.txt": "imgs/img1.png 0 0 1\n"})
    with pytest.raises(MissingImagesError) as caught:
        small_module(tmp_path).setup()
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert message.startswith("7 of 9 images named by the lists are missing, e.g.:\n"
                              f"  {tmp_path}/imgs/gone0.png  ({tmp_path}/train.txt:2: 'imgs/gone0.png')\n")
    assert f"({tmp_path}/train.txt:6: 'imgs/gone4.png')" in message and "gone5" not in message
    assert f"dataset.root (now '{tmp_path}')" in message and "dataset.path_map" in message


def test_path_map_rewrites_absolute_list_paths(tmp_path):
    small_dataset(tmp_path, {"test.txt": "/old/place/img3.png 0 0 1\n",
                             "database.txt": "imgs/img4.png 0 1 1\n"})
    module = small_module(tmp_path, path_map={"/old/place/": f"{tmp_path}/imgs/"})
    module.setup("test")
    images, labels, index = next(iter(module.test_dataloader()[0]))
    assert images[0, :, 0, 0].tolist() == [120, 0, 255] and images.dtype == torch.uint8
    assert labels.tolist() == [[0, 0, 1]] and index.tolist() == [0]


@pytest.fixture
def corrupt_query(tmp_path) -> Path:
    """A query list of 6 images where entries 1 (not an image) and 4 (truncated PNG) are unreadable."""
    small_dataset(tmp_path, {"test.txt": "".join(f"imgs/img{i}.png 1 0 0\n" for i in range(6))})
    (tmp_path / "imgs" / "img1.png").write_bytes(b"not an image")
    truncated = tmp_path / "imgs" / "img4.png"
    Image.effect_noise((64, 64), 50).convert("RGB").save(truncated)  # noise: the pixel data exceeds 600 bytes
    truncated.write_bytes(truncated.read_bytes()[:600])
    return tmp_path


def test_unreadable_image_error_names_the_file(corrupt_query):
    loader = small_module(corrupt_query).split_dataloader("query")
    with pytest.raises(BadImageError, match=rf"cannot read image {corrupt_query}/imgs/img1.png "
                                            rf"\(listed at {corrupt_query}/test.txt:2\)"):
        next(iter(loader))


def test_skip_mode_drops_and_counts_unreadable_images(corrupt_query):
    module = small_module(corrupt_query, on_bad_image="skip")
    batches = [index.tolist() for _, _, index in module.split_dataloader("query")]
    assert batches == [[0, 2, 3], [5]]
    assert module.num_skipped == 2
    assert module.skipped_images == [f"{corrupt_query}/imgs/img1.png", f"{corrupt_query}/imgs/img4.png"]
    assert skipped_images(module) == {"count": 2, "names": module.skipped_images}  # as metrics.json holds them


def test_skipped_images_are_logged_by_name_once(corrupt_query, caplog):
    module = small_module(corrupt_query, on_bad_image="skip")
    with caplog.at_level(logging.WARNING, logger="hashnet.data.datamodule"):
        for _ in range(2):  # two epochs: each image is named once
            list(module.split_dataloader("query"))
    named = [record.getMessage() for record in caplog.records]
    assert len(named) == 2
    assert named[0].startswith(f"skipping unreadable image {corrupt_query}/imgs/img1.png (listed at {corrupt_query}"
                               "/test.txt:2): ")
    assert named[1].startswith(f"skipping unreadable image {corrupt_query}/imgs/img4.png (listed at {corrupt_query}"
                               "/test.txt:5): ")


def test_collate_refuses_an_all_unreadable_batch():
    with pytest.raises(BadImageError, match="all 2 images of a batch are unreadable"):
        collate_readable([Unreadable(0, "OSError: torn"), Unreadable(1, "OSError: torn")])


@pytest.mark.parametrize("key, value, message", [
    ("builder", "mnist", r"dataset.builder='mnist': it must be one of \[None, 'cifar10'.*'digits'.*\] -- pass e.g. "
                         r"dataset.builder=cifar10"),
    ("on_bad_image", "ignore", r"dataset.on_bad_image='ignore': it must be one of \['error', 'skip'\]"),
    ("val", "train", r"dataset.val='train': it must be one of \['test', 'heldout'\]"),
    ("batch_size", 1, r"dataset.batch_size=1: it must be an integer >= 2 \(a pairwise loss needs 2 images a batch"),
    ("num_workers", -1, r"dataset.num_workers=-1: it must be an integer >= 0 -- pass e.g. dataset.num_workers=4"),
    ("crop_size", 40, r"dataset.crop_size=40: it must be at most dataset.resize_size=32 .* dataset.crop_size=32"),
    ("crop_scale", [1.5, 0.1], r"dataset.crop_scale=\[1.5, 0.1\]: it must be \[min, max\] area fractions with "
                               r"0 < min <= max <= 1 -- pass e.g. dataset.crop_scale=\[0.08,1.0\]"),
    ("crop_scale", "abc", r"dataset.crop_scale='abc': it must be \[min, max\]"),
    ("topk", 0, r"dataset.topk=0: it must be a positive integer, null \(mAP over the whole database\) or a list of "
                r"them -- pass e.g. dataset.topk=1000"),
    ("topk", "abc", r"dataset.topk='abc'"),
    ("ties", "random", r"dataset.ties='random': it must be one of \['index', 'average'\]"),
    ("val_fraction", 1.5, r"dataset.val_fraction=1.5: it must be a fraction between 0 and 1"),
])
def test_bad_arguments_name_the_key_and_a_valid_value(key, value, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        digits_module(tmp_path, **{key: value})


def test_a_training_list_shorter_than_a_batch(tmp_path):
    small_dataset(tmp_path, {name: "imgs/img0.png 1 0 0\n" for name in ("train.txt", "test.txt", "database.txt")})
    with pytest.raises(ConfigError, match="dataset.batch_size=2: .*train.txt has 1 images, less than one batch"):
        small_module(tmp_path).train_dataloader()
    with pytest.raises(ConfigError, match="dataset.batch_size=2: the training list .*train.txt has 1 images, less than "
                                          "one batch of 2 -- a batch needs 2 images"):
        small_module(tmp_path).setup("fit")  # as train() does, before the model is built


def test_device_normalisation_gives_the_worker_tensors(digits_root):
    """normalize_on_device=False yields the floats that normalize_pixels makes of the uint8 batch."""
    on_device = digits_module(digits_root).split_dataloader("query")
    in_workers = digits_module(digits_root, normalize_on_device=False).split_dataloader("query")
    (pixels, _, _), (floats, _, _) = next(iter(on_device)), next(iter(in_workers))
    assert pixels.dtype == torch.uint8 and floats.dtype == torch.float32
    assert torch.equal(normalize_pixels(pixels), floats)
    assert torch.allclose(floats, (pixels.float() / 255 - MEAN[:, None, None]) / STD[:, None, None], atol=1e-6)


def test_read_image_decodes_jpeg_png_and_other_formats_alike(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    for suffix in ("png", "bmp", "jpg"):
        Image.fromarray(pixels).save(tmp_path / f"a.{suffix}")
        with Image.open(tmp_path / f"a.{suffix}") as image:
            expected = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
        assert torch.equal(read_image(str(tmp_path / f"a.{suffix}")), expected), suffix
