"""README's "Train on your own images", end to end, as its four commands run them: split and check a folder of class
folders (check_lists), train on it, encode the folder (encode images=<dir>), search it with one of its images."""
import json

import pytest

from hashnet.retrieval.codes import load_codes

from conftest import write_image_tree
from script_runner import Case, run_scripts

# The README trains with the folder's recipe (ImageNet weights); offline, and in seconds, the test trains a tiny net
# from scratch instead (net.pretrained=false).
OFFLINE_TINY = ["net.pretrained=false", "hash_bit=16", "max_steps=4", "val_every=4",
                "dataset.resize_size=36", "dataset.crop_size=32", "dataset.batch_size=8", "dataset.num_workers=0",
                "trainer.accelerator=cpu"]


@pytest.mark.slow
def test_train_on_your_own_images_in_four_commands(tmp_path):
    tree = write_image_tree(tmp_path / "flowers", {"daisy": 12, "rose": 15, "tulip": 9}, side=24)
    run_dir, codes_path, query = tmp_path / "run", tmp_path / "flowers.npz", tree / "rose" / "more" / "005.png"
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    checked, trained, encoded, found = run_scripts([  # each as its own process, in this order
        # 1. split the folder into lists (once, into flowers/.hashnet/) and check them
        Case("check_lists", ["dataset=folder", f"dataset.root={tree}", f"hydra.run.dir={tmp_path / 'check'}"]),
        # 2. train on it
        Case("train", ["dataset=folder", f"dataset.root={tree}", *OFFLINE_TINY, f"hydra.run.dir={run_dir}"]),
        # 3. encode every image of the folder (no lists needed) into a code file
        Case("encode", [f"ckpt_path={checkpoint}", f"images={tree}", f"out={codes_path}", "num_workers=0",
                        f"hydra.run.dir={tmp_path / 'encode'}"]),
        # 4. search it with one of its images
        Case("search", [f"ckpt_path={checkpoint}", f"index={codes_path}", f"image={query}", "k=36",
                        f"hydra.run.dir={tmp_path / 'search'}"]),
    ], env={"OMP_NUM_THREADS": "1"})

    assert checked.code == 0, checked.stderr[-3000:]
    assert "folder: OK (0 errors, 0 warnings)" in checked.stdout
    assert (tree / ".hashnet" / "classes.txt").read_text() == "daisy\nrose\ntulip\n"
    assert len((tree / ".hashnet" / "test.txt").read_text().splitlines()) == 4  # 10% a class, at least 1: 1 + 2 + 1

    assert trained.code == 0, trained.stderr[-3000:]
    results = json.loads((run_dir / "metrics.json").read_text())
    assert (results["dataset"], results["num_queries"], results["num_database"]) == ("folder", 4, 32)

    assert encoded.code == 0, encoded.stderr[-3000:]
    codes = load_codes(codes_path, hash_bit=16, net="resnet18", dataset="folder")
    assert len(codes) == 36 and codes.meta["images"] == str(tree) and codes.meta["skipped"] == []
    assert not any("/." in path for path in codes.paths)  # the lists' hidden folder is not encoded

    # the query finds itself at distance 0
    assert found.code == 0, found.stderr[-3000:]
    lines = [line.split() for line in found.stdout.splitlines() if "d=" in line]
    assert len(lines) == 36 and lines[0][1] == "d=0"
    assert str(query) in [line[2] for line in lines if line[1] == "d=0"]
