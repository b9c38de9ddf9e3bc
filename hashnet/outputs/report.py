"""Runs -> tables: the paper's Table 1 (mAP by dataset and code length, its numbers beside ours), the
ablation table (its Table 3 layout), the methods table (mAP mean +- std over seeds at every R scored, P@H<=2 and
training time per method and dataset) and one CSV row per run (hashnet.outputs.runs reads the runs).

Runs of the same cell are averaged (n shown); each row names its protocol, and runs of different protocols in one
row are refused. Runs of different training lengths (metrics.json's steps) are never averaged: each row names its
steps when they are known.
"""
from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import asdict
from typing import Sequence

from hashnet.data.protocol import Protocol
from hashnet.methods import METHODS as REGISTERED
from hashnet.outputs.runs import (BITS, METHODS, PAPER, PAPER_CONVENTIONS, PAPER_NET, VARIANTS, ReportError, Run, order,
                                  two_stage_variant)


def _steps(steps: int | None) -> str:
    """', 250 steps' for a row label; '' when metrics.json predates the field."""
    return "" if steps is None else f", {steps} steps"


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


def _as_published(runs: Sequence[Run]) -> list[Run]:
    """The runs of each method as published (HashNet: not its ablations; sign codes; a memory-bank run and a
    two-stage fit, on another run's features, as variants of their own), methods in METHODS order."""
    def published(run: Run) -> bool:
        method = two_stage_variant(run.method, run.features_of) if run.features_of else run.method
        return run.variant in (method, f"{method}+bank")
    return sorted(filter(published, runs), key=lambda r: (order(METHODS, r.method), r.variant))


def methods_table(runs: Sequence[Run]) -> str | None:
    """A row per (dataset, net, code length, method), methods in METHODS order: mAP@R mean +- std over its
    runs (seeds) with their count (and so at every other R the runs scored, from metrics.json's mAP_at), mean
    P@H<=2, mean training seconds, the row's protocol. Only each method as published (HashNet: not its ablations;
    sign codes), against a memory bank in a row of its own. None with HashNet runs alone."""
    runs = _as_published(runs)
    if all(run.method == "hashnet" for run in runs):
        return None
    ordered = sorted(runs, key=lambda r: (r.dataset, r.net, r.hash_bit, order(METHODS, r.method), r.variant,
                                          r.steps or 0))
    extra = sorted({r for run in runs for r in list(run.mAP_at)[1:]},  # the R after each run's first, ascending
                   key=lambda r: (r == "all", int(r) if r.isdigit() else 0))
    rows = []
    for (dataset, net, bits, method, steps), row in _rows(
            ordered, lambda r: (r.dataset, r.net, r.hash_bit, r.variant, r.steps)).items():
        others = [_mean_std_cell([run.mAP_at[r] for run in row if r in run.mAP_at]) for r in extra]
        rows.append([dataset, net, bits, method, "" if steps is None else steps, row[0].protocol.metric,
                     _mean_std_cell([run.mAP for run in row]), *others,
                     _mean_or_blank([run.precision_at_hamming_2 for run in row], 4),
                     _mean_or_blank([run.train_seconds for run in row], 1), row[0].protocol])
    return _markdown(["dataset", "net", "bits", "method", "steps", "metric", "mAP (mean ± std, n)",
                      *(f"mAP@{r} (mean ± std, n)" for r in extra), "P@H<=2", "train time (s)", "protocol"], rows)


def methods_cells(runs: Sequence[Run]) -> dict[str, tuple[str, dict[str, list[float]]]]:
    """The methods table's rows as figure panels: '<dataset>_<net>_<K>bit_<steps>steps' -> (its metric,
    {variant: the runs' mAP}), methods in the table's order; the methods that never read the labels in a panel of
    their own, '<dataset>_<net>_<K>bit_without_labels', each trained one named with its steps ('cibhash, 300 steps')."""
    panels: dict[str, tuple[str, dict[str, list[float]]]] = {}
    for run in _as_published(runs):
        unsupervised = without_labels(run)
        panel = "without_labels" if unsupervised else f"{run.steps}steps"
        key = f"{run.dataset}_{run.net}_{run.hash_bit}bit_{panel}"
        metric, cells = panels.setdefault(key, (run.protocol.metric, {}))
        name = f"{run.variant}, {run.steps} steps" if unsupervised and run.steps else run.variant
        cells.setdefault(name, []).append(run.mAP)
    return panels


def bits_series(runs: Sequence[Run]) -> dict[str, tuple[str, dict[str, dict[int, list[float]]]]]:
    """For a figure of mAP against code length: '<dataset>_<net>_<steps>steps' -> (its metric, {variant: {bits:
    the runs' mAP}}), for the methods measured at two code lengths or more; panels without one are left out."""
    panels: dict[str, tuple[str, dict[str, dict[int, list[float]]]]] = {}
    for run in _as_published(runs):
        key = f"{run.dataset}_{run.net}_{run.steps}steps"
        metric, series = panels.setdefault(key, (run.protocol.metric, {}))
        series.setdefault(run.variant, {}).setdefault(run.hash_bit, []).append(run.mAP)
    return {key: (metric, {variant: by_bits for variant, by_bits in series.items() if len(by_bits) > 1})
            for key, (metric, series) in panels.items() if any(len(by_bits) > 1 for by_bits in series.values())}


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


def without_labels(run: Run) -> bool:
    """Whether the run never read the training labels: its method is fitted or unsupervised (hashnet.methods), and
    not fitted on the features of a run that read them (the two-stage baseline)."""
    method = REGISTERED.get(run.method)
    return bool(method and method.unsupervised) and not run.features_of


def to_markdown(runs: Sequence[Run]) -> str:
    """The report: Table 1 when there are HashNet runs, the ablation table when there are ablation runs, the
    methods table when there are runs of another method, the methods that never read the labels in a table of their
    own."""
    parts = []
    if any(run.variant == "hashnet" for run in runs):
        parts += ["## mAP (HashNet, paper's Table 1 layout)", table1(runs)]
    ablation = ablation_table(runs)
    if ablation:
        parts += ["## Ablations (paper's Table 3 layout)", ablation]
    methods = methods_table([run for run in runs if not without_labels(run)])
    if methods:
        parts += ["## Methods (mean ± std over seeds)", methods]
    unsupervised = methods_table([run for run in runs if without_labels(run)])
    if unsupervised:
        parts += ["## Methods without labels (mean ± std over seeds; the labels only score them)", unsupervised]
    return "\n\n".join(parts) + "\n"
