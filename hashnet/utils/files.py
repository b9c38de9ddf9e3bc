"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one.

The temporary file is `.<name>.<pid>@<host>.<random>.tmp` beside the target. A failed write removes it; a
process killed mid-write cannot, so the next write of the same target on the same host removes the
temporary files of processes that are gone. A full disk or a folder that cannot be written is reported as
a FileWriteError naming the file (the old file is left as it was).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from hashnet.utils.errors import DISK_FULL, NOT_PERMITTED, ConfigError, UserError, chain


class FileWriteError(UserError, OSError):
    """A file could not be written: the disk is full, or its folder cannot be written. The old file is unchanged."""

    def __init__(self, message: str, err: OSError) -> None:
        super().__init__(message)
        self.errno, self.strerror, self.filename = err.errno, err.strerror, err.filename

    def __str__(self) -> str:
        return str(self.args[0])  # not OSError's "[Errno 28] ..."


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def process_alive(pid: int) -> bool:
    """Whether process pid of this host is running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files of atomic writes of path left by processes of this host that are gone."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)@(.+)\.[A-Za-z0-9_]+\.tmp$")
    removed = []
    for stray in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        match = pattern.match(stray.name)
        if match and match.group(2) == socket.gethostname() and not process_alive(int(match.group(1))):
            stray.unlink(missing_ok=True)
            removed.append(stray)
    return removed


def glob_escape(name: str) -> str:
    """name with glob's special characters escaped."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def write_problem(err: OSError, path: Path, fix: str) -> FileWriteError | None:
    """A FileWriteError naming path for a full disk or a folder that cannot be written (err.errno), else None."""
    if err.errno in DISK_FULL:
        return FileWriteError(f"the disk is full: {path} could not be written ({err.strerror}); the previous file "
                              f"is unchanged -- free space on that disk, or {fix}", err)
    if err.errno in NOT_PERMITTED:
        return FileWriteError(f"cannot write {path} ({err.strerror}) -- make {path.parent} writable, or {fix}", err)
    return None


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any], fix: str = "write elsewhere") -> Path:
    """Call write(f) on a temporary file beside path, fsync it, then rename it over path.

    A full disk or an unwritable folder raises FileWriteError (fix: how else to get the file, e.g. "pass
    out=<another path>"); the temporary file is removed and the previous file, if any, is left as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}@{socket.gethostname()}.",
                                   suffix=".tmp")
    except OSError as err:
        raise write_problem(err, path, fix) or err
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if not isinstance(err, FileWriteError):
            for cause in chain(err):  # torch.save, for one, wraps the OSError of a full disk in a RuntimeError
                problem = write_problem(cause, path, fix) if isinstance(cause, OSError) else None
                if problem is not None:
                    raise problem from err
        raise
    return path


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Write data as indented JSON, atomically."""
    return atomic_write(path, lambda f: f.write(json.dumps(data, indent=2).encode() + b"\n"))


# what a writer may replace: (what it writes, in words, e.g. "a code file"; whether an existing file is one)
Replaceable = tuple[str, Callable[[Path], bool]]

CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")


def refuse_overwrite(path: str | Path, key: str, example: str, replaces: Replaceable) -> None:
    """The one guard against writing over something the user made: ConfigError naming key when path is an existing
    file that is not of the kind this writer writes (replaces: its name and a test), e.g. a checkpoint given as a
    code file's out=. Nothing is written or removed."""
    path = Path(path)
    kind, is_kind = replaces
    if path.is_file() and not is_kind(path):
        raise ConfigError(f"{key}={path} is {what_is(path)}, not {kind}: refusing to write over it -- pass another "
                          f"{key}, e.g. {example}")


def what_is(path: Path) -> str:
    """An existing file in a few words, for refuse_overwrite: a checkpoint (by suffix or a torch archive), else its
    size."""
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        return "a checkpoint"
    try:
        with zipfile.ZipFile(path) as archive:
            if any(name.endswith("/data.pkl") for name in archive.namelist()):
                return "a checkpoint (a torch archive)"
    except (OSError, zipfile.BadZipFile):
        pass
    return f"an existing file ({path.stat().st_size:,} bytes)"


_SHA256: dict[tuple, str] = {}  # (real path, inode, size, mtime) -> digest: a file is read once per process


def file_sha256(path: str | Path) -> str:
    """The sha256 hex digest of the file at path: what identifies a checkpoint in the files derived from it (code
    files, indexes, exports' sidecars), wherever it is copied or moved, and whatever was rewritten at its path."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _SHA256:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _SHA256[key] = digest.hexdigest()
    return _SHA256[key]


def check_writable(path: str | Path, key: str, example: str, replaces: Replaceable | None = None,
                   elsewhere: str | None = None) -> Path:
    """path, after checking that a file can be written there: ConfigError naming key when path is a folder or an
    existing file that replaces does not accept (refuse_overwrite), FileWriteError when its folder (or the nearest
    existing one above it) cannot be written. Writes nothing but a probe file it removes at once. example: a value
    of key to suggest, e.g. "out=codes.npz"; elsewhere: the one to suggest when the folder cannot be written (by
    default example), e.g. a file in the current folder where example is beside a read-only checkpoint."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{key}={path} is a folder: give the path of a file to write, e.g. {example}")
    if replaces is not None:
        refuse_overwrite(path, key, example, replaces)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"{key}={path}: {folder} is a file, not a folder -- pass e.g. {example}")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".hashnet-probe.")
    except OSError as err:
        elsewhere = elsewhere or example
        raise write_problem(err, path, f"pass another {key}, e.g. {elsewhere}") or ConfigError(
            f"{key}={path}: cannot write in {folder} ({err.strerror}) -- pass e.g. {elsewhere}") from err
    os.close(fd)
    os.unlink(probe)
    return path


def walk_once(folder: str | Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """os.walk(folder) following symbolic links, each real folder walked once (a link back up the tree ends there);
    the caller may prune or sort the folders list in place, as with os.walk."""
    seen: set[str] = set()
    for top, folders, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            folders[:] = []
            continue
        seen.add(real)
        yield top, folders, files
