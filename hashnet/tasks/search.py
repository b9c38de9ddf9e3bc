"""search(cfg): encode query images and list their nearest database images in a code file."""
from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, ListConfig
from torch import Tensor

from hashnet.data.images import read_image
from hashnet.inference.checkpoint import load_checkpoint
from hashnet.inference.encoding import eval_transform, images_to_codes, pick_device
from hashnet.outputs.plots import figure_to_array, retrieval_grid_figure
from hashnet.outputs.results import GRID_TOP, PNG_FILE, save_png, thumbnails
from hashnet.retrieval.codes import check_codes_checkpoint
from hashnet.retrieval.index import HammingIndex
from hashnet.retrieval.store import load_database
from hashnet.utils.errors import ConfigError, UnreadableFileError
from hashnet.utils.files import check_writable

log = logging.getLogger(__name__)


class QueryImageError(UnreadableFileError, FileNotFoundError):
    """A query image is missing or cannot be decoded."""


def query_paths(image: str | list[str]) -> list[Path]:
    """cfg.image (one path or a list of them) as existing files; QueryImageError names a missing one or a folder."""
    paths = [Path(str(p)) for p in (image if isinstance(image, (list, ListConfig)) else [image])]
    if not paths:
        raise ConfigError(f"image={list(image)}: no query image given -- pass image=PATH or image=[PATH,PATH]")
    for path in paths:
        if path.is_dir():
            raise QueryImageError(f"query image {path} is a folder -- pass image files: image={path}/<name>.png, or "
                                  "several as image=[PATH,PATH]")
        if not path.is_file():
            raise QueryImageError(f"query image {path} does not exist (image=PATH or image=[PATH,PATH])")
    return paths


def check_k(k: object) -> int:
    """k, the neighbours listed per query: ConfigError unless a positive integer."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"k={k!r}: it must be a positive integer, the neighbours listed per query -- pass e.g. k=10")
    return k


def indexed_thumbnails(paths: list[str], index: str) -> list:
    """thumbnails of indexed images; QueryImageError naming the code file when one is no longer on disk."""
    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        raise QueryImageError(f"indexed image {missing[0]} (in {index}) is not on disk: the grid draws the images "
                              "a code file lists -- run search from the folder encode ran in if its paths are "
                              "relative (older code files), or encode the database again (scripts/encode.py)")
    return thumbnails(paths)


def read_query(path: Path) -> Tensor:
    """The (3, H, W) uint8 RGB pixels of the image at path, decoded as training reads its images (read_image);
    QueryImageError naming the file when it cannot be decoded."""
    try:
        return read_image(path)
    except (OSError, SyntaxError, ValueError, RuntimeError) as err:  # PIL reports corrupt files as any of these
        raise QueryImageError(f"query image {path} cannot be read as an image ({err}) -- "
                              "pass a JPEG, PNG or WebP file: image=PATH") from err


def search(cfg: DictConfig) -> list[list[tuple[str, int]]]:
    """The top cfg.k (database path, Hamming distance) of each image in cfg.image, printed.

    grid: a PNG path where the queries and their top GRID_TOP are drawn.
    """
    k = check_k(cfg.k)
    queries = query_paths(cfg.image)  # every setting is checked before the checkpoint loads
    grid = check_writable(cfg.grid, "grid", "grid=results.png", PNG_FILE) if cfg.grid else None
    model = load_checkpoint(cfg.ckpt_path)
    net = model.hparams.net["backbone"]
    database = load_database(cfg.index, hash_bit=model.hash_bit, net=net, dataset=model.hparams.dataset)
    check_codes_checkpoint(database.meta, cfg.ckpt_path, cfg.index)
    transform = eval_transform(database.meta["resize_size"], database.meta["crop_size"])
    codes = images_to_codes(model, [read_query(path) for path in queries], transform, pick_device(cfg.device))
    distances, indices = HammingIndex(database.codes, cfg.backend).search(codes, k)
    found = [[(database.paths[i], int(d)) for d, i in zip(row_d, row_i)] for row_d, row_i in zip(distances, indices)]
    for path, results in zip(queries, found):
        lines = [f"  {rank:3d}  d={distance:<3d} {result}" for rank, (result, distance) in enumerate(results, 1)]
        log.info("%s: top %d of %d (%s/%s)\n%s", path, len(results), len(database), database.meta["dataset"],
                 database.meta["split"], "\n".join(lines))
    if grid is not None:
        figure = retrieval_grid_figure(thumbnails([str(p) for p in queries]),
                                       [indexed_thumbnails([p for p, _ in results[:GRID_TOP]], cfg.index)
                                        for results in found],
                                       distances[:, :GRID_TOP], captions=[p.name for p in queries])
        log.info("grid -> %s", save_png(figure_to_array(figure), grid))
    return found
