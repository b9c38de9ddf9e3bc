"""Benchmark the input pipeline: images/second through a DataLoader, ours against the original's.

The baseline is what HashNet's public release did for every image: PIL open + convert("RGB"),
Resize((256, 256)), RandomResizedCrop(224) + RandomHorizontalFlip (train) or CenterCrop(224)
(test), ToTensor, Normalize, in a plain DataLoader whose workers restart every pass. Ours is
HashDataModule: torchvision.io decoding, v2 transforms on uint8 tensors, persistent workers, in
three settings: "ours" (normalize_on_device=false: workers normalise, the right choice on a CPU),
"ours uint8" (the default: uint8 batches, normalised by normalize_pixels in the consuming process,
counted in the time; on a GPU this runs on the device) and "ours+cache" (as ours, with
dataset.cache=true: the resized images memory-mapped, no JPEG decoding).

The images are generated once: random crops of the photos scikit-learn ships (427x640), resized
to about 500x375 (ImageNet's typical size) and saved as JPEG quality 90. Every variant runs in
each round, rounds interleave, and medians are reported, so load changes hit all of them.

    python scripts/bench_data.py                       # 2,000 images, 2 workers, 3 rounds
    python scripts/bench_data.py --images 4000 --rounds 5
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from omegaconf import OmegaConf
from PIL import Image
from sklearn.datasets import load_sample_images
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from hashnet.data.datamodule import HashDataModule, normalize_pixels

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLASSES = 10


def make_images(folder: Path, count: int, seed: int = 0) -> None:
    """count JPEGs of about 500x375 cut from scikit-learn's sample photos, and train/test/database lists."""
    if (folder / "train.txt").is_file() and len((folder / "train.txt").read_text().splitlines()) == count:
        return
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = [Image.fromarray(p) for p in load_sample_images().images]
    lines = []
    for i in range(count):
        photo = photos[i % len(photos)]
        w, h = int(rng.integers(200, photo.width)), int(rng.integers(150, photo.height))
        x, y = int(rng.integers(0, photo.width - w + 1)), int(rng.integers(0, photo.height - h + 1))
        size = (int(rng.integers(470, 531)), int(rng.integers(350, 401)))
        image = photo.crop((x, y, x + w, y + h)).resize(size, Image.BICUBIC)
        if rng.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        image.save(folder / "images" / f"{i:05d}.jpg", quality=90)
        label = np.eye(CLASSES, dtype=int)[rng.integers(CLASSES)]
        lines.append(f"images/{i:05d}.jpg {' '.join(map(str, label))}\n")
    for name in ("test.txt", "database.txt"):  # the benchmark times train.txt only: keep these short
        (folder / name).write_text("".join(lines[:100]))
    (folder / "train.txt").write_text("".join(lines))  # last: its presence means the folder is complete


class BaselineDataset(Dataset):
    """The original's ImageList: PIL open + convert("RGB") + torchvision transforms, float output."""

    def __init__(self, paths: list[str], train: bool) -> None:
        crop = [T.RandomResizedCrop(224), T.RandomHorizontalFlip()] if train else [T.CenterCrop(224)]
        self.paths = paths
        self.transform = T.Compose([T.Resize((256, 256)), *crop, T.ToTensor(), T.Normalize(MEAN, STD)])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        with Image.open(self.paths[index]) as image:
            return self.transform(image.convert("RGB"))


def images_per_second(loader: DataLoader, batches: int, finish: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """Time a pass over the first batches of a new iterator of loader (images passed through finish)."""
    start, count = time.perf_counter(), 0
    for batch in itertools.islice(loader, batches):
        images = finish(batch[0] if isinstance(batch, (list, tuple)) else batch)
        count += len(images)
    return count / (time.perf_counter() - start)


def compare_outputs(paths: list[str], ours: HashDataModule, n: int = 64) -> None:
    """Print how far our samples (ours: a module yielding uint8) are from the baseline's on the same n images.

    Train samples use the same seed per image in both pipelines: torchvision's v1 and v2
    RandomResizedCrop and RandomHorizontalFlip draw the same random numbers in the same order, so
    both cut the same box and flip alike, and any difference is the resize kernel's rounding.
    """
    std = torch.tensor(STD)[:, None, None]
    for train in (False, True):
        baseline, mine = BaselineDataset(paths[:n], train), ours.dataset("train", train)
        pairs = []
        for i in range(n):
            torch.manual_seed(i)
            theirs = baseline[i]
            torch.manual_seed(i)
            pairs.append((theirs, normalize_pixels(mine[i][0])))
        theirs, mine_ = (torch.stack(side) for side in zip(*pairs))
        levels = (theirs - mine_).abs() * std * 255  # back to 8-bit pixel levels
        print(f"  {'train' if train else 'test '} transform, {n} images: shapes {tuple(theirs.shape[1:])} "
              f"vs {tuple(mine_.shape[1:])}; |ours - baseline| in pixel levels: mean {levels.mean():.3f}, "
              f"max {levels.max():.2f}; channel means {theirs.mean((0, 2, 3)).numpy().round(3)} vs "
              f"{mine_.mean((0, 2, 3)).numpy().round(3)}, stds {theirs.std((0, 2, 3)).numpy().round(3)} vs "
              f"{mine_.std((0, 2, 3)).numpy().round(3)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=72)
    parser.add_argument("--batches", type=int, default=10, help="batches timed per pass")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "hashnet_bench_data")
    args = parser.parse_args()
    make_images(args.folder, args.images)
    base = OmegaConf.to_container(OmegaConf.load(CONFIGS / "base" / "dataset.yaml"))  # the DataModule's defaults
    settings = {**{key: value for key, value in base.items() if key not in ("defaults", "_target_")},
                "name": "bench", "root": str(args.folder), "num_classes": CLASSES, "topk": None,
                "batch_size": args.batch_size, "eval_batch_size": args.batch_size, "num_workers": args.workers}
    ours = HashDataModule(**{**settings, "normalize_on_device": False})
    on_device = HashDataModule(**{**settings, "normalize_on_device": True})
    cached = HashDataModule(**{**settings, "normalize_on_device": False, "cache": True})
    start = time.perf_counter()
    cached.prepare_data()
    print(f"{args.images} JPEGs in {args.folder}; cache built in {time.perf_counter() - start:.1f} s "
          f"(once per list and resize setting)")
    paths = ours.dataset("train").image_list.paths
    compare_outputs(paths, on_device, n=min(64, len(paths)))

    def baseline_loader(train: bool) -> DataLoader:  # the original built a new loader, so new workers, per epoch
        return DataLoader(BaselineDataset(paths, train), batch_size=args.batch_size, shuffle=train,
                          num_workers=args.workers)

    variants: dict[tuple[str, bool], tuple[Callable[[], DataLoader], Callable]] = {}
    for train in (True, False):
        variants[("baseline", train)] = (lambda train=train: baseline_loader(train), lambda x: x)
        for name, module in (("ours", ours), ("ours uint8", on_device), ("ours+cache", cached)):
            loader = module.train_dataloader() if train else module.split_dataloader("train")
            finish = normalize_pixels if module is on_device else (lambda x: x)
            variants[(name, train)] = (lambda loader=loader: loader, finish)
    for make, finish in variants.values():  # warm-up: page cache, persistent workers started
        images_per_second(make(), 2, finish)
    speeds: dict[tuple[str, bool], list[float]] = {key: [] for key in variants}
    for _ in range(args.rounds):
        for key, (make, finish) in variants.items():
            speeds[key].append(images_per_second(make(), args.batches, finish))
    print(f"\nimages/s, median of {args.rounds} interleaved rounds, {args.workers} workers, batch {args.batch_size}, "
          f"{torch.get_num_threads()} torch threads in the main process:")
    for train in (True, False):
        base = statistics.median(speeds[("baseline", train)])
        row = "  ".join(f"{name} {statistics.median(speeds[(name, train)]):7.1f} "
                        f"({statistics.median(speeds[(name, train)]) / base:.2f}x)"
                        for name in ("ours", "ours uint8", "ours+cache"))
        print(f"  {'train' if train else 'test '} transform: baseline {base:7.1f}  {row}")


if __name__ == "__main__":
    main()
