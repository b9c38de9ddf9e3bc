"""Evaluation outputs and codes as a product, end to end on a tiny digits run: metrics.json, plots
(PNG + TensorBoard), encode -> code file -> search."""
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hashnet.outputs.results import clamped_note, curve_ks, nearest, retrieval_metrics
from hashnet.retrieval.codes import load_codes
from hashnet.retrieval.evaluation import evaluate_retrieval
from hashnet.retrieval.index import faiss_available
from hashnet.tasks.encode import encode
from hashnet.tasks.search import query_paths, search
from hashnet.tasks.train import train

from conftest import compose_config

PLOTS = ("pr_curve", "precision_at_k", "code_histogram", "retrieval_grid")
TINY = ["hash_bit=16", "max_steps=2", "val_every=1000", "dataset.eval_batch_size=750", "trainer.accelerator=cpu"]


def test_curve_ks_spans_one_to_depth():
    assert curve_ks(5) == [1, 2, 3, 4, 5]
    ks = curve_ks(1000)
    assert (ks[0], ks[-1], len(ks)) == (1, 1000, 100) and ks == sorted(set(ks))


def test_retrieval_metrics_of_small_arrays():
    codes = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1], [-1, -1, -1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, -1]], dtype=torch.int8)
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    retrieval = evaluate_retrieval(codes[:1].float(), labels[:1], codes.float(), labels, topk=2)
    metrics = retrieval_metrics(retrieval)
    # the query's distances are 0, 3, 1: two relevant items (0 and 2), both within radius 2
    assert metrics["precision_at_hamming_2"] == 1.0
    assert metrics["pr_curve"]["precision"][:4] == [1.0, 1.0, 1.0, 2 / 3]
    assert metrics["pr_curve"]["recall"][:4] == [0.5, 1.0, 1.0, 1.0] and len(metrics["pr_curve"]["radius"]) == 9
    assert metrics["precision_at_k"] == {"k": [1, 2], "precision": [1.0, 1.0]}


def test_nearest_pads_codes_that_are_not_whole_bytes():
    db = np.array([[1] * 12, [-1] + [1] * 11, [-1] * 12])
    distances, indices = nearest(db[2:], db, 3)
    assert indices.tolist() == [[2, 1, 0]] and distances.tolist() == [[0, 11, 12]]


def test_query_paths_one_or_many(tmp_path):
    (tmp_path / "a.png").touch()
    assert query_paths(str(tmp_path / "a.png")) == [tmp_path / "a.png"]
    assert query_paths([str(tmp_path / "a.png")] * 2) == [tmp_path / "a.png"] * 2
    with pytest.raises(FileNotFoundError, match="query image .*b.png does not exist"):
        query_paths([str(tmp_path / "a.png"), str(tmp_path / "b.png")])


@pytest.fixture(scope="module")
def tiny_run(digits_root, tmp_path_factory) -> tuple[Path, dict]:
    """A 2-step, 16-bit digits run: its folder and its results."""
    run_dir = tmp_path_factory.mktemp("tiny_run")
    return run_dir, train(compose_config("train", [*TINY, f"paths.data_dir={digits_root.parent}"], run_dir))


@pytest.mark.slow
def test_metrics_json_holds_the_curves(tiny_run):
    run_dir, results = tiny_run
    written = json.loads((run_dir / "metrics.json").read_text())
    assert written == results
    assert (written["hash_bit"], written["dataset"], written["net"], written["eval_codes"]) == (16, "digits", "resnet18", "sign")
    # digits' queries are not database images; the lists as built: the original split
    assert written["protocol"] == "mAP@1000 ties=index empty=drop queries-in-database=no split=original"
    assert (written["topk"], written["ties"], written["empty_queries"], written["split"]) == (1000, "index", "drop", "original")
    assert written["checkpoint"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert 0.0 < written["train_seconds"] < 600.0  # the wall-clock seconds of trainer.fit (2 steps)
    pr, pk = written["pr_curve"], written["precision_at_k"]
    assert pr["radius"] == list(range(17)) and len(pr["precision"]) == len(pr["recall"]) == 17
    assert pr["precision"][2] == pytest.approx(written["precision_at_hamming_2"]) and pr["recall"][-1] == 1.0
    assert 0.0 < written["precision_at_hamming_2"] <= 1.0 and 0.0 < written["mAP"] <= 1.0
    assert pk["k"] == curve_ks(1000) and len(pk["precision"]) == 100
    assert pk["precision"][-1] == pytest.approx(0.1, abs=0.1)  # 10 balanced classes: ~chance at k = 1000


@pytest.mark.slow
def test_plots_saved_as_png_and_logged_to_tensorboard(tiny_run):
    run_dir, _ = tiny_run
    for name in PLOTS:
        with Image.open(run_dir / "plots" / f"{name}.png") as image:
            assert image.format == "PNG" and min(image.size) >= 300
    tags = {"images": set(), "histograms": set(), "scalars": set()}
    for events in run_dir.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"images": 0, "histograms": 0})
        accumulator.Reload()
        for kind in tags:
            tags[kind] |= set(accumulator.Tags()[kind])
    assert tags["images"] == {f"test/{name}" for name in PLOTS}
    assert tags["histograms"] == {"test/pre_sign_outputs"}
    assert {"test/mAP", "test/P@H<=2"} <= tags["scalars"]


@pytest.mark.slow
def test_encode_then_search_finds_each_image_at_distance_zero(tiny_run, digits_root, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    run_dir, results = tiny_run
    checkpoint = results["checkpoint"]
    path = encode(compose_config("encode", [f"ckpt_path={checkpoint}", f"paths.data_dir={digits_root.parent}",
                                            "dataset.eval_batch_size=750", "device=cpu"], tmp_path / "encode"))
    assert path == tmp_path / "encode" / "codes_database.npz"
    codes = load_codes(path, hash_bit=16, net="resnet18", dataset="digits")
    assert len(codes) == 1497 and codes.codes.shape == (1497, 2) and codes.labels.shape == (1497, 10)
    assert codes.meta["checkpoint"] == checkpoint and codes.meta["split"] == "database"
    assert codes.paths[0] == str(digits_root / "images" / "0000.png")

    queries = [codes.paths[i] for i in (0, 700, 1496)]
    for backend in ("exact", "faiss") if faiss_available() else ("exact",):
        cfg = compose_config("search", [f"ckpt_path={checkpoint}", f"index={path}", f"image=[{','.join(queries)}]",
                                        "k=1497", f"backend={backend}", "device=cpu", f"grid={tmp_path / 'grid.png'}"],
                             tmp_path / "search")
        found = search(cfg)
        for query, ranking in zip(queries, found):
            assert ranking[0][1] == 0 and dict(ranking)[query] == 0  # its own code: at distance 0
            assert [p for p, _ in ranking] != codes.paths  # ranked, not in file order
        if backend == "exact":
            first = found
    assert found == first  # faiss and the exact scan: same neighbours, same order
    assert f"{queries[0]}: top 1497 of 1497 (digits/database)" in caplog.text
    with Image.open(tmp_path / "grid.png") as image:
        assert image.format == "PNG" and image.size[0] > image.size[1]  # 3 rows of 1 + 1497 images, wide


def test_the_clamped_note_names_the_first_r_asked_for_only_when_it_was_cut():
    results = {"topk": 50, "num_database": 50}
    assert clamped_note(1000, results) == "dataset.topk=1000 is more than the 50 database images"
    note = "dataset.topk=1000 is more than the 50 database images"
    assert clamped_note(OmegaConf.create([1000, None]), results) == note
    # mAP@all first (Fashion-MNIST's [null, 1000]): nothing was cut, whatever the later R
    assert clamped_note(OmegaConf.create([None, 1000]), {"topk": None, "num_database": 64000}) == ""
    assert clamped_note(None, {"topk": None, "num_database": 64000}) == ""
    assert clamped_note([1000, None], {"topk": 1000, "num_database": 1497}) == ""
