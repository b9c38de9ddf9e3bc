"""The project's own errors, and how an entry point turns them into one line instead of a traceback.

Every error that names a user's file or setting and its fix subclasses UserError (alongside the
built-in class it always was, so `except ValueError` keeps working). The scripts/*.py wrappers run
their task under `exit_on_error`, which prints `<script>: <message>` and exits 1, unless
HASHNET_DEBUG=1 or HYDRA_FULL_ERROR=1 asks for the full chain of exceptions.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

DEBUG_SWITCHES = ("HASHNET_DEBUG", "HYDRA_FULL_ERROR")


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
    """Whether a debug switch (HASHNET_DEBUG=1 or HYDRA_FULL_ERROR=1) asks for full tracebacks."""
    return any(os.environ.get(name, "") not in ("", "0") for name in DEBUG_SWITCHES)


@contextmanager
def exit_on_error(script: str, *also: type[BaseException]) -> Iterator[None]:
    """Turn a UserError (or one of `also`) into `sys.exit("<script>: <message>")` (exit 1), and an
    ExitRequest into its exit code; with a debug switch on, errors propagate with their traceback."""
    try:
        yield
    except ExitRequest as request:
        sys.exit(request.code)
    except (UserError, *also) as err:
        if debugging():
            raise
        sys.exit(f"{script}: {err}")
