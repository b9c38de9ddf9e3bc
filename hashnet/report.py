"""Runs -> tables: the paper's Table 1 (mAP by dataset and code length, its numbers beside ours), the
ablation table (its Table 3 layout) and one CSV row per run.

A run is a folder holding `metrics.json` (written by train/evaluate) and, when Hydra wrote it,
`.hydra/config.yaml` and `.hydra/hydra.yaml`; the variant is the `ablation` config choice ("hashnet"
when none; an evaluation takes its checkpoint's run's, and "hashnet_c" when it ranked HashNet's
continuous outputs), the protocol is "strict" when the run left queries out of the database or dropped
unlabeled rows, else "original". Runs of the same cell are averaged (n shown).
"""
from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

BITS = (16, 32, 48, 64)
# HashNet's published mAP (Cao et al., ICCV 2017, Table 1; AlexNet): dataset -> (R of mAP@R, mAP per BITS).
PAPER = {
    "imagenet": (1000, (0.5059, 0.6306, 0.6633, 0.6835)),
    "nus_wide": (5000, (0.6623, 0.6988, 0.7114, 0.7163)),
    "coco": (5000, (0.6873, 0.7184, 0.7301, 0.7362)),
}
PAPER_NET = "alexnet"
# The paper's ablation rows, in its order, then the plain pairwise baseline.
VARIANTS = {"hashnet_c": "HashNet+C", "hashnet": "HashNet", "hashnet_w": "HashNet-W",
            "hashnet_sgn": "HashNet-sgn", "pairwise": "pairwise (no W, no continuation)"}


@dataclass(frozen=True)
class Run:
    """One run's numbers and what identifies its cell."""
    dataset: str
    net: str
    variant: str
    protocol: str
    hash_bit: int
    topk: int | None
    mAP: float
    precision_at_hamming_2: float | None
    run_dir: str

    @property
    def paper_mAP(self) -> float | None:
        """The paper's number for this cell (HashNet, AlexNet, its protocol and R), or None."""
        if self.dataset not in PAPER or self.hash_bit not in BITS or self.variant != "hashnet":
            return None
        topk, values = PAPER[self.dataset]
        return values[BITS.index(self.hash_bit)] if self.topk == topk and self.protocol == "original" else None


def protocol(dataset: Mapping[str, Any]) -> str:
    """"strict" when a run dropped unlabeled rows or left the queries out of the database, else "original"."""
    return "strict" if dataset.get("drop_unlabeled") or dataset.get("exclude_queries_from_database") else "original"


def _yaml(path: Path) -> dict:
    """A YAML file as a dict; {} when absent."""
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text()) or {}


def _choices(run_dir: Path) -> dict:
    """The config group choices Hydra recorded for the run in run_dir; {} when it has none."""
    return _yaml(run_dir / ".hydra" / "hydra.yaml").get("hydra", {}).get("runtime", {}).get("choices", {})


def _variant(metrics: dict, run_dir: Path) -> str:
    """The ablation a run measured: its `ablation` choice or, for an evaluation (which has no such choice),
    that of the training run its checkpoint came from; ranking HashNet's continuous outputs is HashNet+C."""
    choices = _choices(run_dir)
    if "ablation" not in choices and metrics.get("checkpoint"):
        choices = _choices(Path(metrics["checkpoint"]).parent.parent)  # <run>/checkpoints/<name>.ckpt
    variant = choices.get("ablation") or "hashnet"
    if metrics.get("eval_codes") == "continuous" and variant != "hashnet_c":
        return "hashnet_c" if variant == "hashnet" else f"{variant}+C"
    return variant


def load_run(metrics_file: Path) -> Run:
    """The Run of one metrics.json, with its variant and protocol from the Hydra files beside it."""
    metrics = json.loads(metrics_file.read_text())
    dataset_cfg = _yaml(metrics_file.parent / ".hydra" / "config.yaml").get("dataset", {})
    return Run(dataset=metrics["dataset"], net=metrics["net"], variant=_variant(metrics, metrics_file.parent),
               protocol=protocol(dataset_cfg), hash_bit=int(metrics["hash_bit"]),
               topk=metrics.get("topk"), mAP=float(metrics["mAP"]),
               precision_at_hamming_2=metrics.get("precision_at_hamming_2"), run_dir=str(metrics_file.parent))


def collect(run_dirs: Iterable[str | Path]) -> list[Run]:
    """Every run under run_dirs (a run folder, or a sweep folder holding several), sorted by cell."""
    files = sorted({f for d in run_dirs for f in Path(d).rglob("metrics.json")})
    if not files:
        raise FileNotFoundError(f"no metrics.json under {[str(d) for d in run_dirs]}: pass run or multirun folders")
    runs = [load_run(f) for f in files]
    return sorted(runs, key=lambda r: (r.dataset, r.net, r.protocol, list(VARIANTS).index(r.variant)
                                       if r.variant in VARIANTS else len(VARIANTS), r.hash_bit))


def _mean(values: Sequence[float]) -> str:
    """Mean to 4 places, with the count when more than one run was averaged."""
    mean = sum(values) / len(values)
    return f"{mean:.4f}" + (f" (n={len(values)})" if len(values) > 1 else "")


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


def _grid(runs: Sequence[Run], row_key) -> tuple[list[int], dict[tuple, dict[int, list[float]]]]:
    """Code lengths present, and {row_key(run): {hash_bit: [mAP, ...]}} in run order."""
    cells: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        cells[row_key(run)][run.hash_bit].append(run.mAP)
    return sorted({run.hash_bit for run in runs}), cells


def table1(runs: Sequence[Run]) -> str:
    """The paper's Table 1 layout: per dataset, the paper's HashNet row then ours, mAP@R by code length."""
    runs = [run for run in runs if run.variant == "hashnet"]
    bits, cells = _grid(runs, lambda r: (r.dataset, r.topk, f"ours, {r.net}" + (", strict" if r.protocol == "strict" else "")))
    rows, shown_paper = [], set()
    for (dataset, topk, method), by_bits in cells.items():
        if dataset in PAPER and dataset not in shown_paper and PAPER[dataset][0] == topk:
            shown_paper.add(dataset)
            rows.append([dataset, f"mAP@{topk}", f"paper, {PAPER_NET}",
                         *(f"{PAPER[dataset][1][BITS.index(b)]:.4f}" if b in BITS else "" for b in bits)])
        rows.append([dataset, f"mAP@{topk or 'all'}", method, *(_mean(by_bits[b]) if by_bits.get(b) else "" for b in bits)])
    return _markdown(["dataset", "metric", "method", *(f"{b} bits" for b in bits)], rows)


def ablation_table(runs: Sequence[Run]) -> str | None:
    """The paper's Table 3 layout (variant rows, code-length columns) per dataset/net; None without ablations."""
    if all(run.variant == "hashnet" for run in runs):
        return None
    bits, cells = _grid(runs, lambda r: (r.dataset, r.net, r.protocol, VARIANTS.get(r.variant, r.variant)))
    rows = [[dataset, net, protocol, variant, *(_mean(by_bits[b]) if by_bits.get(b) else "" for b in bits)]
            for (dataset, net, protocol, variant), by_bits in cells.items()]
    return _markdown(["dataset", "net", "protocol", "variant", *(f"{b} bits" for b in bits)], rows)


def to_csv(runs: Sequence[Run]) -> str:
    """One row per run, with the paper's number where it applies."""
    buffer = io.StringIO()
    fields = [*Run.__dataclass_fields__, "paper_mAP"]
    writer = csv.DictWriter(buffer, fields, lineterminator="\n")
    writer.writeheader()
    for run in runs:
        writer.writerow({**asdict(run), "paper_mAP": run.paper_mAP})
    return buffer.getvalue()


def to_markdown(runs: Sequence[Run]) -> str:
    """The report: Table 1, then the ablation table when there are ablation runs."""
    parts = ["## mAP (HashNet, paper's Table 1 layout)", table1(runs)]
    ablation = ablation_table(runs)
    if ablation:
        parts += ["## Ablations (paper's Table 3 layout)", ablation]
    return "\n\n".join(parts) + "\n"
