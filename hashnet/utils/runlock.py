"""One run per folder: a lock file `<run>/.lock` naming the process (pid, host, start, command) that trains there.

Created with O_CREAT | O_EXCL, so two processes cannot both take it. A lock whose process is gone
(same host, os.kill(pid, 0) fails) is taken over with a warning; one held on another host cannot be
checked, so it is refused, naming the file to delete if that process is known to be gone.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hashnet.utils.errors import UserError

LOCK = ".lock"

log = logging.getLogger(__name__)


class RunFolderInUseError(UserError, RuntimeError):
    """Another live process trains in the run folder."""


def _alive(holder: dict) -> bool:
    """Whether the lock holder may still run: any process on another host, a live pid on this one."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _read(path: Path) -> dict:
    try:
        holder = json.loads(path.read_text())
        return holder if isinstance(holder, dict) and "pid" in holder else {}
    except (OSError, ValueError):
        return {}  # empty or half-written: its writer died between creating and filling it


def acquire(folder: str | Path) -> Path:
    """Take `<folder>/.lock` for this process; RunFolderInUseError naming the live holder, else take a stale one over."""
    path = Path(folder) / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
          "command": " ".join([sys.executable, *sys.argv])}
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder and _alive(holder):
                elsewhere = holder.get("host") != me["host"]
                raise RunFolderInUseError(
                    f"run folder {folder} is in use by process {holder['pid']} on {holder.get('host')} (started "
                    f"{holder.get('started')}): {holder.get('command')} -- wait for it to end or stop it, or train in "
                    "another folder (hydra.run.dir=<folder>)"
                    + (f"; if that process is gone, delete {path}" if elsewhere else "")) from None
            log.warning("run folder %s: taking over the lock of process %s on %s (%s), which is no longer running",
                        folder, holder.get("pid", "?"), holder.get("host", "?"), holder.get("command", "no command"))
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        return path


def release(path: Path) -> None:
    """Remove the lock file if this process holds it."""
    if _read(path).get("pid") == os.getpid():
        path.unlink(missing_ok=True)


@contextmanager
def run_lock(folder: str | Path, take: bool = True) -> Iterator[None]:
    """Hold `<folder>/.lock` while the body runs (released on errors too); take=False (other ranks) does nothing."""
    path = acquire(folder) if take else None
    try:
        yield
    finally:
        if path is not None:
            release(path)
