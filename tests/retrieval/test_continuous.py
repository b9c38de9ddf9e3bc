"""mAP of continuous outputs ranked by inner product (HashNet+C), and the module's eval_codes switch."""
import numpy as np
import pytest
import torch

from hashnet.retrieval.metrics import mean_average_precision
from hashnet.retrieval.scores import mean_average_precision_by_score
from hashnet.tasks.setup import build_model

from conftest import compose_config


def test_hand_made_ranking_with_a_tie_by_index():
    query = np.array([[1.0, 0.0]])
    # scores: 0.9, 0.2, 0.9 (tie with item 0: index order), -1.0
    db = np.array([[0.9, 0.3], [0.2, 0.9], [0.9, -0.5], [-1.0, 0.0]])
    db_labels = np.array([[0, 1], [1, 0], [1, 0], [1, 0]])
    # ranking 0 (irrelevant), 2 (relevant), 1 (relevant), 3 (relevant): AP@3 = (1/2 + 2/3) / 2
    query_labels = np.array([[1, 0]])
    assert mean_average_precision_by_score(query, query_labels, db, db_labels, topk=3) == pytest.approx(7 / 12)
    # AP over the whole database adds 3/4 for item 3
    assert mean_average_precision_by_score(query, query_labels, db, db_labels) == pytest.approx((1 / 2 + 2 / 3 + 3 / 4) / 3)


def test_empty_queries_drop_or_zero_by_score():
    # The ranking above (AP@3 7/12) plus a query without labels, which never has a hit:
    # drop -> 7/12, zero -> (7/12 + 0) / 2 = 7/24
    query = np.array([[1.0, 0.0], [0.0, 1.0]])
    db = np.array([[0.9, 0.3], [0.2, 0.9], [0.9, -0.5], [-1.0, 0.0]])
    query_labels, db_labels = np.array([[1, 0], [0, 0]]), np.array([[0, 1], [1, 0], [1, 0], [1, 0]])
    args = (query, query_labels, db, db_labels, 3)
    assert mean_average_precision_by_score(*args) == pytest.approx(7 / 12)
    assert mean_average_precision_by_score(*args, "zero") == pytest.approx(7 / 24)
    with pytest.raises(ValueError, match="empty_queries=.*: it must be one of"):
        mean_average_precision_by_score(*args, "none")


def test_several_cut_offs_by_score_equal_separate_calls_exactly():
    rng = np.random.default_rng(2)
    query, db = rng.normal(size=(30, 6)), rng.normal(size=(200, 6))
    labels = (rng.random((30, 5)) < 0.1).astype(int), (rng.random((200, 5)) < 0.1).astype(int)
    topks = [50, 1, None, 7]
    for empty in ("drop", "zero"):
        together = mean_average_precision_by_score(query, labels[0], db, labels[1], topks, empty, query_chunk=8)
        separate = [mean_average_precision_by_score(query, labels[0], db, labels[1], k, empty, query_chunk=8)
                    for k in topks]
        assert together == separate and len(set(together)) == 4, empty


@pytest.mark.parametrize("topk,chunk", [(None, None), (25, 7), (1, 3)])
def test_equals_hamming_map_on_sign_codes(topk, chunk):
    rng = np.random.default_rng(1)
    codes = [np.where(rng.random((n, 12)) < 0.5, -1, 1) for n in (40, 150)]
    labels = [(rng.random((n, 4)) < 0.3).astype(int) for n in (40, 150)]
    hamming = mean_average_precision(codes[0], labels[0], codes[1], labels[1], topk)
    score = mean_average_precision_by_score(torch.tensor(codes[0]).float(), labels[0], codes[1], labels[1], topk,
                                            query_chunk=chunk)
    assert score == pytest.approx(hamming, abs=1e-12) and 0 < hamming <= 1


def test_continuous_outputs_can_beat_their_signs():
    # Both database items have the query's sign pattern; only the magnitudes tell the relevant one.
    query, db = np.array([[0.9, 0.9]]), np.array([[0.1, 0.1], [0.8, 0.9]])
    labels = np.array([[1]]), np.array([[0], [1]])
    assert mean_average_precision(np.sign(query), labels[0], np.sign(db), labels[1], topk=1) == 0.0
    assert mean_average_precision_by_score(query, labels[0], db, labels[1], topk=1) == 1.0


def test_shape_errors_are_the_metrics_ones():
    with pytest.raises(ValueError, match=r"expected shapes \(Nq, K\)"):
        mean_average_precision_by_score(np.zeros((2, 3)), np.zeros((2, 1)), np.zeros((4, 2)), np.zeros((4, 1)))


def test_module_refuses_an_unknown_eval_codes(tmp_path):
    cfg = compose_config("train", ["model.eval_codes=soft"], tmp_path)
    with pytest.raises(ValueError, match=r"model.eval_codes='soft': it must be one of \['sign', 'continuous'\] -- pass e.g. model.eval_codes=sign"):
        build_model(cfg)
