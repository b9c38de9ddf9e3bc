"""How every scripts/*.py starts: Hydra's own errors (composing the config) as one line too.

A script's @hydra.main function runs its task under hashnet.utils.errors.exit_on_error; what fails before
the task runs (an unknown key such as `hashbit=16`, a group option that does not exist, an override Hydra
cannot parse, a run folder it cannot create) is Hydra's, which would print its own multi-line report. `run`
has Hydra raise those errors instead (HYDRA_FULL_ERROR=1, marked as ours so that it does not count as the
user's debug switch) and prints one line: the override, what is wrong and the nearest declared key or option.

    if __name__ == "__main__":
        run(main, "train")
"""
from __future__ import annotations

import difflib
import inspect
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from hashnet.utils.errors import FORCED_HYDRA_ERRORS, debugging, describe

TYPO = 0.75  # difflib ratio from which a word is taken for a typo of another (hashbit / hash_bit: 0.94)
RUN_FOLDER_FIX = "make that folder writable, or pass hydra.run.dir=<a folder you can write>"


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Every dotted key of a nested dict (inner nodes too) -> its value."""
    keys: dict[str, Any] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            full = f"{prefix}{key}"
            keys[full] = value
            keys.update(_flatten(value, f"{full}."))
    return keys


def suggestion(word: str, candidates: Iterable[str], accept: Callable[[str], bool] = lambda _: True) -> str | None:
    """The one source of "did you mean": the candidate (all of which exist) nearest to word in spelling, if it is a
    likely typo of it (difflib ratio >= TYPO) and accept(candidate) (e.g. the value given passes its check), else
    None -- a guess that names another real setting would change it silently if typed."""
    for near in difflib.get_close_matches(word, list(candidates), n=3, cutoff=TYPO):
        if accept(near):
            return near
    return None


def value_fits(value: str, default: Any) -> bool:
    """Whether the override value (as typed) has the type of a setting's default: an int for an int, a number for a
    float, true/false for a bool, a list for a list; anything for a string, null or a ??? setting."""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return False
    if default is None or default == "???" or isinstance(default, str) and default.startswith("${"):
        return True
    if isinstance(default, bool):
        return isinstance(parsed, bool)
    if isinstance(default, (int, float)):
        return isinstance(parsed, (int, float)) and not isinstance(parsed, bool) and (
            isinstance(default, float) or isinstance(parsed, int))
    if isinstance(default, (list, dict)):
        return isinstance(parsed, type(default))
    return True


def declared_keys(config_dir: Path, config_name: str, overrides: list[str]) -> dict[str, Any]:
    """The dotted keys of config_name composed with overrides (with none, if those fail too) -> their values."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    def compose_keys(attempt: list[str]) -> dict[str, Any] | None:
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(str(config_dir), version_base="1.3"):
                return _flatten(OmegaConf.to_container(compose(config_name, overrides=attempt), resolve=False))
        except Exception:  # noqa: BLE001 -- only a suggestion is lost
            return None
        finally:
            GlobalHydra.instance().clear()

    return compose_keys(overrides) or compose_keys([]) or {}


def _overrides(argv: list[str]) -> list[str]:
    """The key=value arguments of a command line (not -m, --cfg job, ...)."""
    flags_with_value = {"--cfg", "-c", "--package", "-p", "--info", "--config-path", "-cp", "--config-name", "-cn",
                        "--config-dir", "-cd", "--experimental-rerun"}
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in flags_with_value:
            skip = True
        elif not arg.startswith("-") and "=" in arg:
            out.append(arg)
    return out


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def hydra_message(err: BaseException, script: str, config_dir: Path, config_name: str, argv: list[str]) -> str | None:
    """One line for an error Hydra raised composing config_name with argv's overrides; None if it is not Hydra's."""
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException

    if not isinstance(err, HydraException):
        return None
    overrides = _overrides(argv)
    text = str(err)
    listing = f"python scripts/{script}.py --cfg job lists every setting"
    if isinstance(err, MissingConfigException) and err.missing_cfg_file and "/" in err.missing_cfg_file:
        group, option = err.missing_cfg_file.rsplit("/", 1)
        options = sorted(err.options or [])
        near = suggestion(option, options)
        groups = [other.name for other in sorted(config_dir.iterdir()) if other.name not in (group, "recipe")
                  and (other / f"{option}.yaml").is_file()]  # e.g. experiment=fashion_mnist: it is a dataset
        guess = (f" -- did you mean {groups[0]}={option}?" if groups else
                 f" -- did you mean {group}={near}?" if near else "")
        return (f"{group}={option}: there is no such {group} (configs/{group}/{option}.yaml){guess} "
                f"The options: {', '.join(options)}")
    if isinstance(err, OverrideParseException):
        bad = next((o for o in overrides if re.search(r"[\[\]{}()'\"]", o)), " ".join(overrides))
        return (f"cannot read the override {bad!r} ({text.splitlines()[0]}) -- quote it for the shell and write lists "
                f"as key=[a,b], strings with spaces as 'key=\"a b\"'")
    unknown = re.match(r"Could not override '([^']+)'\.", text)
    if unknown and "No match in the defaults list" in text:
        group = unknown.group(1)
        given = next((o for o in overrides if _key(o) == group), group)
        return (f"{given}: {config_name}.yaml does not choose a {group} -- it comes from elsewhere (the checkpoint, "
                f"for evaluate/encode/search/serve); to add it anyway, as a check, pass +{given.lstrip('+~')}")
    if unknown:
        key = unknown.group(1)
        given = next((o for o in overrides if _key(o) == key), key)
        value = given.split("=", 1)[1] if "=" in given else "<value>"
        keys = declared_keys(config_dir, config_name, [o for o in overrides if _key(o) != key])
        scope, leaf = key.rsplit(".", 1) if "." in key else ("", key)
        siblings = {k.rsplit(".", 1)[-1]: k for k in keys if k.startswith(f"{scope}.") and k.count(".") == key.count(
            ".")} if scope else {k: k for k in keys if "." not in k}
        near = suggestion(leaf, siblings, lambda name: value_fits(value, keys[siblings[name]]))
        guess = f"did you mean {siblings[near]}={value}? " if near else elsewhere(config_dir, scope, leaf, keys)
        return f"{given}: there is no setting {key} -- {guess}({listing})"
    appended = re.match(r"Could not append to config\. An item is already at '([^']+)'", text)
    if appended:
        given = next((o for o in overrides if _key(o) == appended.group(1)), appended.group(1))
        return f"{given}: {appended.group(1)} already exists: drop the '+' ({given.lstrip('+')})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{' '.join(lines[:2])} ({shlex.join(overrides)})"


def elsewhere(config_dir: Path, group: str, leaf: str, keys: dict[str, Any]) -> str:
    """'<group>.<leaf> is a setting of <group>=a, b only, not of <group>=c. ' when other options of the config
    group `group` declare `leaf` (e.g. method.pairs, which csq has not), else ''."""
    if not group or "." in group or not (config_dir / group).is_dir():
        return ""
    having = sorted(path.stem for path in (config_dir / group).glob("*.yaml")
                    if leaf in (yaml.safe_load(path.read_text()) or {}))
    chosen = keys.get(f"{group}.name")
    if not having:
        return ""
    return (f"{group}.{leaf} is a setting of {group}={', '.join(having)} only"
            f"{f', not of {group}={chosen}' if chosen else ''}. ")


def launcher_message(err: BaseException) -> str | None:
    """One line for a launcher that cannot start here: hydra/launcher=slurm without a SLURM cluster."""
    if 'Could not detect "srun"' in str(err):
        return ("hydra/launcher=slurm submits the sweep to a SLURM cluster and this machine is not on one (no srun) -- "
                "run the command on the cluster's login node, or the sweep here with hydra/launcher=local")
    return None


def run(main: Callable[[], Any], script: str, config_name: str | None = None) -> Any:
    """Call a script's @hydra.main function; an error that escapes it (Hydra's own, before or around the task) is
    printed as `<script>: <one line>` with exit 1, unless HASHNET_DEBUG=1 or HYDRA_FULL_ERROR=1 asks for the chain."""
    user_debug = debugging()
    if os.environ.get("HYDRA_FULL_ERROR", "") in ("", "0"):
        os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing its shortened report
        if not user_debug:
            os.environ[FORCED_HYDRA_ERRORS] = "1"  # ours, not the user's: no traceback
    config_dir = Path(inspect.getfile(inspect.unwrap(main))).resolve().parent.parent / "configs"
    try:
        return main()
    except KeyboardInterrupt:
        if user_debug:
            raise
        print(f"{script}: interrupted (Ctrl-C)", file=sys.stderr)
        sys.exit(130)
    except Exception as err:  # the last resort of an entry point: every error becomes one line
        if user_debug:
            raise
        line = hydra_message(err, script, config_dir, config_name or script, sys.argv[1:]) or launcher_message(err)
        sys.exit(f"{script}: {line or describe(err, RUN_FOLDER_FIX)}")
