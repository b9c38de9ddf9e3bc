"""scripts/report.py: runs -> the paper's Table 1 with its numbers beside ours, the ablation table, CSV."""
import csv
import io
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from hashnet.outputs.report import PAPER, PAPER_CONVENTIONS, collect, to_csv, to_markdown
from hashnet.retrieval.protocol import Protocol

ROOT = Path(__file__).resolve().parents[2]


def fake_run(folder: Path, dataset: str, net: str, bits: int, mean_ap: float, topk: int = 5000,
             ablation: str | None = None, strict: bool = False, protocol: Protocol | None = None) -> Path:
    """A run folder as train() and Hydra leave it: metrics.json and .hydra/{config,hydra}.yaml.

    Without protocol, metrics.json is as written before it recorded one."""
    (folder / ".hydra").mkdir(parents=True)
    metrics = {"mAP": mean_ap, "topk": topk, "hash_bit": bits, "net": net, "dataset": dataset,
               "checkpoint": None, "num_queries": 5, "num_database": 50, "precision_at_hamming_2": 0.5}
    if protocol is not None:
        metrics |= {"protocol": str(protocol), **asdict(protocol)}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(
        {"dataset": {"name": dataset, "drop_unlabeled": False, "exclude_queries_from_database": strict}}))
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(
        {"hydra": {"runtime": {"choices": {"ablation": ablation, "dataset": dataset}}}}))
    return folder


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    for i, bits in enumerate((16, 32)):
        fake_run(tmp_path / "sweep" / f"{i}_coco", "coco", "alexnet", bits, 0.6 + bits / 1000)
    fake_run(tmp_path / "sweep" / "2_coco_again", "coco", "alexnet", 16, 0.7)  # a second seed of one cell
    fake_run(tmp_path / "sweep" / "3_coco_r50", "coco", "resnet50", 32, 0.8)
    fake_run(tmp_path / "sweep" / "4_imagenet", "imagenet", "alexnet", 16, 0.5, topk=1000, strict=True)
    for i, ablation in enumerate(("hashnet_w", "hashnet_sgn", "hashnet_c")):
        fake_run(tmp_path / "ablation" / str(i), "digits_multi", "resnet18", 16, 0.81 + i / 100, 1000, ablation)
    fake_run(tmp_path / "ablation" / "3", "digits_multi", "resnet18", 16, 0.85, 1000, "hashnet")
    return tmp_path


def test_table1_puts_the_papers_numbers_beside_ours(sweep):
    markdown = to_markdown(collect([sweep / "sweep"]))
    lines = markdown.splitlines()
    assert "| dataset | metric | method | 16 bits | 32 bits | protocol |" in lines
    # each row names its protocol: old metrics.json (no protocol field) had ties=index and empty=drop
    old = "ties=index empty=drop queries-in-database=unknown split=original"
    assert f"| coco | mAP@5000 | paper, alexnet | 0.6873 | 0.7184 | mAP@5000 {PAPER_CONVENTIONS} |" in lines
    assert f"| coco | mAP@5000 | ours, alexnet | 0.6580 (n=2) | 0.6320 | mAP@5000 {old} |" in lines  # (0.616 + 0.7) / 2
    assert f"| coco | mAP@5000 | ours, resnet50 |  | 0.8000 | mAP@5000 {old} |" in lines
    assert f"| imagenet | mAP@1000 | paper, alexnet | 0.5059 | 0.6306 | mAP@1000 {PAPER_CONVENTIONS} |" in lines
    # exclude_queries_from_database: no query in the database, the strict split
    strict = "mAP@1000 ties=index empty=drop queries-in-database=no split=strict"
    assert f"| imagenet | mAP@1000 | ours, alexnet, strict | 0.5000 |  | {strict} |" in lines
    assert "Ablations" not in markdown


def test_ablation_table_in_the_papers_order(sweep):
    markdown = to_markdown(collect([sweep / "ablation"]))
    table = markdown.split("## Ablations (paper's Table 3 layout)")[1].strip().splitlines()
    assert [line.split(" | ")[2] for line in table[2:]] == ["HashNet+C", "HashNet", "HashNet-W", "HashNet-sgn"]
    assert table[3] == ("| digits_multi | resnet18 | HashNet | 0.8500 | "
                        "mAP@1000 ties=index empty=drop queries-in-database=unknown split=original |")


def test_an_evaluation_takes_its_checkpoints_variant_and_continuous_codes_make_hashnet_c(tmp_path):
    def evaluation(name: str, trained_in: Path, eval_codes: str) -> Path:
        run = fake_run(tmp_path / name, "digits_multi", "resnet18", 48, 0.6, 1000)
        (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(  # evaluate.yaml has no ablation group
            {"hydra": {"runtime": {"choices": {"dataset": "digits_multi"}}}}))
        metrics = json.loads((run / "metrics.json").read_text())
        checkpoint = str(trained_in / "checkpoints" / "last.ckpt")
        (run / "metrics.json").write_text(json.dumps({**metrics, "checkpoint": checkpoint, "eval_codes": eval_codes}))
        return run

    hashnet = fake_run(tmp_path / "train" / "hashnet", "digits_multi", "resnet18", 48, 0.58, 1000, None)
    weightless = fake_run(tmp_path / "train" / "w", "digits_multi", "resnet18", 48, 0.46, 1000, "hashnet_w")
    runs = [evaluation("eval_c", hashnet, "continuous"), evaluation("eval_w", weightless, "sign"),
            evaluation("eval_w_c", weightless, "continuous"), evaluation("eval_lost", tmp_path / "gone", "sign")]
    assert [collect([run])[0].variant for run in runs] == ["hashnet_c", "hashnet_w", "hashnet_w+C", "hashnet"]


def test_csv_has_one_row_per_run_with_the_paper_number_where_it_applies(sweep):
    rows = list(csv.DictReader(io.StringIO(to_csv(collect([sweep / "sweep", sweep / "ablation"])))))
    assert len(rows) == 9
    coco16 = [r for r in rows if r["dataset"] == "coco" and r["net"] == "alexnet" and r["hash_bit"] == "16"]
    assert [float(r["paper_mAP"]) for r in coco16] == [PAPER["coco"][1][0]] * 2
    assert {r["paper_mAP"] for r in rows if r["dataset"] == "imagenet"} == {""}  # strict protocol: not the paper's
    assert {r["variant"] for r in rows if r["dataset"] == "digits_multi"} == {"hashnet", "hashnet_w", "hashnet_sgn",
                                                                                "hashnet_c"}
    assert rows[0]["precision_at_hamming_2"] == "0.5"
    assert rows[0]["protocol"] == "mAP@5000 ties=index empty=drop queries-in-database=unknown split=original"


def test_a_recorded_protocol_is_read_back_and_mixed_protocols_are_refused(tmp_path):
    drop = Protocol(1000, "average", "drop", True, "original")
    fake_run(tmp_path / "a", "digits_multi", "resnet18", 16, 0.6, 1000, protocol=drop)
    fake_run(tmp_path / "b", "digits_multi", "resnet18", 32, 0.7, 1000, protocol=drop)
    (run,) = collect([tmp_path / "a"])
    assert run.protocol == drop and run.paper_mAP is None
    assert "| digits_multi | mAP@1000 | ours, resnet18 | 0.6000 | 0.7000 | " \
           "mAP@1000 ties=average empty=drop queries-in-database=yes split=original |" in to_markdown(collect([tmp_path]))
    # the same row (here: other bits) with empty=zero: refused, naming both folders, lines and the fix
    zero = Protocol(1000, "average", "zero", True, "original")
    fake_run(tmp_path / "c", "digits_multi", "resnet18", 48, 0.5, 1000, protocol=zero)
    with pytest.raises(ValueError) as refused:
        to_markdown(collect([tmp_path]))
    message = str(refused.value)
    assert "runs of different protocols in one row of the report (digits_multi, 1000, ours, resnet18)" in message
    assert f"{tmp_path / 'a'}: {drop}" in message and f"{tmp_path / 'c'}: {zero}" in message
    assert f"python scripts/report.py {tmp_path / 'a'}" in message
    assert to_markdown(collect([tmp_path / "a"]))  # the fix, as printed, works
    # the ablation table refuses the same way, e.g. two hashnet_w runs at different R
    fake_run(tmp_path / "w" / "0", "digits", "resnet18", 16, 0.5, 1000, "hashnet_w")
    fake_run(tmp_path / "w" / "1", "digits", "resnet18", 16, 0.5, 100, "hashnet_w")
    with pytest.raises(ValueError, match="runs of different protocols in one row of the report "
                                         r"\(digits, resnet18, original, HashNet-W\)"):
        to_markdown(collect([tmp_path / "w"]))


def test_the_papers_number_only_beside_its_protocol(tmp_path):
    for name, empty in (("drop", "drop"), ("zero", "zero")):
        fake_run(tmp_path / name, "coco", "alexnet", 16, 0.6, protocol=Protocol(5000, "index", empty, True, "original"))
    assert [run.paper_mAP for run in collect([tmp_path])] == [PAPER["coco"][1][0], None]


def test_script_writes_markdown_and_csv(sweep, tmp_path):
    result = subprocess.run([sys.executable, "scripts/report.py", str(sweep / "sweep"), "--out", str(tmp_path / "out")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "report.md").read_text() in result.stdout
    assert (tmp_path / "out" / "report.csv").read_text().count("\n") == 6
    missing = subprocess.run([sys.executable, "scripts/report.py", str(tmp_path / "nothing")], cwd=ROOT,
                             capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT)})
    assert missing.returncode != 0 and "no metrics.json under" in missing.stderr
    fake_run(tmp_path / "mixed" / "a", "coco", "alexnet", 16, 0.6)
    fake_run(tmp_path / "mixed" / "b", "coco", "alexnet", 16, 0.6, protocol=Protocol(5000, empty_queries="zero"))
    mixed = subprocess.run([sys.executable, "scripts/report.py", str(tmp_path / "mixed")], cwd=ROOT,
                           capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT)})
    assert mixed.returncode != 0 and "runs of different protocols in one row of the report" in mixed.stderr
