"""dataset.cache: built once, reused, rebuilt when the list changes, and the same tensors as decoding."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hashnet.data.cache import ImageCache
from hashnet.data.datamodule import BadImageError, HashDataModule

from conftest import datamodule

LINES = "".join(f"imgs/img{i}.jpg {int(i % 3 == 0)} {int(i % 3 == 1)} {int(i % 3 == 2)}\n" for i in range(6))


@pytest.fixture
def photos(tmp_path) -> Path:
    """Six noisy JPEGs of different sizes and a train/test/database list naming all of them."""
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    for i in range(6):
        pixels = rng.integers(0, 256, (30 + 5 * i, 40 + 3 * i, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "imgs" / f"img{i}.jpg", quality=90)
    for name in ("train.txt", "test.txt", "database.txt"):
        (tmp_path / name).write_text(LINES)
    return tmp_path


def module(root: Path, **overrides) -> HashDataModule:
    kwargs = dict(name="photos", root=str(root), num_classes=3, topk=None, resize_size=24, crop_size=20,
                  crop_scale=(0.3, 1.0), batch_size=2, eval_batch_size=4, num_workers=0, cache=True)
    return datamodule(**{**kwargs, **overrides})


def cache_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "cache").iterdir())


def test_cache_is_built_with_an_index(photos):
    module(photos).prepare_data()
    names = cache_files(photos)
    assert [n.split("-")[0] + n[n.index("."):] for n in names] == [
        "database.json", "database.npy", "query.json", "query.npy", "train.json", "train.npy"]
    pixels = np.load(photos / "cache" / names[1], mmap_mode="r")
    assert pixels.shape == (6, 3, 24, 24) and pixels.dtype == np.uint8
    index = json.loads((photos / "cache" / names[0]).read_text())
    assert index["paths"] == [str(photos / "imgs" / f"img{i}.jpg") for i in range(6)]
    assert index["unreadable"] == [] and index["size"] == 24 and names[0].startswith(f"database-{index['fingerprint'][:16]}")


def test_cache_is_reused_then_rebuilt_when_the_list_or_settings_change(photos, monkeypatch):
    module(photos).prepare_data()
    before = {p.name: p.stat().st_mtime_ns for p in (photos / "cache").iterdir()}
    built = []
    original = ImageCache.build
    monkeypatch.setattr(ImageCache, "build", lambda self, *a: built.append(self.split) or original(self, *a))
    module(photos).prepare_data()
    assert built == [] and {p.name: p.stat().st_mtime_ns for p in (photos / "cache").iterdir()} == before

    (photos / "test.txt").write_text(LINES.splitlines(keepends=True)[2] + LINES)  # one more query
    module(photos).prepare_data()
    assert built == ["query"]
    after = cache_files(photos)
    assert len(after) == 6 and [n for n in after if n.startswith("query-")] != [n for n in before if n.startswith("query-")]
    test_array = next(p for p in (photos / "cache").glob("query-*.npy"))
    assert np.load(test_array, mmap_mode="r").shape == (7, 3, 24, 24)

    module(photos, resize_size=28).prepare_data()  # another resize: every split again
    assert built == ["query", "train", "query", "database"]


@pytest.mark.parametrize("normalize_on_device", [True, False])
def test_cached_tensors_equal_decoded_tensors(photos, normalize_on_device):
    cached, decoded = (module(photos, cache=cache, normalize_on_device=normalize_on_device) for cache in (True, False))
    cached.prepare_data()
    for split in ("query", "database"):
        a, b = next(iter(cached.split_dataloader(split))), next(iter(decoded.split_dataloader(split)))
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    for seed in range(3):  # the same random crops and flips from the same seed
        torch.manual_seed(seed)
        a = [cached.dataset("train", train_transform=True)[i][0] for i in range(6)]
        torch.manual_seed(seed)
        b = [decoded.dataset("train", train_transform=True)[i][0] for i in range(6)]
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert a[0].shape == (3, 20, 20)


def test_unreadable_images_are_recorded_in_the_cache(photos):
    (photos / "imgs" / "img4.jpg").write_bytes(b"not an image")
    with pytest.raises(BadImageError, match=rf"cannot read image {photos}/imgs/img4.jpg"):
        module(photos).prepare_data()
    assert not list((photos / "cache").glob("*.json"))  # nothing half-built is left to be trusted
    skipping = module(photos, on_bad_image="skip")
    skipping.prepare_data()
    assert [index.tolist() for _, _, index in skipping.split_dataloader("query")] == [[0, 1, 2, 3], [5]]
    assert skipping.skipped_images == [f"{photos}/imgs/img4.jpg"]
