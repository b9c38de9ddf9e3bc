"""Tests for hashnet.retrieval.metrics: hand-computed cases, brute force for ties="average" (drop and zero), several R
at once, loop references."""
import itertools
import warnings
from fractions import Fraction as F

import numpy as np
import pytest
import torch

from hashnet.retrieval import metrics
from hashnet.retrieval.metrics import (
    mean_average_precision,
    precision_at_hamming_radius,
    precision_at_k,
    precision_recall_curve,
)

# Five database items, 4 bits, 2 classes. For query A = (+1,+1,+1,+1) with label 0 the distances are
# 0, 1, 0, 2, 1, so the ranking (ties by index) is 0, 2, 1, 4, 3 with relevance 0, 1, 1, 0, 1.
# Query B = (-1,-1,-1,-1) with label 1 ranks 3 (d=2), 1, 4 (d=3), 0, 2 (d=4): relevance 0, 0, 0, 1, 1.
# Query C has A's code and no label at all, so nothing is relevant to it.
DB_CODES = np.array([[1, 1, 1, 1], [1, 1, 1, -1], [1, 1, 1, 1], [-1, -1, 1, 1], [1, -1, 1, 1]])
DB_LABELS = np.array([[0, 1], [1, 0], [1, 1], [1, 0], [0, 0]])
Q_CODES = np.array([[1, 1, 1, 1], [-1, -1, -1, -1], [1, 1, 1, 1]])
Q_LABELS = np.array([[1, 0], [0, 1], [0, 0]])
AP_A5 = (F(1, 2) + F(2, 3) + F(3, 5)) / 3  # hits at ranks 2, 3, 5
AP_B5 = (F(1, 4) + F(2, 5)) / 2  # hits at ranks 4, 5


def close(value, expected) -> bool:
    return np.allclose(np.asarray(value, dtype=float), np.asarray(expected, dtype=float), rtol=0, atol=1e-12)


def test_map_hand_computed_with_ties_and_cut():
    assert close(mean_average_precision(Q_CODES, Q_LABELS, DB_CODES, DB_LABELS), (AP_A5 + AP_B5) / 2)
    assert close(AP_A5, F(53, 90)) and close((AP_A5 + AP_B5) / 2, F(329, 720))
    # top 3: A has hits at ranks 2, 3; B has none and is left out, as is C (no label)
    assert close(mean_average_precision(Q_CODES, Q_LABELS, DB_CODES, DB_LABELS, topk=3), F(7, 12))
    assert close(mean_average_precision(Q_CODES[:1], Q_LABELS[:1], DB_CODES, DB_LABELS, topk=2), F(1, 2))
    # top 1: nobody has a hit, and a query without labels never counts
    assert mean_average_precision(Q_CODES, Q_LABELS, DB_CODES, DB_LABELS, topk=1) == 0.0
    assert mean_average_precision(Q_CODES[2:], Q_LABELS[2:], DB_CODES, DB_LABELS) == 0.0


def test_map_multi_label_query():
    # labels {0, 1}: every item but 4 (all-zero labels) is relevant; ranking 0, 2, 1, 4, 3
    ap = mean_average_precision(Q_CODES[:1], np.array([[1, 1]]), DB_CODES, DB_LABELS)
    assert close(ap, (1 + 1 + 1 + F(4, 5)) / 4)


def test_topk_larger_than_database_is_clamped_with_warning():
    with pytest.warns(UserWarning, match="larger than the database"):
        ap = mean_average_precision(Q_CODES, Q_LABELS, DB_CODES, DB_LABELS, topk=50)
    assert close(ap, F(329, 720))


def test_average_ties_hand_computed():
    # A, top 3: group d=0 {0 (no), 2 (yes)} then one of group d=1 {1 (yes), 4 (no)}, each order 1/4:
    # hits (2,3): 7/12; (2): 1/2; (1,3): 5/6; (1): 1  ->  35/48
    ap = mean_average_precision(Q_CODES[:1], Q_LABELS[:1], DB_CODES, DB_LABELS, topk=3, ties="average")
    assert close(ap, F(35, 48))
    # B, top 4: its relevant items tie at d=4 and one of them is always 4th: AP = 1/4 either way
    for ties in ("index", "average"):
        ap = mean_average_precision(Q_CODES[1:2], Q_LABELS[1:2], DB_CODES, DB_LABELS, 4, ties)
        assert close(ap, F(1, 4))


def test_average_ties_conditions_on_a_hit_in_the_top_r():
    # one query, top 2 = item 0 (irrelevant) then one of the tied items 1 (irrelevant), 2 (relevant):
    # by index the top 2 has no hit (left out: 0.0); at random it has one half the time, at rank 2
    codes, labels = np.array([[1, 1], [1, -1], [-1, 1]]), np.array([[0], [0], [1]])
    args = (np.array([[1, 1]]), np.array([[1]]), codes, labels, 2)
    assert mean_average_precision(*args, ties="index") == 0.0
    assert close(mean_average_precision(*args, ties="average"), F(1, 2))


def test_empty_queries_drop_or_zero_hand_computed():
    args = (Q_CODES, Q_LABELS, DB_CODES, DB_LABELS)
    # whole ranking: A 53/90, B 13/40, C (no label) has no hit: drop -> (53/90 + 13/40) / 2 = 329/720,
    # zero -> (53/90 + 13/40 + 0) / 3 = 329/1080
    assert close(mean_average_precision(*args, empty_queries="zero"), F(329, 1080))
    assert close(AP_B5, F(13, 40)) and close(F(329, 720) * 2 / 3, F(329, 1080))
    # top 3: only A has hits (ranks 2, 3: 7/12): drop 7/12, zero 7/12 / 3 = 7/36
    assert close(mean_average_precision(*args, 3, "index", "zero"), F(7, 36))
    # ties="average", top 3: A 35/48 (test_average_ties_hand_computed; item 2 at d=0 is in every top 3,
    # so P(hit) = 1), B's top 3 {3, 1, 4} never holds a relevant item, C none: drop 35/48, zero 35/144
    assert close(mean_average_precision(*args, 3, "average", "drop"), F(35, 48))
    assert close(mean_average_precision(*args, 3, "average", "zero"), F(35, 144))
    # top 1: no query has a hit either way
    assert mean_average_precision(*args, 1, "index", "zero") == mean_average_precision(*args, 1) == 0.0


def test_average_ties_zero_does_not_condition_on_a_hit():
    # One query (label 0), item 0 at d=0 irrelevant, then a tie group at d=1 of items 1, 2, 3 with only
    # item 2 relevant. Top 2 = item 0 + one of the group: a hit w.p. 1/3, always at rank 2 (AP 1/2):
    # drop 1/2, zero 1/3 * 1/2 = 1/6. Top 3 = item 0 + two of the group: item 2 at rank 2 w.p. 1/3
    # (AP 1/2), at rank 3 w.p. 1/3 (AP 1/3), absent w.p. 1/3: drop (1/2 + 1/3) / 2 = 5/12, zero 5/18.
    codes, labels = np.array([[1, 1], [1, -1], [1, -1], [1, -1]]), np.array([[0], [0], [1], [0]])
    args = (np.array([[1, 1]]), np.array([[1]]), codes, labels)
    expected = {(2, "drop"): F(1, 2), (2, "zero"): F(1, 6), (3, "drop"): F(5, 12), (3, "zero"): F(5, 18)}
    for (topk, empty), value in expected.items():
        assert close(mean_average_precision(*args, topk, "average", empty), value), (topk, empty)
    # by index the top 2 is items 0, 1 (no hit), the top 3 adds item 2 at rank 3 (AP 1/3)
    assert mean_average_precision(*args, 2, "index", "zero") == 0.0
    assert close(mean_average_precision(*args, 3, "index", "zero"), F(1, 3))


def test_several_cut_offs_equal_separate_calls_exactly(monkeypatch):
    rng = np.random.default_rng(3)
    q_codes, db_codes = rng.choice([-1, 1], (40, 7)), rng.choice([-1, 1], (500, 7))
    q_labels, db_labels = rng.random((40, 6)) < 0.1, rng.random((500, 6)) < 0.1
    args, topks = (q_codes, q_labels, db_codes, db_labels), [37, 1, None, 250, 37]
    depths = []
    scan = metrics._scan
    monkeypatch.setattr(metrics, "_scan", lambda data, depth, **kw: depths.append(depth) or scan(data, depth, **kw))
    for ties, empty in itertools.product(("index", "average"), ("drop", "zero")):
        depths.clear()
        together = mean_average_precision(*args, topks, ties, empty, query_chunk=7)
        assert depths == [500]  # one scan, to the largest R (None: the whole database)
        separate = [mean_average_precision(*args, topk, ties, empty, query_chunk=7) for topk in topks]
        assert together == separate and isinstance(separate[0], float), (ties, empty)
        assert together[0] == together[4] and len(set(together)) == 4
    assert mean_average_precision(*args, [None]) == [mean_average_precision(*args)]
    assert mean_average_precision(*args, (np.int64(5),)) == [mean_average_precision(*args, 5)]


def brute_force_average(q_codes, q_labels, db_codes, db_labels, topk):
    """Mean over queries of AP@topk over every order of the database (so every order of each tie group,
    equally often): {"drop": conditioned on a hit in the top k, queries never hit left out; "zero":
    unconditioned, an order without a hit counting as AP 0, every query counted}."""
    dropped, zeroed = [], []
    for code, label in zip(q_codes, q_labels):
        dist, relevant = (code.size - db_codes @ code) // 2, db_labels @ label > 0
        aps, orders = [], 0
        for perm in itertools.permutations(range(len(db_codes))):
            perm = np.array(perm)
            rel = relevant[perm[np.argsort(dist[perm], kind="stable")]][:topk]
            orders += 1
            if rel.any():
                precisions = [F(int(rel[: i + 1].sum()), i + 1) for i in np.flatnonzero(rel)]
                aps.append(sum(precisions) / len(precisions))
        if aps:
            dropped.append(sum(aps) / len(aps))
        zeroed.append(sum(aps, F(0)) / orders)
    return {"drop": sum(dropped) / len(dropped) if dropped else 0, "zero": sum(zeroed) / len(zeroed)}


@pytest.mark.parametrize("seed", range(12))
def test_average_ties_match_brute_force_enumeration(seed):
    rng = np.random.default_rng(seed)
    n, bits = int(rng.integers(2, 7)), int(rng.integers(1, 4))
    q_codes, db_codes = rng.choice([-1, 1], (3, bits)), rng.choice([-1, 1], (n, bits))
    q_labels, db_labels = rng.random((3, 3)) < 0.4, rng.random((n, 3)) < 0.4
    for topk in range(1, n + 1):
        expected = brute_force_average(q_codes, q_labels, db_codes, db_labels, topk)
        for empty in ("drop", "zero"):
            ap = mean_average_precision(q_codes, q_labels, db_codes, db_labels, topk, "average", empty)
            assert close(ap, expected[empty]), (topk, empty, ap, float(expected[empty]))


def test_average_ties_ignore_database_order():
    rng = np.random.default_rng(0)
    q_codes, db_codes = rng.choice([-1, 1], (20, 6)), rng.choice([-1, 1], (400, 6))
    q_labels, db_labels = rng.random((20, 5)) < 0.3, rng.random((400, 5)) < 0.3
    perm = rng.permutation(400)
    for topk in (1, 37, 400):
        a = mean_average_precision(q_codes, q_labels, db_codes, db_labels, topk, ties="average")
        b = mean_average_precision(q_codes, q_labels, db_codes[perm], db_labels[perm], topk, ties="average")
        assert abs(a - b) < 1e-12


def test_precision_at_hamming_radius_hand_computed():
    # A's balls: r=0 {0, 2}: 1/2, r=1 {0, 2, 1, 4}: 2/4, r>=2 all: 3/5. B's: empty up to r=1, {3}: 0
    # at r=2, everything at r=4: 2/5. C: 0 always. Empty balls count as 0.
    expected = {0: F(1, 6), 1: F(1, 6), 2: F(1, 5), 3: F(1, 5), 4: F(1, 3), 9: F(1, 3)}
    for radius, value in expected.items():
        assert close(precision_at_hamming_radius(Q_CODES, Q_LABELS, DB_CODES, DB_LABELS, radius), value)
    with pytest.raises(ValueError, match="radius"):
        precision_at_hamming_radius(Q_CODES, Q_LABELS, DB_CODES, DB_LABELS, -1)


def test_precision_recall_curve_hand_computed():
    precision, recall = precision_recall_curve(Q_CODES, Q_LABELS, DB_CODES, DB_LABELS)
    assert close(precision, [F(1, 6), F(1, 6), F(1, 5), F(1, 5), F(1, 3)])
    # recall averages A ([1/3, 2/3, 1, 1, 1]) and B ([0, 0, 0, 0, 1]); C has nothing to recall
    assert close(recall, [F(1, 6), F(1, 3), F(1, 2), F(1, 2), 1])
    _, recall = precision_recall_curve(Q_CODES[2:], Q_LABELS[2:], DB_CODES, DB_LABELS)
    assert close(recall, np.zeros(5))


def test_precision_at_k_hand_computed():
    # A: 0, 1, 1, 0, 1 -> P@1, P@2, P@3, P@5 = 0, 1/2, 2/3, 3/5; B: 0, 0, 0, 1, 1 -> 0, 0, 0, 2/5; C: 0
    with pytest.warns(UserWarning, match="larger than the database"):
        p = precision_at_k(Q_CODES, Q_LABELS, DB_CODES, DB_LABELS, [1, 2, 3, 5, 7])
    assert close(p, [0, F(1, 6), F(2, 9), F(1, 3), F(1, 3)])


def test_numpy_and_torch_inputs_agree():
    rng = np.random.default_rng(1)
    q_codes, db_codes = rng.choice([-1, 1], (30, 12)), rng.choice([-1, 1], (200, 12))
    q_labels, db_labels = rng.random((30, 4)) < 0.3, rng.random((200, 4)) < 0.3
    numpy_args = (q_codes.astype(np.int8), q_labels.astype(np.uint8), db_codes.astype(np.int8), db_labels)
    torch_args = (torch.tensor(q_codes, dtype=torch.float32), torch.tensor(q_labels, dtype=torch.float32),
                  torch.tensor(db_codes), torch.tensor(db_labels))
    calls = [(mean_average_precision, (50,)), (mean_average_precision, (50, "average")),
             (precision_at_hamming_radius, (3,)), (precision_recall_curve, ()), (precision_at_k, ([1, 9],))]
    for fn, extra in calls:
        assert np.array_equal(fn(*numpy_args, *extra), fn(*torch_args, *extra)), fn.__name__


def loop_reference(q_codes, q_labels, db_codes, db_labels, topk, ks, radius):
    """mAP@topk, P@ks, P@radius and the PR curve, one query at a time, straight from the definitions."""
    bits, aps, p_at_k, p_radius, precision, recall = q_codes.shape[1], [], [], [], [], []
    for code, label in zip(q_codes, q_labels):
        dist, relevant = (bits - db_codes @ code) // 2, db_labels @ label > 0
        rel = relevant[np.argsort(dist, kind="stable")]
        if rel[:topk].any():
            hits = np.cumsum(rel[:topk])
            aps.append(np.sum(hits / np.arange(1, topk + 1) * rel[:topk]) / hits[-1])
        p_at_k.append([rel[:k].mean() for k in ks])
        inside = [dist <= r for r in range(bits + 1)]
        precision.append([relevant[b].mean() if b.any() else 0.0 for b in inside])
        p_radius.append(precision[-1][min(radius, bits)])
        if relevant.any():
            recall.append([relevant[b].sum() / relevant.sum() for b in inside])
    mean_ap = np.mean(aps) if aps else 0.0
    return mean_ap, np.mean(p_at_k, 0), np.mean(p_radius), np.mean(precision, 0), np.mean(recall, 0)


@pytest.mark.parametrize("bits, classes, n, sample",
                         [(6, 5, 300, 2048), (70, 70, 500, 2048), (10, 80, 3000, 16)])
def test_chunked_scan_matches_loop_reference(monkeypatch, bits, classes, n, sample):
    # small chunks; 70 bits / classes take two words; a 16-item sample makes the guessed cut miss
    monkeypatch.setattr(metrics, "_SAMPLE", sample)
    rng = np.random.default_rng(bits)
    q_codes, db_codes = rng.choice([-1, 1], (25, bits)), rng.choice([-1, 1], (n, bits))
    q_labels, db_labels = rng.random((25, classes)) < 0.05, rng.random((n, classes)) < 0.05
    q_labels[0] = False  # a query without labels
    args = (q_codes, q_labels, db_codes, db_labels)
    for topk in (1, 17, n // 3, n):
        ks = [1, topk // 2 + 1, topk]
        expected = loop_reference(*args, topk, ks, radius=bits // 3)
        assert abs(mean_average_precision(*args, topk, query_chunk=4) - expected[0]) < 1e-12
        assert close(precision_at_k(*args, ks, query_chunk=3), expected[1])
        assert close(precision_at_hamming_radius(*args, bits // 3, query_chunk=7), expected[2])
    precision, recall = precision_recall_curve(*args, query_chunk=2)
    assert close(precision, expected[3]) and close(recall, expected[4])


def test_invalid_inputs():
    with pytest.raises(ValueError, match="only hold -1 and 1"):
        mean_average_precision(np.zeros((1, 4)), Q_LABELS[:1], DB_CODES, DB_LABELS)
    with pytest.raises(ValueError, match="only hold 0 and 1"):
        mean_average_precision(Q_CODES, Q_LABELS * 2, DB_CODES, DB_LABELS)
    with pytest.raises(ValueError, match="expected shapes"):
        mean_average_precision(Q_CODES, Q_LABELS, DB_CODES[:, :3], DB_LABELS)
    with pytest.raises(ValueError, match="expected shapes"):
        mean_average_precision(Q_CODES, Q_LABELS[:2], DB_CODES, DB_LABELS)
    with pytest.raises(ValueError, match="ties"):
        mean_average_precision(Q_CODES, Q_LABELS, DB_CODES, DB_LABELS, ties="random")
    with pytest.raises(ValueError, match=r"empty_queries='skip': it must be one of \['drop', 'zero'\]"):
        mean_average_precision(Q_CODES, Q_LABELS, DB_CODES, DB_LABELS, empty_queries="skip")
    with pytest.raises(ValueError, match="topk must be >= 1"):
        mean_average_precision(Q_CODES, Q_LABELS, DB_CODES, DB_LABELS, topk=0)
    with pytest.raises(ValueError, match="topk must be >= 1"):
        mean_average_precision(Q_CODES, Q_LABELS, DB_CODES, DB_LABELS, topk=[5, 0])
    with pytest.raises(ValueError, match="topk must not be an empty list"):
        mean_average_precision(Q_CODES, Q_LABELS, DB_CODES, DB_LABELS, topk=[])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a valid call warns about nothing
        mean_average_precision(Q_CODES, Q_LABELS, DB_CODES, DB_LABELS, topk=5, ties="average")
