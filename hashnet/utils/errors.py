"""The project's own errors, and how an entry point turns any error into one line instead of a traceback.

Errors are converted where user input enters: a setting (ConfigError), a file (UnreadableFileError,
FileWriteError from hashnet.utils.files), an image, a checkpoint; each subclasses UserError alongside the
built-in class it always was, so `except ValueError` keeps working, and its message names the setting or
the file and a fix that works as typed. The scripts/*.py wrappers run their task under `exit_on_error`,
which prints `<script>: <message>` and exits 1 for any exception: a UserError (also one found in the chain
of an error a library wrapped around it) gives its message, an OSError about a path gives the path and what
is wrong with it (the disk is full, the folder is read-only), anything else one line naming the exception
and HASHNET_DEBUG=1, which, like HYDRA_FULL_ERROR=1, shows the full chain instead. Hydra's own errors (an
unknown key, a group option that does not exist) are turned into one line by hashnet.utils.entry.
"""
from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

DEBUG_SWITCHES = ("HASHNET_DEBUG", "HYDRA_FULL_ERROR")
FORCED_HYDRA_ERRORS = "HASHNET_FORCED_HYDRA_FULL_ERROR"  # hashnet.utils.entry, not the user, set HYDRA_FULL_ERROR
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_PERMITTED = (errno.EACCES, errno.EPERM, errno.EROFS)
DEBUG_HINT = "HASHNET_DEBUG=1 shows the full chain"


class UserError(Exception):
    """Something the user handed over (a file, a setting) is wrong; the message names it and the fix."""


class ConfigError(UserError, ValueError):
    """A setting is out of range or inconsistent; the message names the key, the value and a valid one."""


class UnreadableFileError(UserError, ValueError):
    """A file the user passed (a checkpoint, a code file, an image) exists but cannot be read as one."""


def check_choice(key: str, value: object, choices: tuple) -> None:
    """ConfigError naming the config key, the value and the choices unless value is one of choices."""
    if value not in choices:
        shown = [choice for choice in choices if choice is not None]
        raise ConfigError(f"{key}={value!r}: it must be one of {list(choices)} -- pass e.g. {key}={shown[0]}")


class ExitRequest(Exception):
    """Stop the program with exit code `code` after the message was logged (e.g. a pre-empted run: 143)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def debugging() -> bool:
    """Whether the user asked for full tracebacks (HASHNET_DEBUG=1, or HYDRA_FULL_ERROR=1 set by the user)."""
    switches = DEBUG_SWITCHES if not os.environ.get(FORCED_HYDRA_ERRORS) else DEBUG_SWITCHES[:1]
    return any(os.environ.get(name, "") not in ("", "0") for name in switches)


def chain(err: BaseException) -> Iterator[BaseException]:
    """err, then the exceptions it was raised from or during (__cause__, else __context__), each once."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def path_problem(err: OSError, fix: str | None = None) -> str | None:
    """One line for an OSError about a path (the disk is full, no permission, a read-only file system), else None."""
    if err.errno not in (*DISK_FULL, *NOT_PERMITTED) or not err.filename:
        return None
    where = str(err.filename)
    if err.errno in DISK_FULL:
        return (f"the disk is full: cannot write {where} ({err.strerror}) -- "
                f"{fix or 'free space on that disk, or write elsewhere'}")
    return (f"cannot write {where} ({err.strerror}) -- " + (fix or "make that folder writable, or write elsewhere "
            "(the run folder: hydra.run.dir=<folder>; datasets: HASHNET_DATA_DIR=<folder>)"))


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "no details"


def describe(err: BaseException, fix: str | None = None) -> str:
    """The one line a script prints for err: a UserError's message (err's own, or one in its chain, e.g. raised
    inside a library that wrapped it), an OSError's path and problem (fix: how to get around it), a missing
    required setting, or the exception's name and first line with DEBUG_HINT."""
    for cause in chain(err):
        if isinstance(cause, UserError):
            return str(cause)
    for cause in chain(err):
        if isinstance(cause, OSError) and (line := path_problem(cause, fix)):
            return line
        if type(cause).__name__ == "MissingMandatoryValue" and getattr(cause, "full_key", None):
            key = cause.full_key  # OmegaConf's: a ??? setting nobody gave
            return f"{key} is required: pass {key}=<value> on the command line"
        if type(cause).__name__ == "OutOfMemoryError":
            return (f"out of GPU memory ({_first_line(cause)}) -- lower dataset.batch_size or "
                    "dataset.eval_batch_size, or use a smaller net")
    return f"unexpected {type(err).__name__}: {_first_line(err)} ({DEBUG_HINT})"


@contextmanager
def exit_on_error(script: str, *also: type[BaseException]) -> Iterator[None]:
    """Turn any exception into `sys.exit("<script>: <describe(err)>")` (exit 1), an ExitRequest into its exit code
    and Ctrl-C into exit 130; with a debug switch on, errors propagate with their traceback.

    `also` is accepted for callers of the first version, which listed the extra classes to convert; all are now."""
    del also
    try:
        yield
    except ExitRequest as request:
        sys.exit(request.code)
    except KeyboardInterrupt:
        if debugging():
            raise
        _exit(f"{script}: interrupted (Ctrl-C)", 130)
    except Exception as err:  # the last resort of an entry point: every error becomes one line
        if debugging():
            raise
        sys.exit(f"{script}: {describe(err)}")


def _exit(message: str, code: int) -> None:
    """Print message on stderr and exit with code (sys.exit(str) can only exit 1)."""
    print(message, file=sys.stderr)
    sys.exit(code)
