"""dataset.val=heldout: validation queries carved from the training list, never the test queries."""
import numpy as np
import pytest

from hashnet.data.heldout import heldout_rows
from hashnet.tasks.setup import build_datamodule

from conftest import compose_config

# 4 rows of class 0, 5 of class 1, 1 of class 2, 2 unlabeled
LABELS = np.array([[1, 0, 0]] * 4 + [[0, 1, 0]] * 5 + [[0, 0, 1]] + [[0, 0, 0]] * 2)


def test_counts_per_class_are_rounded_at_least_one_and_leave_training_rows():
    held = heldout_rows(LABELS, 0.25, seed=0)
    # round(0.25 * 4) = 1, round(0.25 * 5) = 1, a class of 1 keeps its row, round(0.25 * 2) = 0 -> at least 1
    assert [int(held[:4].sum()), int(held[4:9].sum()), int(held[9]), int(held[10:].sum())] == [1, 1, 0, 1]
    held = heldout_rows(LABELS, 0.9, seed=0)  # never a whole class: min(n - 1, ...)
    assert [int(held[:4].sum()), int(held[4:9].sum()), int(held[10:].sum())] == [3, 4, 1]


def test_the_split_is_seeded():
    assert np.array_equal(heldout_rows(LABELS, 0.25, 3), heldout_rows(LABELS, 0.25, 3))
    assert any(not np.array_equal(heldout_rows(LABELS, 0.5, 0), heldout_rows(LABELS, 0.5, s)) for s in range(1, 6))


def test_a_fraction_out_of_range_is_refused():
    with pytest.raises(ValueError, match="dataset.val_fraction must be between 0 and 1, got 1.5"):
        heldout_rows(LABELS, 1.5, 0)


def test_heldout_validation_uses_training_rows_only(digits_root, tmp_path):
    cfg = compose_config("train", ["dataset.val=heldout", f"paths.data_dir={digits_root.parent}"], tmp_path)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    val, train = (datamodule.dataset(split).image_list for split in ("val", "train"))
    assert (len(val), len(train)) == (50, 950)  # 5% of each class's 100 training digits
    assert np.bincount(val.labels.argmax(axis=1)).tolist() == [5] * 10
    queries = set(datamodule.read_split("query").paths)
    assert not set(val.paths) & set(train.paths) and not set(val.paths) & queries
    loaders = datamodule.val_dataloader()
    assert [len(loader.dataset) for loader in loaders] == [50, 950]
    default = build_datamodule(compose_config("train", [f"paths.data_dir={digits_root.parent}"], tmp_path))
    assert [len(loader.dataset) for loader in default.val_dataloader()] == [300, 1497]  # the test protocol's
