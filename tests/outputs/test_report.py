"""scripts/report.py: runs -> the paper's Table 1 with its numbers beside ours, the ablation table, the methods
table, CSV."""
import csv
import io
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from hashnet.data.protocol import Protocol
from hashnet.outputs.report import bits_series, mean_std, methods_cells, to_csv, to_markdown
from hashnet.outputs.runs import PAPER, PAPER_CONVENTIONS, collect

from script_runner import Case, run_scripts



def fake_run(folder: Path, dataset: str, net: str, bits: int, mean_ap: float, topk: int = 5000,
             ablation: str | None = None, strict: bool = False, protocol: Protocol | None = None,
             method_cfg: dict | None = None, **recorded) -> Path:
    """A run folder as train() and Hydra leave it: metrics.json and .hydra/{config,hydra}.yaml.

    Without protocol, metrics.json is as written before it recorded one; without method_cfg, config.yaml is
    as before hashnet/methods/ (no method section); recorded: more metrics.json fields (method, train_seconds)."""
    (folder / ".hydra").mkdir(parents=True)
    metrics = {"mAP": mean_ap, "topk": topk, "hash_bit": bits, "net": net, "dataset": dataset,
               "checkpoint": None, "num_queries": 5, "num_database": 50, "precision_at_hamming_2": 0.5, **recorded}
    if protocol is not None:
        metrics |= {"protocol": str(protocol), **asdict(protocol)}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    config = {"dataset": {"name": dataset, "drop_unlabeled": False, "exclude_queries_from_database": strict}}
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config | ({"method": method_cfg} if method_cfg else {})))
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
    fake_run(tmp_path / "mixed" / "a", "coco", "alexnet", 16, 0.6)
    fake_run(tmp_path / "mixed" / "b", "coco", "alexnet", 16, 0.6, protocol=Protocol(5000, empty_queries="zero"))
    result, missing, mixed = run_scripts([Case("report", [str(sweep / "sweep"), "--out", str(tmp_path / "out")]),
                                          Case("report", [str(tmp_path / "nothing")]),
                                          Case("report", [str(tmp_path / "mixed")])])
    assert result.code == 0, result.stderr
    assert (tmp_path / "out" / "report.md").read_text() in result.stdout
    assert (tmp_path / "out" / "report.csv").read_text().count("\n") == 6
    assert missing.code == 1 and missing.stderr.startswith(f"report: no such folder: {tmp_path / 'nothing'}")
    assert mixed.code != 0 and "runs of different protocols in one row of the report" in mixed.stderr


HASHNET = {"_target_": "hashnet.methods.hashnet.HashNet", "weighted": True, "continuation": True}


def test_the_variant_comes_from_the_composed_method_config(tmp_path):
    # a sweep over method.weighted / method.continuation (no ablation choice), as configs/method/hashnet.yaml composes
    switches = {"full": {}, "w": {"weighted": False}, "sgn": {"continuation": False},
                "pairwise": {"weighted": False, "continuation": False}}
    for name, switch in switches.items():
        fake_run(tmp_path / "train" / name, "digits", "resnet18", 16, 0.5, 1000, method_cfg=HASHNET | switch,
                 method="hashnet")
    # the config wins over the ablation choice; continuous codes add +C
    fake_run(tmp_path / "train" / "c", "digits", "resnet18", 16, 0.5, 1000, "hashnet_w", method_cfg=HASHNET,
             eval_codes="continuous")
    variants = {Path(run.run_dir).name: run.variant for run in collect([tmp_path / "train"])}
    assert variants == {"full": "hashnet", "w": "hashnet_w", "sgn": "hashnet_sgn", "pairwise": "pairwise",
                        "c": "hashnet_c"}
    # an evaluation (its config has no method section) takes its checkpoint's run's
    run = fake_run(tmp_path / "eval", "digits", "resnet18", 16, 0.5, 1000,
                   checkpoint=str(tmp_path / "train" / "sgn" / "checkpoints" / "last.ckpt"))
    assert collect([run])[0].variant == "hashnet_sgn"
    # another method's variant is its name; an old metrics.json without the method field is HashNet's
    fake_run(tmp_path / "dsh", "digits", "resnet18", 16, 0.5, 1000, method_cfg={"_target_": "hashnet.methods.dsh.DSH"},
             method="dsh")
    fake_run(tmp_path / "dsh_c", "digits", "resnet18", 16, 0.5, 1000, eval_codes="continuous", method="dsh")
    assert [(r.method, r.variant) for r in collect([tmp_path / "dsh", tmp_path / "dsh_c", tmp_path / "eval"])] == [
        ("hashnet", "hashnet_sgn"), ("dsh", "dsh"), ("dsh", "dsh+C")]


def test_mean_std_by_hand():
    # (0.6 + 0.7 + 0.8) / 3 = 0.7; squared deviations 0.01 + 0 + 0.01 = 0.02, / (3 - 1) = 0.01, sqrt = 0.1
    mean, std = mean_std([0.6, 0.7, 0.8])
    assert mean == pytest.approx(0.7) and std == pytest.approx(0.1)
    assert mean_std([0.5]) == (0.5, None)


@pytest.fixture
def methods(tmp_path: Path) -> Path:
    """Three seeds of hashnet and dsh, one greedyhash, a HashNet ablation and a continuous evaluation on digits."""
    drop = Protocol(1000, "index", "drop", False, "original")
    cells = {"hashnet": ([0.6, 0.7, 0.8], [0.5, 0.6, 0.7], [60.0, 62.0, 64.0]),
             "dsh": ([0.5, 0.5, 0.8], [0.2, 0.3, 0.4], [30.0, 30.0, 33.0]),
             "greedyhash": ([0.9], [None], [None])}  # P@H<=2 / train time unknown: blank
    for method, (maps, precisions, seconds) in cells.items():
        for seed, (mean_ap, precision, took) in enumerate(zip(maps, precisions, seconds)):
            extra = {"train_seconds": took, "steps": 250} if took is not None else {"steps": 250}
            run = fake_run(tmp_path / f"{method}_seed{seed}", "digits", "resnet18", 48, mean_ap, 1000, protocol=drop,
                           method_cfg={"_target_": method, **(HASHNET if method == "hashnet" else {})}, method=method,
                           **extra)
            metrics = json.loads((run / "metrics.json").read_text())
            (run / "metrics.json").write_text(json.dumps(metrics | {"precision_at_hamming_2": precision}))
    fake_run(tmp_path / "hashnet_w", "digits", "resnet18", 48, 0.1, 1000, protocol=drop,
             method_cfg=HASHNET | {"weighted": False}, method="hashnet")
    fake_run(tmp_path / "dsh_c", "digits", "resnet18", 48, 0.1, 1000, protocol=drop, eval_codes="continuous",
             method="dsh")
    return tmp_path


def test_methods_table_mean_std_over_seeds(methods):
    markdown = to_markdown(collect([methods]))
    table = markdown.split("## Methods (mean ± std over seeds)")[1].strip().splitlines()
    protocol = "mAP@1000 ties=index empty=drop queries-in-database=no split=original"
    assert table[0] == ("| dataset | net | bits | method | steps | metric | mAP (mean ± std, n) | P@H<=2 "
                        "| train time (s) | protocol |")
    assert table[2:] == [
        # hashnet: mean 0.7, std 0.1 (test_mean_std_by_hand); P@H<=2 (0.5 + 0.6 + 0.7) / 3; (60 + 62 + 64) / 3 s
        f"| digits | resnet18 | 48 | hashnet | 250 | mAP@1000 | 0.7000 ± 0.1000 (n=3) | 0.6000 | 62.0 | {protocol} |",
        # dsh: mean 1.8 / 3 = 0.6; deviations -0.1, -0.1, 0.2: (0.01 + 0.01 + 0.04) / 2 = 0.03, sqrt = 0.1732;
        # P@H<=2 0.9 / 3 = 0.3; (30 + 30 + 33) / 3 = 31.0 s; its +C evaluation is not in this table
        f"| digits | resnet18 | 48 | dsh | 250 | mAP@1000 | 0.6000 ± 0.1732 (n=3) | 0.3000 | 31.0 | {protocol} |",
        f"| digits | resnet18 | 48 | greedyhash | 250 | mAP@1000 | 0.9000 (n=1) |  |  | {protocol} |",
    ]
    assert "| digits | resnet18 | HashNet-W | 0.1000 |" in markdown  # the ablation stays in its own table
    # HashNet alone: no methods table
    assert "## Methods" not in to_markdown(collect([methods / f"hashnet_seed{seed}" for seed in range(3)]))


def test_methods_table_refuses_mixed_protocols(methods):
    fake_run(methods / "dsh_zero", "digits", "resnet18", 48, 0.5, 1000, protocol=Protocol(1000, "index", "zero", False),
             method="dsh", steps=250)
    with pytest.raises(ValueError, match=r"runs of different protocols in one row of the report \(digits, resnet18, 48, "
                                         r"dsh, 250\)"):
        to_markdown(collect([methods / "dsh_seed0", methods / "dsh_zero"]))


def test_methods_table_shows_every_r_a_run_scored(tmp_path):
    protocol = Protocol(None, "index", "drop", False, "original", (5, 6, 9))
    for seed, (at_all, at_1000) in enumerate([(0.6, 0.7), (0.8, 0.8)]):
        fake_run(tmp_path / f"dpsh{seed}", "fashion_mnist_unseen", "resnet18", 32, at_all, None, protocol=protocol,
                 method="dpsh", steps=600, mAP_at={"all": at_all, "1000": at_1000})
    fake_run(tmp_path / "csq0", "fashion_mnist_unseen", "resnet18", 32, 0.5, None, protocol=protocol, method="csq",
             steps=600)  # written without mAP_at: its other R blank
    table = to_markdown(collect([tmp_path])).split("## Methods (mean ± std over seeds)")[1].strip().splitlines()
    assert table[0].startswith("| dataset | net | bits | method | steps | metric | mAP (mean ± std, n) | "
                               "mAP@1000 (mean ± std, n) | P@H<=2 |")
    line = "mAP@all ties=index empty=drop queries-in-database=no split=original unseen=5,6,9"
    # dpsh: all (0.6 + 0.8) / 2 = 0.7, deviations +-0.1: std sqrt(0.02 / 1) = 0.1414; at 1000 (0.7 + 0.8) / 2 = 0.75,
    # std sqrt(0.005) = 0.0707
    assert f"| dpsh | 600 | mAP@all | 0.7000 ± 0.1414 (n=2) | 0.7500 ± 0.0707 (n=2) | 0.5000 |  | {line} |" in table[-1]
    assert "| csq | 600 | mAP@all | 0.5000 (n=1) |  | 0.5000 |" in table[2]


def test_runs_against_a_memory_bank_get_a_row_of_their_own(tmp_path):
    protocol = Protocol(None, "index", "drop", False, "original")
    for name, pairs, mean_ap in [("halves0", "halves", 0.6), ("halves1", "halves", 0.8), ("bank0", "bank", 0.4)]:
        fake_run(tmp_path / name, "fashion_mnist", "resnet18", 32, mean_ap, None, protocol=protocol, method="dpsh",
                 steps=600, method_cfg={"name": "dpsh", "pairs": pairs})
    assert sorted(run.variant for run in collect([tmp_path])) == ["dpsh", "dpsh", "dpsh+bank"]
    table = to_markdown(collect([tmp_path])).split("## Methods (mean ± std over seeds)")[1].strip().splitlines()
    # halves: (0.6 + 0.8) / 2 = 0.7, std sqrt(0.02) = 0.1414; the bank run is not averaged in
    assert "| dpsh | 600 | mAP@all | 0.7000 ± 0.1414 (n=2) |" in table[2]
    assert "| dpsh+bank | 600 | mAP@all | 0.4000 (n=1) |" in table[3]
    (result,) = run_scripts([Case("report", [str(tmp_path), "--out", str(tmp_path / "out")])])
    assert result.code == 0, result.stderr
    chart = tmp_path / "out" / "methods_fashion_mnist_resnet18_32bit_600steps.png"
    assert str(chart) in result.stdout and chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [chart.name, "report.csv", "report.md"]


def test_bits_series_for_the_methods_run_at_several_code_lengths(tmp_path):
    protocol = Protocol(None, "index", "drop", False, "original")
    for name, method, bits, mean_ap in [("h16", "hashnet", 16, 0.5), ("h32", "hashnet", 32, 0.6),
                                        ("h32b", "hashnet", 32, 0.8), ("c32", "classifier", 32, 0.7),
                                        ("d32", "dsh", 32, 0.4)]:
        fake_run(tmp_path / name, "fashion_mnist", "resnet18", bits, mean_ap, None, protocol=protocol, method=method,
                 steps=600, method_cfg={"name": method})
    series = bits_series(collect([tmp_path]))
    # classifier and dsh were run at 32 bits only: not in the figure
    assert series == {"fashion_mnist_resnet18_600steps": ("mAP@all", {"hashnet": {16: [0.5], 32: [0.6, 0.8]}})}
    assert bits_series(collect([tmp_path / "h32", tmp_path / "c32"])) == {}


def test_methods_without_labels_have_a_table_of_their_own(methods):
    drop = Protocol(1000, "index", "drop", False, "original")
    for method, mean_ap, steps in (("itq", 0.48, 0), ("cibhash", 0.35, 250)):
        fake_run(methods / method, "digits", "resnet18", 48, mean_ap, 1000, protocol=drop, method=method, steps=steps)
    supervised, unsupervised = to_markdown(collect([methods])).split("## Methods without labels")
    # the figures likewise: a panel of their own, a trained method named with its steps (a fitted one has none)
    panels = methods_cells(collect([methods]))
    assert panels["digits_resnet18_48bit_without_labels"] == ("mAP@1000", {"cibhash, 250 steps": [0.35], "itq": [0.48]})
    assert "itq" not in panels["digits_resnet18_48bit_250steps"][1]
    assert "| itq |" not in supervised and "| cibhash |" not in supervised and "| dsh |" in supervised
    rows = [line for line in unsupervised.splitlines() if line.startswith("| digits")]
    assert [row.split(" | ")[3] for row in rows] == ["cibhash", "itq"]  # METHODS order: their modules, sorted
    assert "0.4800 (n=1)" in rows[1]


def test_a_fit_on_another_runs_features_is_a_row_of_its_own_and_not_without_labels(tmp_path):
    """The two-stage baseline (ITQ on a supervised checkpoint's features) is neither ITQ on pixels nor a method
    without labels: the labels reach it through the features."""
    drop = Protocol(None, "index", "drop", False, "original")
    fake_run(tmp_path / "clf", "fashion_mnist", "resnet18", 32, 0.66, None, protocol=drop, method="classifier",
             steps=600, method_cfg={"name": "classifier"})
    features = str(tmp_path / "clf" / "checkpoints" / "last.ckpt")
    for name, cfg, mean_ap in [("pixels0", {"name": "itq", "features": "auto"}, 0.48),
                               ("pixels1", {"name": "itq", "features": "pixels"}, 0.50),
                               ("two_stage", {"name": "itq", "features": features}, 0.71)]:
        fake_run(tmp_path / name, "fashion_mnist", "resnet18", 32, mean_ap, None, protocol=drop, method="itq",
                 steps=0, method_cfg=cfg)
    runs = collect([tmp_path])
    assert sorted((run.variant, run.features_of) for run in runs) == [
        ("classifier", None), ("itq", None), ("itq", None), ("itq on classifier features", "classifier")]
    supervised, unsupervised = to_markdown(runs).split("## Methods without labels")
    assert "| itq on classifier features | 0 | mAP@all | 0.7100 (n=1) |" in supervised
    assert "| itq | 0 | mAP@all | 0.4900 ± 0.0141 (n=2) |" in unsupervised  # (0.48 + 0.50) / 2, std sqrt(0.0002)
    assert "on classifier" not in unsupervised
    panels = methods_cells(runs)
    assert panels["fashion_mnist_resnet18_32bit_without_labels"][1] == {"itq": [0.48, 0.50]}
    assert panels["fashion_mnist_resnet18_32bit_0steps"][1] == {"itq on classifier features": [0.71]}
