"""A dataset's raw files, found where they were put or downloaded with torchvision's downloader (its md5 checks).

What the CIFAR-10 and Fashion-MNIST builders share: each says where its files may already be, which files a folder
must hold, their URLs (mirrors tried in turn), and the one message that names what is missing and where to put it
when they cannot be fetched (offline, behind a proxy, a bad checksum, a read-only folder).
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from torchvision.datasets.utils import download_url

log = logging.getLogger(__name__)

Download = Callable[[Path], None]  # fetches the missing files into a folder
MissingError = Callable[[list[str], Exception], Exception]  # (the missing names, why fetching failed) -> the error


def download_missing(folder: Path, sources: dict[str, Sequence[tuple[str, str]]]) -> None:
    """Download each file of sources ({name: [(url, md5), ...]}) that folder lacks, trying its URLs in turn; a
    partial file is removed, and the last URL's failure raised."""
    for name, urls in sources.items():
        if (folder / name).is_file():
            continue
        for i, (url, md5) in enumerate(urls):
            log.info("downloading %s into %s", url, folder)
            try:
                download_url(url, str(folder), name, md5)
                break
            except Exception:
                with contextlib.suppress(OSError):
                    (folder / name).unlink(missing_ok=True)
                if i == len(urls) - 1:
                    raise


def fetch(folder: Path, names: Sequence[str], download: Download, missing_error: MissingError) -> Path:
    """folder once it holds every one of names: the missing ones are downloaded into it first (download(folder));
    if that fails, whatever it left of them is removed (a partial file would be taken for the file) and
    missing_error(missing names, the failure) raised."""
    missing = [name for name in names if not (folder / name).is_file()]
    if not missing:
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        download(folder)
        left = [name for name in missing if not (folder / name).is_file()]
        if left:
            raise FileNotFoundError(f"the download left no {', '.join(str(folder / name) for name in left)}")
    except Exception as err:  # offline, proxy, checksum, read-only folder: every failure means the same here
        for name in missing:
            with contextlib.suppress(OSError):
                (folder / name).unlink(missing_ok=True)
        raise missing_error(missing, err) from err
    return folder
