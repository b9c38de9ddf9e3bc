"""Run scripts/*.py command lines as separate processes, each forked from one interpreter that imported the
project once: a command costs a fork, not the ~7 s of importing torch, Lightning and Hydra again.

    results = run_scripts([Case("search", ["k=0", ...]), ...])

The interpreter (`python tests/script_runner.py`, started by the first call) stays up for the test session and
serves every later call of the same pytest process, so a test pays for its cases, not for the imports.
Each case runs as `python scripts/<script>.py <args>` would: its own process (forked before any tensor exists),
sys.argv, working folder and environment (the caller's at the call, with the call's and the case's env added),
stdout and stderr captured, the exit code as Python's (sys.exit("msg") prints msg and exits 1; an uncaught
exception prints its traceback and exits 1; a signal -N), atexit handlers run. `faults`
inject what cannot be arranged as root on a real disk: {"readonly": [folder, ...]} refuses every write below
those folders (EACCES), {"disk_full": ["torch.save" | "numpy.savez"]} has that function write a few bytes then
fail with ENOSPC, {"kill_in": "numpy.savez"} SIGKILLs the process half-way through it, {"offline": true} fails
every download, {"raise": ["module:function", "message"]} replaces a function with one raising RuntimeError,
{"compose_only": true} has scripts/train.py check each composed config (hashnet.tasks.checks) instead of training it:
a sweep of many runs costs one composition each.
A script is scripts/<name>.py, or any file given by its absolute path.
With placeholders=True, a path in the args (or in a string literal of the script) holding `<time>` or `...`, as the
documentation writes them, becomes the newest match in the working folder when the case runs: after the cases before it.
A case with `until` (a text of its output, or "file:<path>" for a file that appears) is sent `stop` (SIGKILL by
default) as soon as that happens, then waited for.
"""
from __future__ import annotations

import atexit
import builtins
import errno
import glob
import importlib
import io
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRELOADED = ("hydra", "matplotlib.pyplot", "hashnet.outputs.report", "hashnet.outputs.runs", "hashnet.utils.entry", *(
    f"hashnet.tasks.{task}" for task in ("check_lists", "encode", "evaluate", "search", "serve", "train")))


@dataclass
class Case:
    """One command line: scripts/<script>.py with args, run in cwd (the repository by default) with env added
    (a value None removes the variable) and faults injected."""
    script: str
    args: list[str]
    env: dict[str, str | None] = field(default_factory=dict)
    cwd: str | None = None
    faults: dict = field(default_factory=dict)
    timeout: float = 300
    placeholders: bool = False
    until: str | None = None  # a text of the output or "file:<path>": then the process is sent `stop`
    stop: int = signal.SIGKILL


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    seconds: float


DEBUGGING = ("HASHNET_DEBUG", "HYDRA_FULL_ERROR", "HASHNET_FORCED_HYDRA_FULL_ERROR")  # would change the messages
_server: subprocess.Popen | None = None


def _start() -> subprocess.Popen:
    """The interpreter that imports the project once and forks every case of this pytest process."""
    global _server
    if _server is None or _server.poll() is not None:
        _server = subprocess.Popen([sys.executable, __file__], cwd=ROOT, env=_environment({}), stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=tempfile.TemporaryFile(), text=True,
                                   start_new_session=True)
        atexit.register(_stop, _server)
    return _server


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGKILL)  # the interpreter and any case still running
        server.wait()


def _environment(env: dict[str, str]) -> dict[str, str]:
    environment = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    for name in DEBUGGING:
        environment.pop(name, None)
    return environment


def run_scripts(cases: list[Case], env: dict[str, str] | None = None, timeout: float = 1800) -> list[Result]:
    """Run every case (in order), each in a process forked from the project's interpreter; their results in the
    same order."""
    global _server
    server = _start()
    environment = _environment(env or {})
    server.stdin.write(json.dumps([{**asdict(case), "env": {**environment, **case.env}} for case in cases]) + "\n")
    server.stdin.flush()
    replied = select.select([server.stdout], [], [], timeout)[0]
    reply = server.stdout.readline() if replied else ""
    if not reply:
        _stop(server)
        _server = None
        server.stderr.seek(0)
        why = f"timed out after {timeout} s" if not replied else f"exited {server.returncode}"
        raise RuntimeError(f"the script runner {why}:\n{server.stderr.read()[-5000:].decode(errors='replace')}")
    return [Result(**result) for result in json.loads(reply)]


def run_script(script: str, args: list[str], data_dir: Path, **case) -> Result:
    """One scripts/<script>.py run with HASHNET_DATA_DIR=data_dir (case: Case's other fields; 600 s by default)."""
    (result,) = run_scripts([Case(script, args, env={"HASHNET_DATA_DIR": str(data_dir)}, **{"timeout": 600, **case})])
    return result


def newest(pattern: str, folder: str | Path = ".") -> str:
    """The newest path below folder matching a documented one (relative to folder), `<time>` and `...` standing for
    any folder(s); AssertionError when nothing matches."""
    matches = glob.glob(os.path.join(folder, pattern.replace("<time>", "*").replace("...", "**")), recursive=True)
    assert matches, f"nothing in {folder} matches {pattern}"
    return os.path.relpath(max(matches, key=os.path.getmtime), folder)


def _placed(text: str) -> str:
    """text with every documented path (a word, key=value or a quoted string holding <time> or ...) made real."""
    def real(match: re.Match) -> str:
        return match.group(1) + newest(match.group(2))
    return re.sub(r"""(^|=|["'])([^\s"'=]*(?:<time>|\.\.\.)[^\s"'=]*)""", real, text)


# ---- the server side: runs in the interpreter `run_scripts` starts ----
def _under(path: object, folders: list[str]) -> bool:
    try:
        resolved = os.path.abspath(os.fsdecode(path))
    except TypeError:
        return False  # a file descriptor
    return any(resolved == folder or resolved.startswith(folder.rstrip("/") + "/") for folder in folders)


def _refuse(path: object) -> OSError:
    return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))


def _readonly(folders: list[str]) -> None:
    """Every write below folders fails with EACCES, as on a folder the user cannot write (tests run as root)."""
    folders = [os.path.abspath(folder) for folder in folders]
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def os_open(path, flags, mode=0o777, *, dir_fd=None):
        if flags & writing and _under(path, folders):
            raise _refuse(path)
        return real_os_open(path, flags, mode, dir_fd=dir_fd)

    def mkdir(path, mode=0o777, *, dir_fd=None):
        if _under(path, folders) and not os.path.isdir(path):
            raise _refuse(path)
        return real_mkdir(path, mode, dir_fd=dir_fd)

    def open_(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+") and _under(file, folders):
            raise _refuse(file)
        return real_open(file, mode, *args, **kwargs)

    os.open, os.mkdir, builtins.open, io.open = os_open, mkdir, open_, open_
    for name in ("replace", "rename", "unlink", "rmdir"):
        real = getattr(os, name)

        def guarded(*args, real=real, moves=name in ("replace", "rename"), **kwargs):
            if any(_under(arg, folders) for arg in args[:2] if isinstance(arg, (str, bytes, os.PathLike))):
                raise _refuse(args[1] if moves else args[0])
            return real(*args, **kwargs)
        setattr(os, name, guarded)


def _partial_write_then(action):
    """A torch.save / numpy.savez stand-in: writes the start of a file, then calls action()."""
    def write(*args, **kwargs):
        target = args[1] if len(args) > 1 and hasattr(args[1], "write") else args[0]
        target.write(b"PK\x03\x04 the first bytes of the file")
        target.flush()
        action()
    return write


def _disk_full() -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _apply(faults: dict) -> None:
    import numpy
    import torch

    functions = {"torch.save": (torch, "save"), "numpy.savez": (numpy, "savez")}
    if faults.get("readonly"):
        _readonly(faults["readonly"])
    for name in faults.get("disk_full", []):
        setattr(*functions[name], _partial_write_then(_disk_full))
    if faults.get("kill_in"):
        setattr(*functions[faults["kill_in"]], _partial_write_then(lambda: os.kill(os.getpid(), signal.SIGKILL)))
    if faults.get("offline"):
        import urllib.error
        import urllib.request

        def offline(*args, **kwargs):
            raise urllib.error.URLError("no network (test)")
        urllib.request.urlopen = offline
        torch.hub.download_url_to_file = offline
    if faults.get("compose_only"):
        from hydra.plugins.sweeper import Sweeper

        from hashnet.tasks import checks, train
        # Hydra's sweeper composes every job once to validate the batch, then the launcher composes it again to run it:
        # here the second composition (each job's config, checked) is the whole run, so the first is skipped
        Sweeper.validate_batch_is_legal = lambda self, batch: None

        def check(cfg):
            checks.check_train_config(cfg)
            checks.check_launch(cfg)
            return {"mAP": None}
        train.train = check
    if faults.get("raise"):
        target, message = faults["raise"]
        module, function = target.split(":")

        def fail(*args, **kwargs):
            raise RuntimeError(message)
        setattr(importlib.import_module(module), function, fail)


def _child(case: dict, out: int, err: int) -> None:
    """Run the case in this (forked) process and exit with its code."""
    import atexit
    import runpy
    import traceback

    os.dup2(out, 1)
    os.dup2(err, 2)
    code = 1
    try:
        os.chdir(case["cwd"] or ROOT)
        environment = {name: value for name, value in case["env"].items() if value is not None}
        os.environ.clear()
        os.environ.update(environment)
        _apply(case["faults"])
        script = case["script"] if os.path.isabs(case["script"]) else str(ROOT / "scripts" / f"{case['script']}.py")
        if case["placeholders"]:
            case["args"] = [_placed(arg) for arg in case["args"]]
            if os.path.isabs(case["script"]):
                Path(script).write_text(_placed(Path(script).read_text()))
        sys.argv = [script, *case["args"]]
        sys.path[0] = os.path.dirname(script)
        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
            if not isinstance(exit_.code, int) and exit_.code is not None:
                print(exit_.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 -- as the interpreter: print it, exit 1
            traceback.print_exc()
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _stopped(case: dict, out, err) -> bool:
    """Whether the case's `until` has happened: a text in its output or a file that exists."""
    until = case["until"]
    if until.startswith("file:"):
        return os.path.exists(os.path.join(case["cwd"] or ROOT, until[5:]))
    return any(until.encode() in Path(f"/proc/self/fd/{stream.fileno()}").read_bytes() for stream in (out, err))


def _run(case: dict) -> dict:
    """One case in a forked process: its exit code, output and seconds."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(case, out.fileno(), err.fileno())
        deadline, signalled = started + case["timeout"], False
        while not (status := os.waitpid(pid, os.WNOHANG))[0]:
            if case["until"] and not signalled and _stopped(case, out, err):
                os.kill(pid, case["stop"])
                signalled = True
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                status = os.waitpid(pid, 0)
                err.write(f"\n[script_runner] timed out after {case['timeout']} s".encode())
                break
            time.sleep(0.05)
        outputs = []
        for stream in (out, err):
            stream.seek(0)
            outputs.append(stream.read().decode(errors="replace"))
        return {"code": os.waitstatus_to_exitcode(status[1]), "stdout": outputs[0], "stderr": outputs[1],
                "seconds": time.monotonic() - started}


def _serve() -> None:
    """Import what every script imports, then run each request (a line: a JSON list of cases) and answer it on the
    original stdout with a line of results; stray prints go to stderr."""
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    for module in PRELOADED:  # once: the forked children start with it
        importlib.import_module(module)
    for request in sys.stdin:
        reply.write(json.dumps([_run(case) for case in json.loads(request)]) + "\n")
        reply.flush()


if __name__ == "__main__":
    _serve()
