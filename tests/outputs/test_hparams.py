"""Each run's hyper-parameters with its final metrics: TensorBoard's HParams record, and the csv / mlflow /
wandb logger choices on a tiny training run."""
import csv
import json
import re

import pytest
import yaml
from pytorch_lightning.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from hashnet.outputs.hparams import log_run_hparams, run_hparams
from hashnet.tasks.train import train

from conftest import TINY_RUN, compose_config

RESULTS = {"mAP": 0.625, "precision_at_hamming_2": 0.25, "method": "hashnet", "protocol": "original"}

LINE = "mAP@1000 ties=index empty=drop queries-in-database=no split=original"  # the protocol of a digits run


def test_run_hparams_of_the_default_and_of_a_paper_experiment(tmp_path):
    line = "mAP@1000 ties=index empty=drop queries-in-database=no split=original"
    # digits: optim/sgd.yaml's lr 2e-3, class_num as train() resolves auto (|S|/|S1| of the digits: 10.09)
    digits = compose_config("train", ["method.class_num=10.09"], tmp_path)
    assert run_hparams(digits, {"method": "hashnet", "protocol": line}) == {
        "method": "hashnet", "net": "resnet18", "hash_bit": 48, "dataset": "digits", "lr": 2e-3, "class_num": 10.09,
        "seed": 0, "protocol": line}
    # COCO / AlexNet: lr 5e-5 and class_num 1 (the original's: configs/recipe/by_net/, by_method/)
    cfg = compose_config("train", ["dataset=coco", "net=alexnet", "hash_bit=32", "seed=3"], tmp_path)
    assert run_hparams(cfg, {"method": "hashnet", "protocol": "p"}) == {
        "method": "hashnet", "net": "alexnet", "hash_bit": 32, "dataset": "coco", "lr": 5e-5, "class_num": 1.0,
        "seed": 3, "protocol": "p"}
    # a method without class_num
    assert run_hparams(compose_config("train", ["method=dsh"], tmp_path), {"method": "dsh", "protocol": "p"})["class_num"] == 0.0


def hparams_plugin_records(run_dir) -> dict[str, plugin_data_pb2.HParamsPluginData]:
    """The HParams plugin's summaries in run_dir's event files, by tag (_hparams_/experiment, ...)."""
    records = {}
    for events in run_dir.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        try:
            contents = accumulator.PluginTagToContent("hparams")
        except KeyError:  # an event file without HParams summaries
            continue
        for tag, content in contents.items():
            records[tag] = plugin_data_pb2.HParamsPluginData.FromString(content)
    return records


def scalars(run_dir, tag: str) -> list[tuple[int, float]]:
    found = []
    for events in run_dir.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        if tag in accumulator.Tags()["scalars"]:
            found += [(event.step, event.value) for event in accumulator.Scalars(tag)]
    return found


def test_tensorboard_gets_one_hparams_record_with_the_metrics(tmp_path):
    cfg = compose_config("train", ["hash_bit=16", "seed=5", "method.class_num=10"], tmp_path)
    logger = TensorBoardLogger(str(tmp_path), name="", version="", default_hp_metric=False)
    logger.log_metrics({"test/mAP": 0.625}, step=7)
    logger.finalize("success")  # as the trainer does after testing: the record goes to a second event file
    log_run_hparams(logger, cfg, RESULTS, step=7)
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    records = hparams_plugin_records(tmp_path)
    assert set(records) == {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"}
    start = records["_hparams_/session_start_info"].session_start_info.hparams
    assert {key: start[key].WhichOneof("kind") for key in start} == {
        "method": "string_value", "net": "string_value", "dataset": "string_value", "protocol": "string_value",
        "hash_bit": "number_value", "lr": "number_value", "class_num": "number_value", "seed": "number_value"}
    assert (start["method"].string_value, start["net"].string_value, start["protocol"].string_value) == (
        "hashnet", "resnet18", "original")
    assert (start["hash_bit"].number_value, start["lr"].number_value, start["seed"].number_value) == (16, 2e-3, 5)
    columns = [info.name.tag for info in records["_hparams_/experiment"].experiment.metric_infos]
    assert sorted(columns) == ["hp/mAP", "hp/precision_at_hamming_2"]
    assert scalars(tmp_path, "hp/mAP") == [(7, 0.625)] and scalars(tmp_path, "hp/precision_at_hamming_2") == [(7, 0.25)]


@pytest.mark.slow
def test_csv_logger_writes_metrics_csv_with_the_test_map(tiny_csv_run):
    run_dir, results = tiny_csv_run
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    test_map = [float(row["test/mAP"]) for row in rows if row.get("test/mAP")]
    assert test_map == [pytest.approx(results["mAP"], abs=1e-6)]
    final = [row for row in rows if row.get("hp/mAP")]
    assert len(final) == 1 and int(final[0]["step"]) == 2
    assert float(final[0]["hp/precision_at_hamming_2"]) == pytest.approx(results["precision_at_hamming_2"])
    hparams = yaml.safe_load((run_dir / "hparams.yaml").read_text())
    assert {key: hparams[key] for key in ("method", "hash_bit", "protocol", "lr")} == {
        "method": "hashnet", "hash_bit": 16, "protocol": LINE, "lr": 2e-3}
    assert (run_dir / "plots" / "pr_curve.png").is_file()  # the plots do not need TensorBoard
    assert not list(run_dir.glob("events.out.tfevents.*"))


def tiny_run(logger: str, digits_root, tmp_path) -> dict:
    return train(compose_config("train", [*TINY_RUN, f"logger={logger}", f"paths.data_dir={digits_root.parent}"], tmp_path))


@pytest.mark.slow
def test_mlflow_logger_keeps_the_run_in_the_run_folder(digits_root, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    results = tiny_run("mlflow", digits_root, tmp_path)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("hashnet_digits").experiment_id])
    assert {key: run.data.params[key] for key in ("method", "hash_bit", "protocol")} == {
        "method": "hashnet", "hash_bit": "16", "protocol": LINE}
    assert run.data.metrics["hp/mAP"] == pytest.approx(results["mAP"])
    assert run.data.metrics["test/mAP"] == pytest.approx(results["mAP"], abs=1e-6)


@pytest.mark.slow
def test_wandb_logger_runs_offline_in_the_run_folder(digits_root, tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    results = tiny_run("wandb", digits_root, tmp_path)
    assert wandb.run is None  # finished: the next run of a sweep starts its own
    (log,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")  # the offline run's record log, in the run folder
    data = log.read_bytes()
    assert logged_json(data, "method") == ["hashnet"] and logged_json(data, "protocol") == [LINE]
    assert logged_json(data, "hash_bit") == [16]
    assert logged_json(data, "hp/mAP")[-1] == pytest.approx(results["mAP"])


def logged_json(data: bytes, key: str) -> list:
    """The values logged under key in a W&B record log: protobuf items whose key is followed by value_json
    (field 16: bytes 0x82 0x01, then its length, then the JSON text)."""
    found = re.finditer(re.escape(len(key).to_bytes(1, "big") + key.encode()) + rb"\x82\x01(.)", data, re.DOTALL)
    return [json.loads(data[m.end():m.end() + m.group(1)[0]]) for m in found]


def test_logger_choices_write_inside_the_run_folder(tmp_path):
    def logger(name: str) -> dict:
        return dict(compose_config("train", [f"logger={name}", "hash_bit=16"], tmp_path).logger)
    assert logger("csv") == {"_target_": "pytorch_lightning.loggers.CSVLogger", "save_dir": str(tmp_path), "name": "", "version": ""}
    mlflow = logger("mlflow")
    assert mlflow["tracking_uri"] == f"sqlite:///{tmp_path}/mlflow.db" and mlflow["artifact_location"] == f"{tmp_path}/mlartifacts"
    assert (mlflow["experiment_name"], mlflow["run_name"]) == ("hashnet_digits", "resnet18_16bit_seed0")
    wandb = logger("wandb")
    assert (wandb["offline"], wandb["save_dir"], wandb["project"]) == (True, str(tmp_path), "hashnet_digits")
