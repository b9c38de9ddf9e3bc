"""Runs -> tables: the paper's Table 1 (mAP by dataset and code length, its numbers beside ours), the
ablation table (its Table 3 layout), the methods table (mAP mean +- std over seeds, P@H<=2 and training
time per method and dataset) and one CSV row per run.

A run is a folder holding `metrics.json` (written by train/evaluate) and, when Hydra wrote it,
`.hydra/config.yaml` and `.hydra/hydra.yaml`. The method is metrics.json's ("hashnet" for one older than
that field). A HashNet run's variant comes from its composed config (method.weighted / method.continuation
false: hashnet_w / hashnet_sgn, both: pairwise; an evaluation takes its checkpoint's run's; for a config
without a method section, the `ablation` config choice); ranking continuous outputs adds +C (HashNet+C).
Another method's variant is its name (+C likewise). The protocol is metrics.json's
(hashnet.data.protocol; for a metrics.json older than that field: ties=index, empty=drop as then, the
split "strict" when the run left queries out of the database or dropped unlabeled rows, else "original",
queries-in-database unknown unless left out). Runs of the same cell are averaged (n shown); each row
names its protocol, and runs of different protocols in one row are refused. Runs of different training
lengths (metrics.json's steps) are never averaged: each row names its steps when they are known. An
evaluation (scripts/evaluate.py) of a checkpoint whose training run, or another evaluation of it under the
same protocol, is in the report is the same model scored again, not another seed: it is left out (with a note),
as is a run where no query could be scored (mAP null).
"""
from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import yaml

from hashnet.data.protocol import Protocol, split_of
from hashnet.methods import METHODS as REGISTERED
from hashnet.utils.errors import UserError

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


def _hashnet_variant(run_dir: Path) -> str | None:
    """The HashNet ablation a run's composed config trained (hashnet, hashnet_w, hashnet_sgn, pairwise);
    None when its config has no method section (an evaluation, or a run older than hashnet/methods/)."""
    method = _yaml(run_dir / ".hydra" / "config.yaml").get("method")
    if not method:
        return None
    weighted, continuation = method.get("weighted", True), method.get("continuation", True)
    return {(True, True): "hashnet", (False, True): "hashnet_w", (True, False): "hashnet_sgn",
            (False, False): "pairwise"}[bool(weighted), bool(continuation)]


def _variant(metrics: dict, run_dir: Path) -> str:
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


def load_run(metrics_file: Path) -> Run | None:
    """The Run of one metrics.json, with its variant (and, for an old metrics.json, protocol) from the
    Hydra files beside it; None when no query could be scored (mAP null). ReportError names a damaged file."""
    try:
        metrics = json.loads(metrics_file.read_text())
        if metrics.get("mAP", 0.0) is None:
            return None
        return Run(dataset=metrics["dataset"], net=metrics["net"], method=metrics.get("method", "hashnet"),
                   variant=_variant(metrics, metrics_file.parent), protocol=_protocol(metrics, metrics_file.parent),
                   hash_bit=int(metrics["hash_bit"]), topk=metrics.get("topk"), mAP=float(metrics["mAP"]),
                   precision_at_hamming_2=metrics.get("precision_at_hamming_2"),
                   train_seconds=metrics.get("train_seconds"), run_dir=str(metrics_file.parent),
                   steps=metrics.get("steps"), checkpoint=metrics.get("checkpoint"), mAP_at=metrics.get("mAP_at") or {},
                   training=metrics.get("kind", "training" if "train_seconds" in metrics or not metrics.get(
                       "checkpoint") else "evaluation") == "training")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError) as err:
        what = f"no {err}" if isinstance(err, KeyError) else f"{type(err).__name__}: {err}"
        raise ReportError(f"{metrics_file} cannot be read as a run's metrics ({what}) -- evaluate its checkpoint again "
                          f"(scripts/evaluate.py), or leave its folder out") from err


def collect(run_dirs: Iterable[str | Path], notes: list[str] | None = None) -> list[Run]:
    """Every run under run_dirs (a run folder, or a sweep folder holding several), sorted by cell; re-scores of a
    model already in the report and runs without a score are left out, each with a line appended to notes."""
    run_dirs = [Path(d) for d in run_dirs]
    absent = [str(d) for d in run_dirs if not d.exists()]
    if absent:
        raise ReportError(f"no such folder: {', '.join(absent)} -- pass run or multirun folders (outputs/..., "
                          "multirun/...)")
    files = sorted({f for d in run_dirs for f in d.rglob("metrics.json")})
    if not files:
        raise ReportError(f"no metrics.json under {[str(d) for d in run_dirs]}: pass run or multirun folders "
                          "(outputs/..., multirun/...) of finished runs")
    notes = [] if notes is None else notes
    runs, kept = [], {}
    loaded = [(f, load_run(f)) for f in files]
    for file, run in sorted(loaded, key=lambda pair: pair[1] is None or not pair[1].training):  # training runs first
        if run is None:
            notes.append(f"left out {file.parent}: no query could be scored (mAP null in its metrics.json)")
            continue
        same = kept.get((run.model, run.protocol))
        if same is not None:
            notes.append(f"left out {run.run_dir}: it scores the same checkpoint as {same.run_dir} (a re-score by "
                         "scripts/evaluate.py, not another seed)")
            continue
        kept[run.model, run.protocol] = run
        runs.append(run)
    return sorted(runs, key=lambda r: (r.dataset, r.net, r.protocol.split, _order(METHODS, r.method),
                                       _order(tuple(VARIANTS), r.variant), r.variant, r.hash_bit, r.steps or 0,
                                       r.run_dir))


def _steps(steps: int | None) -> str:
    """', 250 steps' for a row label; '' when metrics.json predates the field."""
    return "" if steps is None else f", {steps} steps"


def _order(names: Sequence[str], name: str) -> int:
    """name's place in names; after all of them when not one."""
    return names.index(name) if name in names else len(names)


def _mean(values: Sequence[float]) -> str:
    """Mean to 4 places, with the count when more than one run was averaged."""
    mean = sum(values) / len(values)
    return f"{mean:.4f}" + (f" (n={len(values)})" if len(values) > 1 else "")


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


def _mixed_protocols(row: tuple, first: Run, other: Run) -> ValueError:
    """The error for runs of different protocols in one row: both folders and lines, and the fix."""
    return ReportError(
        f"runs of different protocols in one row of the report ({', '.join(str(p) for p in row if p is not None)}):\n"
        f"  {first.run_dir}: {first.protocol}\n  {other.run_dir}: {other.protocol}\n"
        f"their mAP are not comparable. Pass only runs of one protocol, e.g.\n"
        f"  python scripts/report.py {first.run_dir}\n"
        f"or evaluate the checkpoints alike (scripts/evaluate.py with the same dataset.topk, dataset.ties, "
        f"dataset.empty_queries and dataset options)." + (
            "\nqueries-in-database=unknown: that metrics.json predates the protocol field; evaluating its "
            "checkpoint again records it." if None in (first.protocol.queries_in_database,
                                                       other.protocol.queries_in_database) else ""))


def _rows(runs: Sequence[Run], row_key) -> dict[tuple, list[Run]]:
    """{row_key(run): [run, ...]} in run order.

    A row whose runs differ in protocol is refused (ValueError naming two of them): averaging them, or
    setting them side by side under one protocol line, would compare numbers that are not comparable.
    """
    rows: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        key = row_key(run)
        if rows[key] and rows[key][0].protocol != run.protocol:
            raise _mixed_protocols(key, rows[key][0], run)
        rows[key].append(run)
    return rows


def _grid(runs: Sequence[Run], row_key) -> tuple[list[int], dict[tuple, dict[int, list[float]]], dict[tuple, Protocol]]:
    """Code lengths present, {row_key(run): {hash_bit: [mAP, ...]}} in run order and each row's protocol
    (a row of mixed protocols is refused, see _rows)."""
    rows = _rows(runs, row_key)
    cells: dict[tuple, dict[int, list[float]]] = {}
    for key, row in rows.items():
        cells[key] = defaultdict(list)
        for run in row:
            cells[key][run.hash_bit].append(run.mAP)
    return sorted({run.hash_bit for run in runs}), cells, {key: row[0].protocol for key, row in rows.items()}


def table1(runs: Sequence[Run]) -> str:
    """The paper's Table 1 layout: per dataset, the paper's HashNet row then ours, mAP@R by code length,
    and each row's protocol."""
    runs = [run for run in runs if run.variant == "hashnet"]
    bits, cells, protocols = _grid(runs, lambda r: (r.dataset, r.topk, f"ours, {r.net}" + (
        ", strict" if r.protocol.split == "strict" else "") + _steps(r.steps)))
    rows, shown_paper = [], set()
    for (dataset, topk, method), by_bits in cells.items():
        if dataset in PAPER and dataset not in shown_paper and PAPER[dataset][0] == topk:
            shown_paper.add(dataset)
            rows.append([dataset, f"mAP@{topk}", f"paper, {PAPER_NET}",
                         *(f"{PAPER[dataset][1][BITS.index(b)]:.4f}" if b in BITS else "" for b in bits),
                         f"mAP@{topk} {PAPER_CONVENTIONS}"])
        rows.append([dataset, f"mAP@{topk or 'all'}", method, *(_mean(by_bits[b]) if by_bits.get(b) else "" for b in bits),
                     protocols[dataset, topk, method]])
    return _markdown(["dataset", "metric", "method", *(f"{b} bits" for b in bits), "protocol"], rows)


def ablation_table(runs: Sequence[Run]) -> str | None:
    """The paper's Table 3 layout (variant rows, code-length columns, each row's protocol) per dataset/net/split;
    None without ablations."""
    runs = [run for run in runs if run.method == "hashnet"]
    if all(run.variant == "hashnet" for run in runs):
        return None
    bits, cells, protocols = _grid(runs, lambda r: (r.dataset, r.net, r.protocol.split,
                                                    VARIANTS.get(r.variant, r.variant) + _steps(r.steps)))
    rows = [[dataset, net, variant, *(_mean(by_bits[b]) if by_bits.get(b) else "" for b in bits),
             protocols[dataset, net, split, variant]]
            for (dataset, net, split, variant), by_bits in cells.items()]
    return _markdown(["dataset", "net", "variant", *(f"{b} bits" for b in bits), "protocol"], rows)


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1 in the denominator: the seeds are a sample of them);
    the deviation is None for one value."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((value - mean) ** 2 for value in values) / (len(values) - 1))


def _mean_or_blank(values: Sequence[float | None], digits: int) -> str:
    """The mean of the values that are not None, to digits places; blank when none is."""
    known = [value for value in values if value is not None]
    return f"{sum(known) / len(known):.{digits}f}" if known else ""


def methods_table(runs: Sequence[Run]) -> str | None:
    """A row per (dataset, net, code length, method), methods in METHODS order: mAP@R mean +- std over its
    runs (seeds) with their count (and so at every other R the runs scored, from metrics.json's mAP_at), mean
    P@H<=2, mean training seconds, the row's protocol. Only each
    method as published (HashNet: not its ablations; sign codes). None with HashNet runs alone."""
    runs = [run for run in runs if run.variant == run.method]
    if all(run.method == "hashnet" for run in runs):
        return None
    ordered = sorted(runs, key=lambda r: (r.dataset, r.net, r.hash_bit, _order(METHODS, r.method), r.method,
                                          r.steps or 0))
    extra = sorted({r for run in runs for r in list(run.mAP_at)[1:]},  # the R after each run's first, ascending
                   key=lambda r: (r == "all", int(r) if r.isdigit() else 0))
    rows = []
    for (dataset, net, bits, method, steps), row in _rows(
            ordered, lambda r: (r.dataset, r.net, r.hash_bit, r.method, r.steps)).items():
        others = [_mean_std_cell([run.mAP_at[r] for run in row if r in run.mAP_at]) for r in extra]
        rows.append([dataset, net, bits, method, "" if steps is None else steps, f"mAP@{row[0].topk or 'all'}",
                     _mean_std_cell([run.mAP for run in row]), *others,
                     _mean_or_blank([run.precision_at_hamming_2 for run in row], 4),
                     _mean_or_blank([run.train_seconds for run in row], 1), row[0].protocol])
    return _markdown(["dataset", "net", "bits", "method", "steps", "metric", "mAP (mean ± std, n)",
                      *(f"mAP@{r} (mean ± std, n)" for r in extra), "P@H<=2", "train time (s)", "protocol"], rows)


def _mean_std_cell(values: Sequence[float]) -> str:
    """'mean ± std (n=..)' to 4 places (the std left out for one value); blank without values."""
    if not values:
        return ""
    mean, std = mean_std(values)
    return f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else "") + f" (n={len(values)})"


def to_csv(runs: Sequence[Run]) -> str:
    """One row per run, with its protocol line and the paper's number where it applies."""
    buffer = io.StringIO()
    fields = [*Run.__dataclass_fields__, "paper_mAP"]
    writer = csv.DictWriter(buffer, fields, lineterminator="\n")
    writer.writeheader()
    for run in runs:
        writer.writerow({**asdict(run), "protocol": str(run.protocol), "paper_mAP": run.paper_mAP})
    return buffer.getvalue()


def to_markdown(runs: Sequence[Run]) -> str:
    """The report: Table 1 when there are HashNet runs, the ablation table when there are ablation runs, the
    methods table when there are runs of another method."""
    parts = []
    if any(run.variant == "hashnet" for run in runs):
        parts += ["## mAP (HashNet, paper's Table 1 layout)", table1(runs)]
    ablation = ablation_table(runs)
    if ablation:
        parts += ["## Ablations (paper's Table 3 layout)", ablation]
    methods = methods_table(runs)
    if methods:
        parts += ["## Methods (mean ± std over seeds)", methods]
    return "\n\n".join(parts) + "\n"
