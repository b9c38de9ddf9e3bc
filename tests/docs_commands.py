"""Every command README.md and docs/*.md print is a promise: tests/test_readme_commands.py and
tests/test_docs_commands.py run each as printed, with what this module gives them.

The commands come from the documents' ```bash and ```python blocks, in order, and run in a scratch folder that holds
what a user would have by then: a finished digits run, its code file, a folder of class images, a flat folder of
photos, a query image and a sweep folder. `<time>` and `...` in a path stand for its newest match there. What the test
adds, and only that: tiny step counts to a training run, a small fake Fashion-MNIST (the real one is not on every
machine), port 0 to a server (started, seen answering its start-up line, stopped), small sizes to a benchmark, and no
network. A `-m` sweep composes and checks each of its runs (at its first seed) without training them. A command that
needs what is not here (the paper's lists, the CIFAR-10 archive, ImageNet weights) must stop with one line saying so;
every other command must succeed.
`pip install` lines are checked against pyproject.toml's extras, `python -m pytest` lines against pytest's markers.
"""
from __future__ import annotations

import itertools
import re
import shlex
import shutil
import subprocess
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from conftest import write_image_tree
from script_runner import Case, Result, run_scripts
from small_data import fake_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
TINY_TRAINING = ["max_steps=2", "val_every=1000", "ckpt_every=2", "dataset.num_workers=0"]  # no validation: the test
CONTINUING = ["max_steps=4"]  # a resume goes past the run it continues, which stopped at 2
BENCH_TINY = {  # each benchmark's smallest sizes: the script runs end to end, its ratios mean nothing
    "bench_data": ["--images", "8", "--batches", "1", "--rounds", "1", "--workers", "0", "--batch-size", "4"],
    "bench_export": ["--size", "32", "--batch", "2", "--rounds", "1", "--threads", "1"],
    "bench_index": ["--size", "2000", "--queries", "10", "--rounds", "1"],
    "bench_metrics": ["--scale", "smoke"],
    "bench_scale": ["--size", "2000", "--queries", "10", "--singles", "2", "--rounds", "1", "--nprobe", "1"],
    "bench_serve": ["--size", "2000", "--requests", "5", "--warmup", "1"],
    "bench_train": ["--size", "32", "--steps", "1", "--warmup", "1", "--rounds", "1"],
}
NOT_HERE = [  # the one line a command may stop with when what it needs is not on this machine
    r"has no list files .* -- put them there",
    r"ImageNet weights for \w+ are not cached and could not be downloaded",
    r"CIFAR-10 is missing: .* -- download https://",
    r"hydra/launcher=slurm submits the sweep to a SLURM cluster and this machine is not on one",
]
SERVERS = {"serve"}
SERVING = "http://127.0.0.1:"  # the start-up line of a server: it answers
SWEEPS = itertools.count()


@dataclass(frozen=True)
class Command:
    document: str
    line: int
    text: str
    language: str  # bash or python

    def __str__(self) -> str:
        return f"{self.document}:{self.line}: {self.text}"


def blocks(path: Path) -> list[Command]:
    """The commands of a Markdown file's ```bash blocks (a trailing backslash continues a line) and its ```python
    blocks (each block one command), in order."""
    commands, language, pending, start, code = [], None, "", 0, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence and language is None:
            language, code, start = fence.group(1) or "text", [], number + 1
        elif fence:
            if language == "python":
                commands.append(Command(path.name, start, "\n".join(code), "python"))
            language = None
        elif language == "bash":
            if not pending:
                start = number
            pending += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
            if not line.endswith("\\"):
                if pending.strip():
                    commands.append(Command(path.name, start, pending.strip(), "bash"))
                pending = ""
        elif language == "python":
            code.append(line)
    return commands


def script_case(words: list[str], workspace: Path, fake_fashion: Path) -> tuple[Case, str]:
    """The run of `python scripts/<name>.py ...` and what it must do: 'succeed', 'serve' or 'may_be_absent'."""
    script = Path(words[1]).stem
    args = words[2:]
    faults: dict = {"offline": True}
    expect, timeout = "succeed", 600
    if script == "train" and "-m" in args:  # composed and checked, in a folder of its own (report.py looks for runs)
        faults["compose_only"] = True
        args = [re.sub(r"^seed=([^,]+),.*", r"seed=\1", arg) for arg in args]  # the seed only reaches the generators
        args.append(f"hydra.sweep.dir=.composed_sweeps/{next(SWEEPS)}")
    elif script == "train" and not {"--info", "--cfg", "--help"} & set(args):
        continuing = "resume=true" in args or any(arg.startswith("ckpt_path=") for arg in args)
        args += [*TINY_TRAINING, *(CONTINUING if continuing else [])]
        if any(arg.startswith("dataset=fashion_mnist") for arg in args):
            args.append(f"dataset.builder.raw_dir={fake_fashion}")
    until = None
    if script in SERVERS:
        args, expect, timeout, until = [*args, "port=0"], "serve", 120, SERVING
    if script in BENCH_TINY:
        args += BENCH_TINY[script]
    return Case(script, args, cwd=str(workspace), faults=faults, timeout=timeout, placeholders=True, until=until), expect


def check_result(command: Command, result: Result, expect: str) -> None:
    lines = result.stderr.strip().splitlines()
    report = f"{command}\nexit {result.code}\nstdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-3000:]}"
    if expect == "serve":  # stopped by the runner once serving, after its start-up line
        assert SERVING in result.stdout + result.stderr and result.code == -9, report
    elif result.code != 0:
        assert result.code == 1 and len(lines) == 1, report
        assert any(re.search(pattern, lines[0]) for pattern in NOT_HERE), report


def check_pip(command: Command, words: list[str]) -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    target = words[-1]
    assert words[:3] == ["pip", "install", "-e"], command
    named = re.fullmatch(r"\.(?:\[([\w,]+)\])?", target)
    assert named, f"{command}: installs {target}, not this project"
    for extra in filter(None, (named.group(1) or "").split(",")):
        assert extra in extras, f"{command}: pyproject.toml has no extra {extra!r}"


def check_pytest(command: Command, words: list[str]) -> None:
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    declared = {marker.split(":")[0] for marker in markers}
    options = words[3:]  # after python -m pytest
    if "-m" in options:
        used = set(re.findall(r"\w+", options[options.index("-m") + 1])) - {"not", "and", "or"}
        assert used <= declared, f"{command}: undeclared markers {used - declared}"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest" in ci


def check_tensorboard(command: Command, words: list[str], workspace: Path) -> None:
    """Start TensorBoard as printed (on a free port), see it serve, stop it."""
    process = subprocess.Popen([*words, "--port", "0"], cwd=workspace, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline, output = time.monotonic() + 120, ""
        while time.monotonic() < deadline and "http://" not in output and process.poll() is None:
            output += process.stdout.readline()
        assert "http://" in output, f"{command}: {output[-2000:]}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def python_case(command: Command, workspace: Path) -> Case:
    """A ```python block as a script in the scratch folder (its documented paths made real when it runs)."""
    script = workspace / f"block_{Path(command.document).stem}_{command.line}.py"
    script.write_text(command.text)
    return Case(str(script), [], cwd=str(workspace), faults={"offline": True}, timeout=600, placeholders=True)


RUN = "outputs/digits/hashnet_resnet18_48bit/2026-01-01_00-00-00"  # the finished run the documents' paths find


def make_workspace(folder: Path) -> Path:
    """A user's folder after the set-up: a finished digits run (48 bits), its code file, a sweep folder holding it, a
    folder of class images, a flat folder of photos, a query image, a small fake Fashion-MNIST."""
    results = run_scripts([Case("train", [*TINY_TRAINING, f"hydra.run.dir={RUN}"], cwd=str(folder)),
                           Case("encode", [f"ckpt_path={RUN}/checkpoints/last.ckpt", "dataset=digits"], cwd=str(folder))])
    assert [result.code for result in results] == [0, 0], [result.stderr[-2000:] for result in results]
    shutil.copytree(folder / RUN, folder / "multirun" / "2026-01-01_00-00-00" / "0_digits_hashnet_resnet18_48bit_seed0")
    write_image_tree(folder / "flowers", {"daisy": 6, "rose": 6, "tulip": 6}, side=16)
    (folder / "photos").mkdir()  # a flat folder without labels: 60 of the digits
    for image in sorted((folder / "data" / "digits" / "images").glob("*.png"))[:60]:
        shutil.copy(image, folder / "photos")
    Image.open(folder / "data" / "digits" / "images" / "0500.png").convert("RGB").save(folder / "query.jpg")
    fake_fashion_mnist(folder / "fake_fashion_mnist", per_class=(600, 10))  # the protocol's 100 + 500 a class, + 10
    return folder


def run_documents(documents: list[Path], workspace: Path) -> None:
    """Every command of the documents, in order, in one interpreter's forks (importing torch once); the ten slowest
    printed."""
    runs: list[tuple[Command, Case, str]] = []
    for document in documents:
        for command in blocks(document):
            if command.language == "python":
                runs.append((command, python_case(command, workspace), "succeed"))
                continue
            for part in command.text.split("&&"):
                words = shlex.split(part, comments=True)
                if words[:2] == ["pip", "install"]:
                    check_pip(command, words)
                elif words[:3] == ["python", "-m", "pytest"]:
                    check_pytest(command, words)
                elif words[0] == "tensorboard":
                    check_tensorboard(command, words, workspace)
                else:
                    assert words[0] == "python" and words[1].startswith("scripts/"), f"{command}: not run by a test"
                    runs.append((command, *script_case(words, workspace, workspace / "fake_fashion_mnist")))
    results = run_scripts([case for _, case, _ in runs], timeout=3000)
    slowest = sorted(zip(results, runs), key=lambda pair: -pair[0].seconds)[:10]
    print("\n".join(f"{result.seconds:6.1f} s  {command}" for result, (command, _, _) in slowest))
    for (command, _, expect), result in zip(runs, results):
        check_result(command, result, expect)
