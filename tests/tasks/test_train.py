"""End-to-end: train on the embedded digits, evaluate the checkpoint, multirun, 2-process DDP (HashNet and two
methods with their own parameters / buffers, whose codes are then encoded and searched)."""
import json
from pathlib import Path

import pytest

from hashnet.tasks.encode import encode
from hashnet.tasks.evaluate import evaluate
from hashnet.tasks.search import search
from hashnet.tasks.train import train

from conftest import compose_config
from script_runner import run_script
from small_data import small_lists

# 4 steps, a checkpoint at step 4: enough to exercise every piece, quick on 2 CPU cores.
TINY = ["hash_bit=16", "max_steps=4", "val_every=4", "dataset.eval_batch_size=750", "trainer.accelerator=cpu"]


@pytest.mark.slow
def test_train_then_evaluate_the_checkpoint(digits_root, tmp_path):
    data_dir = digits_root.parent
    # Trained at another input size than the dataset config's 36 -> 32: evaluation must follow the checkpoint.
    cfg = compose_config("train", [*TINY, f"paths.data_dir={data_dir}", "dataset.resize_size=40",
                                   "dataset.crop_size=36"], tmp_path / "run")
    results = train(cfg)
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written == results
    assert 0.0 < results["mAP"] <= 1.0
    assert (results["hash_bit"], results["dataset"], results["net"], results["topk"]) == (16, "digits", "resnet18", 1000)
    assert (results["num_queries"], results["num_database"]) == (300, 1497)
    checkpoint = Path(results["checkpoint"])
    assert checkpoint == tmp_path / "run" / "checkpoints" / "last.ckpt" and checkpoint.is_file()
    assert (tmp_path / "run" / "checkpoints" / "step000004.ckpt").is_file()
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))

    # The saved checkpoint holds the final weights: evaluating it reproduces the final test mAP.
    eval_cfg = compose_config("evaluate", [f"ckpt_path={checkpoint}", f"paths.data_dir={data_dir}",
                                           "trainer.accelerator=cpu", "dataset.eval_batch_size=750"], tmp_path / "eval")
    assert evaluate(eval_cfg)["mAP"] == results["mAP"]
    assert (eval_cfg.dataset.resize_size, eval_cfg.dataset.crop_size) == (40, 36)

    # Another protocol by dataset keys: AP@1 is the top item's relevance, so with empty queries counted
    # as 0 the mAP@1 is the mean precision@1 over all queries; the protocol line says so.
    zero_cfg = compose_config("evaluate", [f"ckpt_path={checkpoint}", f"paths.data_dir={data_dir}", "dataset.topk=1",
                                           "dataset.empty_queries=zero", "trainer.accelerator=cpu",
                                           "dataset.eval_batch_size=750"], tmp_path / "eval_zero")
    zero = evaluate(zero_cfg)
    assert zero["protocol"] == "mAP@1 ties=index empty=zero queries-in-database=no split=original"
    assert zero["precision_at_k"]["k"] == [1] and zero["mAP"] == pytest.approx(zero["precision_at_k"]["precision"][0])


@pytest.mark.slow
def test_evaluate_refuses_checkpoint_of_another_dataset(tiny_csv_run, tmp_path):
    checkpoint = tiny_csv_run[1]["checkpoint"]
    eval_cfg = compose_config("evaluate", [f"ckpt_path={checkpoint}", "dataset=coco"], tmp_path / "eval")
    with pytest.raises(ValueError, match="trained on dataset=digits, not dataset=coco: pass dataset=digits"):
        evaluate(eval_cfg)


@pytest.mark.slow
def test_multirun_two_jobs_in_their_own_folders(digits_root, tmp_path):
    sweep, small = tmp_path / "sweep", small_lists(tmp_path / "small", digits_root)
    result = run_script("train", ["-m", "hash_bit=8,16", "max_steps=2", "val_every=2", f"dataset.root={small}",
                         "dataset.batch_size=8", "trainer.accelerator=cpu", f"hydra.sweep.dir={sweep}"], digits_root.parent)
    assert result.code == 0, result.stderr[-3000:]
    metrics = sorted(sweep.glob("*/metrics.json"))
    assert [p.parent.name for p in metrics] == ["0_digits_hashnet_resnet18_8bit_seed0", "1_digits_hashnet_resnet18_16bit_seed0"]
    assert [json.loads(p.read_text())["hash_bit"] for p in metrics] == [8, 16]


@pytest.mark.slow
def test_multirun_with_inprocess_ddp_is_refused(digits_root, tmp_path):
    result = run_script("train", ["-m", "hash_bit=8", "trainer=ddp", "trainer.accelerator=cpu",
                         f"hydra.sweep.dir={tmp_path}"], digits_root.parent)
    assert result.code != 0
    assert "re-launches the sweep in every child rank" in result.stderr


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_and_its_codes_search(digits_root, tmp_path):
    # OrthoHash: the method with the most state of its own, a BatchNorm (running statistics, kept from rank 0 by the
    # checkpoint) and a codebook buffer; every method's codes under two processes: test_contract
    run_dir = tmp_path / "ddp"
    result = run_script("train", ["trainer=ddp", "method=orthohash", *TINY, f"hydra.run.dir={run_dir}"],
                        digits_root.parent)
    assert result.code == 0, result.stderr[-3000:]
    ddp = json.loads((run_dir / "metrics.json").read_text())
    assert ddp["method"] == "orthohash" and ddp["train_seconds"] > 0
    assert ddp["num_database"] == 1497  # odd: DistributedSampler pads one rank
    # Only rank 0 writes the run's files; rank 1 writes nothing but its own Hydra log.
    assert sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("events.out.tfevents")) == [
        ".hydra", "checkpoints", "hparams.yaml", "metrics.json", "plots", "train.log", "train_ddp_process_1.log"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt", "step000004.ckpt"]
    # The same checkpoint evaluated in one process gives the same mAP.
    eval_cfg = compose_config("evaluate", [f"ckpt_path={ddp['checkpoint']}", f"paths.data_dir={digits_root.parent}",
                                           "trainer.accelerator=cpu", "dataset.eval_batch_size=750"], tmp_path / "eval")
    assert evaluate(eval_cfg)["mAP"] == pytest.approx(ddp["mAP"], abs=1e-12)
    # the checkpoint's codes: every database image finds itself at distance 0
    index = encode(compose_config("encode", [f"ckpt_path={ddp['checkpoint']}", f"paths.data_dir={digits_root.parent}",
                                             "dataset.eval_batch_size=750", "device=cpu"], tmp_path / "encode"))
    image = digits_root / "images" / "0000.png"
    (found,) = search(compose_config("search", [f"ckpt_path={ddp['checkpoint']}", f"index={index}", f"image={image}",
                                                "k=3", "device=cpu"], tmp_path / "search"))
    assert found[0][1] == 0 and str(image) in [path for path, distance in found if distance == 0]
