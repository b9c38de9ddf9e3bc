"""Runs as the report reads them: a folder holding `metrics.json` (written by train/evaluate) and, when Hydra wrote it,
`.hydra/config.yaml` and `.hydra/hydra.yaml`. The method is metrics.json's ("hashnet" for one older than that
field). A HashNet run's variant comes from its composed config (method.weighted / method.continuation false:
hashnet_w / hashnet_sgn, both: pairwise; an evaluation takes its checkpoint's run's; for a config without a method
section, the `ablation` config choice); ranking continuous outputs adds +C (HashNet+C). Another method's variant is
its name (+C likewise); a run trained against a memory bank (method.pairs=bank) adds +bank; a method fitted on the
features of another run's checkpoint (method.features=<.ckpt>: the two-stage baseline) is "<method> on <that run's
method> features", and its labels reach it through them. The protocol is
metrics.json's (hashnet.data.protocol; for a metrics.json older than that field: ties=index, empty=drop as then, the
split "strict" when the run left queries out of the database or dropped unlabeled rows, else "original",
queries-in-database unknown unless left out). An evaluation (scripts/evaluate.py) of a checkpoint whose training
run, or another evaluation of it under the same protocol, is collected is the same model scored again, not another
seed: it is left out (with a note), as is a run where no query could be scored (mAP null) or that was not evaluated
(a dataset without labels: metrics.json's not_evaluated says why).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import yaml

from hashnet.data.protocol import Protocol, split_of
from hashnet.methods import METHODS as REGISTERED
from hashnet.utils.errors import UserError
from hashnet.utils.files import walk_once

BITS = (16, 32, 48, 64)
# HashNet's published mAP (Cao et al., ICCV 2017, Table 1; AlexNet): dataset -> (R of mAP@R, mAP per BITS).
PAPER = {
    "imagenet": (1000, (0.5059, 0.6306, 0.6633, 0.6835)),
    "nus_wide": (5000, (0.6623, 0.6988, 0.7114, 0.7163)),
    "coco": (5000, (0.6873, 0.7184, 0.7301, 0.7362)),
}
PAPER_NET = "alexnet"
PAPER_CONVENTIONS = "ties=arbitrary empty=drop split=original"  # its code: unstable argsort, queries without a hit left out
# The paper's ablation rows, in its order, then the plain pairwise baseline.
VARIANTS = {"hashnet_c": "HashNet+C", "hashnet": "HashNet", "hashnet_w": "HashNet-W",
            "hashnet_sgn": "HashNet-sgn", "pairwise": "pairwise (no W, no continuation)"}
METHODS = tuple(REGISTERED)  # the methods table's row order: the registry's, HashNet first


@dataclass(frozen=True)
class Run:
    """One run's numbers and what identifies its cell."""
    dataset: str
    net: str
    method: str
    variant: str
    protocol: Protocol
    hash_bit: int
    topk: int | None
    mAP: float
    precision_at_hamming_2: float | None
    train_seconds: float | None
    run_dir: str
    steps: int | None = None
    checkpoint: str | None = None
    training: bool = True  # a training run's own evaluation; False: scripts/evaluate.py re-scoring a checkpoint
    mAP_at: dict[str, float] = field(default_factory=dict)  # every R scored ("all", "1000", ...), topk's first
    features_of: str | None = None  # the method of the run whose checkpoint gave a fitted method its features

    @property
    def model(self) -> tuple:
        """What identifies the weights scored: the training run's folder and the step (the checkpoint's file name
        when the step is unknown); a run without a checkpoint in a run's checkpoints/ folder is its own."""
        if self.training or not self.checkpoint:
            folder, name = Path(self.run_dir), "last.ckpt"
        else:
            checkpoint = Path(self.checkpoint)
            folder, name = (checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint), \
                checkpoint.name
        return str(folder.resolve()), self.steps if self.steps is not None else name

    @property
    def paper_mAP(self) -> float | None:
        """The paper's number for this cell (HashNet, its R, the original split, empty=drop), or None."""
        if self.dataset not in PAPER or self.hash_bit not in BITS or self.variant != "hashnet":
            return None
        topk, values = PAPER[self.dataset]
        comparable = self.protocol.split == "original" and self.protocol.empty_queries == "drop"
        return values[BITS.index(self.hash_bit)] if self.topk == topk and comparable else None


def _yaml(path: Path) -> dict:
    """A YAML file as a dict; {} when absent."""
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text()) or {}


def _choices(run_dir: Path) -> dict:
    """The config group choices Hydra recorded for the run in run_dir; {} when it has none."""
    return _yaml(run_dir / ".hydra" / "hydra.yaml").get("hydra", {}).get("runtime", {}).get("choices", {})


def _method_config(run_dir: Path) -> dict:
    """The method section of the run's composed config; {} when it has none."""
    return _yaml(run_dir / ".hydra" / "config.yaml").get("method") or {}


def _hashnet_variant(run_dir: Path) -> str | None:
    """The HashNet ablation a run's composed config trained (hashnet, hashnet_w, hashnet_sgn, pairwise);
    None when its config has no method section (an evaluation, or a run older than hashnet/methods/)."""
    method = _method_config(run_dir)
    if not method:
        return None
    weighted, continuation = method.get("weighted", True), method.get("continuation", True)
    return {(True, True): "hashnet", (False, True): "hashnet_w", (True, False): "hashnet_sgn",
            (False, False): "pairwise"}[bool(weighted), bool(continuation)]


def _features_of(run_dir: Path) -> str | None:
    """The method of the run whose checkpoint a fitted method took its features from (method.features=<.ckpt>), or
    None (pixels, a backbone, or a method that fits nothing)."""
    features = _method_config(run_dir).get("features")
    if not (isinstance(features, str) and features.endswith(".ckpt")):
        return None
    source = Path(features).parent.parent  # <run>/checkpoints/last.ckpt
    return _method_config(source).get("name") or Path(features).name


def two_stage_variant(method: str, features_of: str) -> str:
    """The variant of `method` fitted on the features of a checkpoint of a `features_of` run (the two-stage baseline)."""
    return f"{method} on {features_of} features"


def _variant(metrics: dict, run_dir: Path, features_of: str | None) -> str:
    """What a run measured: another method's name, or HashNet's ablation from the run's config (an evaluation,
    which has none, takes that of the training run its checkpoint came from; a config without a method
    section, its `ablation` choice); ranking continuous outputs adds +C (HashNet's is HashNet+C)."""
    method = metrics.get("method", "hashnet")
    variant = method
    if method == "hashnet":
        trained_in = Path(metrics["checkpoint"]).parent.parent if metrics.get("checkpoint") else None  # <run>/checkpoints/
        variant = _hashnet_variant(run_dir) or (trained_in and _hashnet_variant(trained_in))
        if variant is None:
            choices = _choices(run_dir)
            if "ablation" not in choices and trained_in:
                choices = _choices(trained_in)
            variant = choices.get("ablation") or "hashnet"
    if features_of:
        variant = two_stage_variant(variant, features_of)
    if _method_config(run_dir).get("pairs") == "bank":  # the reference regime is another row than batch pairs
        variant = f"{variant}+bank"
    if metrics.get("eval_codes") == "continuous" and variant != "hashnet_c":
        return "hashnet_c" if variant == "hashnet" else f"{variant}+C"
    return variant


def _protocol(metrics: dict, run_dir: Path) -> Protocol:
    """The protocol metrics.json records or, for one written before it did, what it was then: ties=index,
    empty=drop, the split from the run's dataset options, queries-in-database "no" if it left them out."""
    if "protocol" in metrics:
        unseen = metrics.get("unseen")
        return Protocol(metrics["topk"], metrics["ties"], metrics["empty_queries"], metrics["queries_in_database"],
                        metrics["split"], tuple(unseen) if unseen else None)
    dataset_cfg = _yaml(run_dir / ".hydra" / "config.yaml").get("dataset", {})
    exclude = bool(dataset_cfg.get("exclude_queries_from_database"))
    return Protocol(metrics.get("topk"), queries_in_database=False if exclude else None,
                    split=split_of(bool(dataset_cfg.get("drop_unlabeled")), exclude))


class ReportError(UserError, ValueError):
    """A folder holds no runs, or a metrics.json cannot be read."""


def load_run(metrics_file: Path) -> Run | str:
    """The Run of one metrics.json, with its variant (and, for an old metrics.json, protocol) from the
    Hydra files beside it; or, when it has no score, why: not evaluated (a dataset without labels), or mAP null (no
    query could be scored) or NaN. ReportError names a damaged file."""
    try:
        metrics = json.loads(metrics_file.read_text())
        if "not_evaluated" in metrics:
            return f"not evaluated ({metrics['not_evaluated']})"
        if metrics.get("mAP", 0.0) is None or math.isnan(float(metrics.get("mAP", 0.0))):
            return "no score (its metrics.json's mAP is null -- no query could be scored -- or NaN)"
        features_of = _features_of(metrics_file.parent)
        return Run(dataset=metrics["dataset"], net=metrics["net"], method=metrics.get("method", "hashnet"),
                   variant=_variant(metrics, metrics_file.parent, features_of),
                   protocol=_protocol(metrics, metrics_file.parent),
                   hash_bit=int(metrics["hash_bit"]), topk=metrics.get("topk"), mAP=float(metrics["mAP"]),
                   precision_at_hamming_2=metrics.get("precision_at_hamming_2"),
                   train_seconds=metrics.get("train_seconds"), run_dir=str(metrics_file.parent),
                   steps=metrics.get("steps"), checkpoint=metrics.get("checkpoint"), mAP_at=metrics.get("mAP_at") or {},
                   features_of=features_of,
                   training=metrics.get("kind", "training" if "train_seconds" in metrics or not metrics.get(
                       "checkpoint") else "evaluation") == "training")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError) as err:
        what = f"no {err}" if isinstance(err, KeyError) else f"{type(err).__name__}: {err}"
        raise ReportError(f"{metrics_file} cannot be read as a run's metrics ({what}) -- evaluate its checkpoint again "
                          f"(scripts/evaluate.py), or leave its folder out") from err


def metrics_files(path: Path) -> list[Path]:
    """The metrics.json files below the folder path, at any depth, following symbolic links to run folders (a
    folder reached twice is walked once); path itself when it is a metrics.json."""
    if path.is_file():
        return [path] if path.name == "metrics.json" else []
    found = []
    for top, folders, files in walk_once(path):
        folders.sort()
        found += [Path(top, "metrics.json")] if "metrics.json" in files else []
    return found


def collect(run_dirs: Iterable[str | Path], notes: list[str] | None = None) -> list[Run]:
    """Every run under run_dirs (a run folder, or a sweep folder holding several), sorted by cell; re-scores of a
    model already in the report and runs without a score are left out, each with a line appended to notes."""
    run_dirs = [Path(d) for d in run_dirs]
    absent = [str(d) for d in run_dirs if not d.exists()]
    if absent:
        raise ReportError(f"no such folder: {', '.join(absent)} -- pass run or multirun folders (outputs/..., "
                          "multirun/...)")
    files = sorted({f for d in run_dirs for f in metrics_files(d)})
    if not files:
        raise ReportError(f"no metrics.json under {[str(d) for d in run_dirs]}: pass run or multirun folders "
                          "(outputs/..., multirun/...) of finished runs")
    notes = [] if notes is None else notes
    runs, kept = [], {}
    loaded = [(f, load_run(f)) for f in files]
    for file, run in sorted(loaded, key=lambda pair: isinstance(pair[1], str) or not pair[1].training):  # trained first
        if isinstance(run, str):
            notes.append(f"left out {file.parent}: {run}")
            continue
        same = kept.get((run.model, run.protocol))
        if same is not None:
            notes.append(f"left out {run.run_dir}: it scores the same checkpoint as {same.run_dir} (a re-score by "
                         "scripts/evaluate.py, not another seed)")
            continue
        kept[run.model, run.protocol] = run
        runs.append(run)
    return sorted(runs, key=lambda r: (r.dataset, r.net, r.protocol.split, order(METHODS, r.method),
                                       order(tuple(VARIANTS), r.variant), r.variant, r.hash_bit, r.steps or 0,
                                       r.run_dir))


def order(names: Sequence[str], name: str) -> int:
    """name's place in names; after all of them when not one."""
    return names.index(name) if name in names else len(names)
