"""Every override the project prints (error messages in hashnet/, README code) composes as printed, without `+`."""
import ast
import re
from functools import cache
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import CONFIGS

ROOT = Path(__file__).resolve().parents[1]
HINT = re.compile(r"(?<![\w.+~/-])([a-z_][a-z_0-9]*(?:\.[a-z_][a-z_0-9]*)*)=([^\s'\"`),;]*)")
DATASETS = sorted(path.stem for path in (CONFIGS / "dataset").glob("*.yaml"))


@cache
def default_train(dataset: str = "digits"):
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        return compose("train", [f"dataset={dataset}"])


def method_of(key: str) -> str | None:
    """The method (configs/method/<name>.yaml) that declares method.<key> when the default method does not, else
    None: such a hint composes with that method."""
    if not key.startswith("method.") or OmegaConf.select(default_train(), key, default="absent") != "absent":
        return None
    return next((path.stem for path in sorted((CONFIGS / "method").glob("*.yaml"))
                 if key.split(".", 1)[1] in OmegaConf.load(path)), None)


def builder_option(key: str) -> bool:
    """An option of one dataset's builder (dataset.builder.<option>): declared by the datasets built that way only."""
    return key.startswith("dataset.builder.")


def strings_of(path: Path) -> list[str]:
    """The string literals of a module, f-strings with each {hole} as '<>' (a placeholder)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.JoinedStr):
            out.append("".join(v.value if isinstance(v, ast.Constant) else "<>" for v in node.values))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node.value)
    return out


def readme_code() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```.*?\n(.*?)```", text, re.DOTALL) + re.findall(r"`([^`\n]+)`", text)


def hints() -> dict[str, str]:
    """{key: a value as printed} for every key=value whose key is dotted or a top-level train key."""
    top = set(default_train())
    found = {}
    for text in [s for path in sorted((ROOT / "hashnet").rglob("*.py")) for s in strings_of(path)] + readme_code():
        for key, value in HINT.findall(text):
            if key.split(".")[0] in top and not key.startswith("hydra."):
                found.setdefault(key, value)
    return found


def valid_value(key: str, value: str, cfg) -> str:
    """The printed value, or for a placeholder (<...>, ..., PATH, empty) the key's default in cfg."""
    if value and not re.search(r"<|\.\.\.|^[A-Z]+$|\{$|^\[?$", value):
        return value
    default = OmegaConf.select(cfg, key, throw_on_missing=False)
    return "null" if default is None else str(default).lower() if isinstance(default, bool) else str(default)


def test_hints_are_found():
    found = hints()  # a sample of what the messages and the README print
    for key in ("dataset.on_bad_image", "dataset.path_map", "net.pretrained", "method.class_num", "hash_bit",
                "optim.lr", "ckpt_path", "resume"):
        assert key in found, key


@pytest.mark.parametrize("dataset", DATASETS)
def test_hints_compose_as_printed(dataset):
    """All hints at once on each dataset config (composing is slow): a key not declared fails naming itself."""
    keys = {key: value for key, value in hints().items()
            if "." in key or key not in ("net", "dataset", "method", "optim", "paths")}  # groups: their option lists
    if dataset != "digits":
        keys = {key: value for key, value in keys.items() if key.startswith("dataset.")}
    declared = default_train(dataset)
    options = {key: value for key, value in keys.items()
               if builder_option(key) and OmegaConf.select(declared, key, default="absent") != "absent"}
    methods = {key: value for key, value in keys.items() if method_of(key)}  # another method's own keys, apart
    keys = {key: value for key, value in keys.items() if not builder_option(key) and key not in methods}
    for key, value in sorted(methods.items()) if dataset == "digits" else []:
        with initialize_config_dir(str(CONFIGS), version_base="1.3"):
            cfg = compose("train", [f"method={method_of(key)}", f"{key}={value if '<' not in value else 'null'}"])
        assert OmegaConf.select(cfg, key, default="absent") != "absent", key
    for group in (keys, options):  # the builder's options apart: another hint replaces the whole dataset.builder
        overrides = [f"{key}={valid_value(key, value, declared if builder_option(key) else default_train())}"
                     for key, value in sorted(group.items())]
        with initialize_config_dir(str(CONFIGS), version_base="1.3"):
            cfg = compose("train", [f"dataset={dataset}", *overrides])  # no '+': every key is declared with a default
        for override in overrides:
            key = override.split("=", 1)[0]
            assert OmegaConf.select(cfg, key, default="absent") != "absent", override


def test_every_builder_option_printed_is_declared_by_a_dataset():
    options = [key for key in hints() if builder_option(key)]
    assert "dataset.builder.unseen_classes" in options  # a sample
    for key in options:
        assert any(OmegaConf.select(default_train(dataset), key, default="absent") != "absent"
                   for dataset in DATASETS), key
