"""Issue 21's cases, as a user types them: `python scripts/<script>.py <overrides>` -> exit code and the one line it
prints on stderr (no traceback), plus what each must leave on disk.

Every command runs as its own process, forked from one interpreter that imported the project once
(tests/script_runner.py), in the order of CASES: a refused command costs about a second, not ten. The files the
commands need (a checkpoint, small list folders, odd images) are made once for the module.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from hashnet.retrieval.codes import save_codes
from hashnet.retrieval.index import HammingIndex
from hashnet.tasks.setup import build_model
from hashnet.tasks.train import train

from conftest import compose_config, resolved_model
from script_runner import Case, Result, run_scripts
from small_data import digits_rows, label_row, png_16bit, png_bomb, small_lists, write_list

pytestmark = pytest.mark.slow  # about 80 s for the module: one small training run, then 55 commands

# A checkpoint in seconds: 2 steps of 8 images on the small lists (one epoch: 5 steps), one thread.
TINY = ["hash_bit=16", "max_steps=2", "val_every=2", "dataset.batch_size=8", "dataset.eval_batch_size=64",
        "trainer.accelerator=cpu", "threads=1"]


class Files:
    """Everything the cases read: paths as attributes, formatted into the commands and the expected lines."""


@pytest.fixture(scope="module")
def files(digits_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Files:
    f = Files()
    tmp = tmp_path_factory.mktemp("cases")
    f.tmp, f.data_dir, f.digits = tmp, digits_root.parent, digits_root
    f.small = small_lists(tmp / "small", digits_root)
    threads, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    f.run = tmp / "run"  # the checkpoint every case uses: trained in this process, on the small lists
    f.results = train(compose_config("train", [*TINY, f"paths.data_dir={f.data_dir}", f"dataset.root={f.small}"],
                                     f.run))
    torch.set_num_threads(threads)  # threads=1 set both for this process
    os.environ.pop("OMP_NUM_THREADS") if omp is None else os.environ.update(OMP_NUM_THREADS=omp)
    f.ckpt = f.run / "checkpoints" / "last.ckpt"
    f.hydra_config, f.metrics = (f.run / ".hydra" / "config.yaml").read_bytes(), (f.run / "metrics.json").read_bytes()
    # a checkpoint of 12-bit codes, as this version no longer trains them
    cfg = compose_config("train", ["hash_bit=16", "method.class_num=10"], tmp / "cfg12")
    cfg.hash_bit = 12
    model = build_model(cfg)
    f.ckpt12 = tmp / "bits12.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), "global_step": 0,
                "pytorch-lightning_version": pl.__version__}, f.ckpt12)
    # issue 29: a dpsh run with a memory bank (method.pairs=bank), as its checkpoint and config (no training needed:
    # the resume is refused before Lightning reads more), a copy of the checkpoint, a code file of another one
    cfg = compose_config("train", ["method=dpsh", "method.pairs=bank", "hash_bit=16", f"paths.data_dir={f.data_dir}",
                                   f"dataset.root={f.small}"], tmp / "cfgbank")
    bank = resolved_model(cfg)
    f.bank_ckpt = tmp / "bank_run" / "checkpoints" / "last.ckpt"
    f.bank_ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": bank.state_dict(), "hyper_parameters": dict(bank.hparams), "global_step": 2,
                "pytorch-lightning_version": pl.__version__}, f.bank_ckpt)
    f.bank_run = tmp / "bank_run"  # a run killed before its metrics.json
    (tmp / "bank_run" / ".hydra").mkdir()
    (tmp / "bank_run" / ".hydra" / "config.yaml").write_text("the bank run's own config\n")
    f.trained = tmp / "trained"  # a training run's metrics.json (Hydra writes an evaluation's .hydra/ before it runs)
    f.trained.mkdir()
    shutil.copy(f.run / "metrics.json", f.trained / "metrics.json")
    f.moved_ckpt = tmp / "moved" / "last.ckpt"
    f.moved_ckpt.parent.mkdir()
    shutil.copy(f.ckpt, f.moved_ckpt)
    f.stale = tmp / "stale.npz"
    save_codes(f.stale, torch.ones(2, 16), np.eye(2, 10), [str(digits_root / "images" / "0000.png")] * 2,
               {"hash_bit": 16, "net": "resnet18", "dataset": "digits", "checkpoint": str(f.ckpt),
                "checkpoint_sha256": "0" * 64, "split": "database", "resize_size": 36, "crop_size": 32})
    f.hnx = HammingIndex(np.zeros((2, 2), np.uint8), paths=[str(digits_root / "images" / "0000.png")] * 2,
                         meta={"hash_bit": 16}).save(tmp / "photos.hnx")
    # lists with problems
    bad = tmp / "bad"
    bad.mkdir()
    (bad / "torn.png").write_bytes(b"\x89PNG\r\n\x1a\n torn off")
    (bad / "torn_query.png").write_bytes(b"\x89PNG\r\n\x1a\n torn off")
    f.deep = png_16bit(bad / "deep16.png")
    f.bomb = png_bomb(bad / "bomb.png")
    train_rows = digits_rows(digits_root, "train.txt", 38) + [(str(bad / "torn.png"), 3)] + [
        (str(digits_root / "images" / "0002.png"), None)]  # one unreadable, one unlabeled
    database_rows = digits_rows(digits_root, "database.txt", 49) + [(str(bad / "torn.png"), 3)]
    query_rows = digits_rows(digits_root, "test.txt", 9) + [(str(bad / "torn_query.png"), 4)]
    f.skipping = small_lists(tmp / "skipping", digits_root, train_rows, query_rows, database_rows)
    f.unscorable = small_lists(tmp / "unscorable", digits_root,
                               query=[(path, None) for path, _ in digits_rows(digits_root, "test.txt", 10)])
    f.odd_images = small_lists(tmp / "odd_images", digits_root,
                               train=digits_rows(digits_root, "train.txt", 39) + [(str(f.deep), 1)])
    f.bombed = small_lists(tmp / "bombed", digits_root,
                           train=digits_rows(digits_root, "train.txt", 39) + [(str(f.bomb), 1)])
    f.latin1 = small_lists(tmp / "latin1", digits_root)
    with (f.latin1 / "train.txt").open("ab") as lines:
        lines.write(b"images/caf\xe9.png " + label_row(2).encode() + b"\n")
    # COCO lists (80 labels) over digits images, two rows unlabeled: the offline newcomer's paper run
    f.coco_data = tmp / "coco_data"
    rng = np.random.default_rng(0)
    for name, count in (("train.txt", 80), ("test.txt", 5), ("database.txt", 80)):  # a batch of 72 fits
        rows = []
        for i in range(count):
            labels = np.zeros(80, int)
            if not (name == "train.txt" and i < 2):
                labels[rng.choice(80, 2, replace=False)] = 1
            rows.append(f"{digits_root / 'images' / f'{i:04d}.png'} {' '.join(map(str, labels))}\n")
        (f.coco_data / "coco").mkdir(parents=True, exist_ok=True)
        (f.coco_data / "coco" / name).write_text("".join(rows))
    f.empty_data = tmp / "empty_data"
    f.empty_data.mkdir()
    f.notes = tmp / "notes.txt"  # HASHNET_DATA_DIR set to a file
    f.notes.write_text("not a folder\n")
    # where files cannot be written (a fault of the runner: the tests run as root), a folder, outputs elsewhere
    f.readonly = tmp / "readonly"
    f.readonly.mkdir()
    f.folder = tmp / "a_folder"
    f.folder.mkdir()
    for name in ("cwd", "elsewhere", "cwd_paper", "cwd_nolists"):
        (tmp / name).mkdir(parents=True)
    relative = tmp / "relative" / "data" / "digits_small"  # lists of relative paths, read from a relative root
    for name in ("train.txt", "test.txt", "database.txt"):
        write_list(relative / name, [(f"images/{Path(path).name}", label)
                                     for path, label in digits_rows(digits_root, name, 40 if name == "train.txt"
                                                                    else 10 if name == "test.txt" else 50)])
    (relative / "images").symlink_to(digits_root / "images")
    f.codes = tmp / "codes" / "codes_database.npz"
    f.full = tmp / "full" / "codes.npz"
    f.full.parent.mkdir()
    shutil.copy(f.stale, f.full)  # the codes of an earlier encode
    f.full_bytes = f.full.read_bytes()
    f.killed = tmp / "killed" / "codes.npz"
    f.report_empty = tmp / "report_empty"
    f.report_empty.mkdir()
    (tmp / "report_damaged" / "run").mkdir(parents=True)
    (tmp / "report_damaged" / "run" / "metrics.json").write_text('{"mAP": 0.5, "hash_b')
    f.report_damaged = tmp / "report_damaged"
    f.torch_home = tmp / "torch_home"
    f.host = socket.gethostname()
    return f


def _common(f: Files) -> dict:
    return {"HASHNET_DATA_DIR": str(f.data_dir)}


SEARCH = ["ckpt_path={ckpt}", "index={codes}", "image={digits}/images/0005.png"]
SERVE = ["ckpt_path={ckpt}", "index={codes}"]
READONLY = {"faults": {"readonly": ["{readonly}"]}}  # no write below that folder (EACCES)
SMALL = ["dataset.root={small}", "dataset.batch_size=8", "dataset.eval_batch_size=64", "threads=1",
         "trainer.accelerator=cpu"]
# name: (script, args, case options, exit code, the line on stderr: exact, or a prefix when it ends with "...")
CASES: dict[str, tuple] = {
    # Hydra's own errors, one line each, with the nearest key or option
    "typo hashbit=16": ("train", ["hashbit=16"], {}, 1, "train: hashbit=16: there is no setting hashbit -- did you "
                        "mean hash_bit=16? (python scripts/train.py --cfg job lists every setting)"),
    "typo dataset.topkk": ("train", ["dataset.topkk=5"], {}, 1, "train: dataset.topkk=5: there is no setting "
                           "dataset.topkk -- did you mean dataset.topk=5? (python scripts/train.py --cfg job lists "
                           "every setting)"),
    "a setting of other methods": ("train", ["method=csq", "method.pairs=bank"], {}, 1, "train: method.pairs=bank: "
                                   "there is no setting method.pairs -- method.pairs is a setting of method=dbdh, "
                                   "dch, dfh, dhn, dpsh, dsdh, dsh, dtsh, hashnet, idhn only, not of method=csq. "
                                   "(python scripts/train.py --cfg job lists every setting)"),
    "a near key of another type": ("train", ["method=csq", "method.sed=bank"], {}, 1, "train: method.sed=bank: there "
                                   "is no setting method.sed -- (python scripts/train.py --cfg job lists every "
                                   "setting)"),
    "unknown net": ("train", ["net=resnet19"], {}, 1, "train: net=resnet19: there is no such net "
                    "(configs/net/resnet19.yaml) -- did you mean net=resnet18? The options: alexnet, ..."),
    "an option of another group": ("train", ["method=itq", "experiment=fashion_mnist"], {}, 1, "train: "
                                   "experiment=fashion_mnist: there is no such experiment (configs/experiment/"
                                   "fashion_mnist.yaml) -- did you mean dataset=fashion_mnist? The options: ..."),
    "unparsable override": ("search", ["k=["], {}, 1, "search: cannot read the override 'k=[' (no viable alternative "
                            "at input '[') -- quote it for the shell and write lists as key=[a,b], strings with spaces "
                            "as 'key=\"a b\"'"),
    "missing required": ("search", SEARCH[1:], {}, 1,
                         "search: ckpt_path is required: pass ckpt_path=<value> on the command line"),
    # settings refused before anything is built
    "seed=abc": ("train", ["seed=abc"], {}, 1, "train: seed='abc': it must be an integer -- pass e.g. seed=0"),
    "dataset.topk=0": ("train", ["dataset.topk=0"], {}, 1, "train: dataset.topk=0: it must be a positive integer, "
                       "null (mAP over the whole database) or a list of them -- pass e.g. dataset.topk=1000"),
    "dataset.topk=-5": ("train", ["dataset.topk=-5"], {}, 1, "train: dataset.topk=-5: it must be a positive ..."),
    "dataset.topk=abc": ("train", ["dataset.topk=abc"], {}, 1, "train: dataset.topk='abc': it must be a positive ..."),
    "crop_scale reversed": ("train", ["dataset.crop_scale=[1.5,0.1]"], {}, 1, "train: dataset.crop_scale=[1.5, 0.1]: "
                            "it must be [min, max] area fractions with 0 < min <= max <= 1 -- pass e.g. "
                            "dataset.crop_scale=[0.08,1.0]"),
    "hash_bit=100000": ("train", ["hash_bit=100000"], {}, 1, "train: hash_bit=100000: it must be a multiple of 8 from "
                        "8 to 1024 (codes are stored 8 bits a byte) -- pass e.g. hash_bit=48"),
    "threads=0": ("train", ["threads=0"], {}, 1, "train: threads=0: it must be a positive integer or null (torch's "
                  "default) -- pass e.g. threads=1"),
    "batch above the training list": ("train", [*SMALL, "dataset.batch_size=64", "hydra.run.dir={tmp}/run_batch"], {},
                                      1, "train: dataset.batch_size=64: the training list {small}/train.txt has 40 "
                                      "images, less than one batch of 64 -- pass dataset.batch_size=40"),
    "non-UTF-8 list (train)": ("train", [*SMALL, "dataset.root={latin1}", "hydra.run.dir={tmp}/run_latin1"], {}, 1,
                               "train: {latin1}/train.txt:41: not UTF-8 text: byte b'\\xe9' (images/caf\\xe9.png 0 0 1 "
                               "0 0 0 0 0 0 0) -- write the list as UTF-8 (e.g. iconv -f latin1 -t utf-8), with the "
                               "image renamed to match"),
    # checkpoints and runs
    "ckpt_path a folder (train)": ("train", ["ckpt_path={run}", "hydra.run.dir={tmp}/run_folder_ckpt"], {}, 1,
                                   "train: checkpoint {run}: it is a folder, not a checkpoint file: pass "
                                   "ckpt_path={run}/checkpoints/last.ckpt -- check ckpt_path: copy it again, or pass "
                                   "another checkpoint (ckpt_path=<run>/checkpoints/stepNNNNNN.ckpt)"),
    "ckpt_path a folder (evaluate)": ("evaluate", ["ckpt_path={run}"], {}, 1, "evaluate: checkpoint {run}: it is a "
                                      "folder, not a checkpoint file: pass ckpt_path={run}/checkpoints/last.ckpt "
                                      "-- ..."),
    "resume as another method": ("train", [*SMALL, "ckpt_path={ckpt}", "method=dhn", "hash_bit=16"], {}, 1,
                                 "train: ckpt_path={ckpt} continues a run of method=hashnet, but this command asks for "
                                 "method=dhn: a run continues with its own settings -- pass method=hashnet to resume "
                                 "it, or leave out ckpt_path / resume=true and pass hydra.run.dir=<a new folder> to "
                                 "start a new run (nothing was written)"),
    "resume with another hash_bit": ("train", [*SMALL, "ckpt_path={ckpt}", "hash_bit=32"], {}, 1,
                                     "train: ckpt_path={ckpt} continues a run of hash_bit=16, but this command asks "
                                     "for hash_bit=32: a run continues with its own settings -- pass hash_bit=16 to "
                                     "resume it, ..."),
    # issue 29: nothing the user made is written over
    "train into a finished run": ("train", [*SMALL, "hydra.run.dir={run}"], {}, 1, "train: the run folder {run} "
                                  "already holds a run (checkpoints/last.ckpt, .hydra/config.yaml, metrics.json), "
                                  "which a new run would write over -- pass resume=true to continue it, or "
                                  "hydra.run.dir=<a new folder> to start another (nothing was written)"),
    "resume a bank run without its bank": ("train", [*SMALL, "ckpt_path={bank_ckpt}", "method=dpsh", "hash_bit=16",
                                                     "method.pairs=halves"], {}, 1,
                                           "train: ckpt_path={bank_ckpt} continues a run of method.pairs=bank, but "
                                           "this command asks for method.pairs=halves: its saved state does not fit (3 "
                                           "tensors, e.g. method.bank.codes) -- pass method.pairs=bank to resume it, "
                                           "or leave out ckpt_path / resume=true and pass hydra.run.dir=<a new "
                                           "folder> to start a new run (nothing was written)"),
    "evaluate into a training run": ("evaluate", ["ckpt_path={ckpt}", *SMALL, "hydra.run.dir={trained}"], {}, 1,
                                     "evaluate: hydra.run.dir={trained} holds a training run's metrics.json, which "
                                     "this evaluation would write over -- pass hydra.run.dir=<a new folder> (or leave "
                                     "it out)"),
    "evaluate into the finished run": ("evaluate", ["ckpt_path={ckpt}", *SMALL, "hydra.run.dir={run}"], {}, 1,
                                       "evaluate: hydra.run.dir={run} holds a training run's metrics.json, which this "
                                       "evaluation would write over -- pass hydra.run.dir=<a new folder> (or leave it "
                                       "out)"),
    "evaluate into a killed run": ("evaluate", ["ckpt_path={ckpt}", *SMALL, "hydra.run.dir={bank_run}"], {}, 1,
                                   "evaluate: hydra.run.dir={bank_run} holds a training run's checkpoints/ and "
                                   ".hydra/config.yaml, which this evaluation would write over -- pass "
                                   "hydra.run.dir=<a new folder> (or leave it out)"),
    "export beside a read-only checkpoint": ("export", ["ckpt_path={ckpt}", "format=torchscript"],
                                             {"faults": {"readonly": ["{run}/checkpoints"]}}, 1,
                                             "export: cannot write {run}/checkpoints/last.torchscript.pt (Permission "
                                             "denied) -- make {run}/checkpoints writable, or pass another out, e.g. "
                                             "out=last.torchscript.pt"),
    "encode out=<the checkpoint>": ("encode", ["ckpt_path={ckpt}", "out={ckpt}"], {}, 1, "encode: out={ckpt} is a "
                                    "checkpoint, not a code file: refusing to write over it -- pass another out, e.g. "
                                    "out=codes_database.npz"),
    "export out=<the checkpoint>": ("export", ["ckpt_path={ckpt}", "out={ckpt}"], {}, 1, "export: out={ckpt} is a "
                                    "checkpoint, not an earlier export (a file with its .json sidecar): refusing to "
                                    "write over it -- pass another out, e.g. out={run}/checkpoints/last.onnx"),
    "search grid=<the checkpoint>": ("search", [*SEARCH, "grid={ckpt}"], {}, 1, "search: grid={ckpt} is a "
                                     "checkpoint, not a PNG image: refusing to write over it -- pass another grid, "
                                     "e.g. grid=results.png"),
    "search codes of another checkpoint": ("search", ["ckpt_path={ckpt}", "index={stale}", SEARCH[2]], {}, 1,
                                           "search: code file {stale}: its codes come from another checkpoint than "
                                           "{ckpt} (recorded: sha256 000000000000..., {ckpt}; this one: sha256 ..."),
    "evaluate +method of another": ("evaluate", ["ckpt_path={ckpt}", "+method=dhn", *SMALL[:1]], {}, 1,
                                    "evaluate: checkpoint {ckpt} was trained with method=hashnet, not method=dhn: drop "
                                    "+method=... (the checkpoint's method is used), or pass a dhn checkpoint"),
    "evaluate method= without +": ("evaluate", ["ckpt_path={ckpt}", "method=dhn"], {}, 1,
                                   "evaluate: method=dhn: evaluate.yaml does not choose a method -- it comes from "
                                   "elsewhere (the checkpoint, for evaluate/encode/search/serve); to add it anyway, as "
                                   "a check, pass +method=dhn"),
    "read-only run folder": ("train", [*SMALL, "hydra.run.dir={readonly}/run"], READONLY, 1,
                             "train: cannot write {readonly}/run (Permission denied) -- make that folder writable, "
                             "or pass hydra.run.dir=<a folder you can write>"),
    "read-only HASHNET_DATA_DIR": ("train", ["hydra.run.dir={tmp}/run_ro_data", "threads=1"],
                                   {"env": {"HASHNET_DATA_DIR": "{readonly}/data"},
                                    "faults": {"readonly": ["{readonly}"]}}, 1,
                                   "train: cannot build dataset digits into {readonly}/data/digits: Permission denied "
                                   "({readonly}/data) -- set HASHNET_DATA_DIR (or paths.data_dir=<folder>) to a folder "
                                   "you can write"),
    "HASHNET_DATA_DIR a file": ("train", ["hydra.run.dir={tmp}/run_file_data", "threads=1"],
                                {"env": {"HASHNET_DATA_DIR": "{notes}"}}, 1, "train: HASHNET_DATA_DIR={notes} is a "
                                "file, not a folder (datasets go in $HASHNET_DATA_DIR/<name>/) -- point it at a folder "
                                "(export HASHNET_DATA_DIR=<folder>), or unset HASHNET_DATA_DIR to use data/ here"),
    # the offline newcomer's paper run: the lists first (none here), then the weights, one line, no folder left
    "paper run without lists": ("train", ["dataset=coco", "net=resnet50", "hash_bit=48"],
                                {"cwd": "{tmp}/cwd_nolists", "env": {"HASHNET_DATA_DIR": "{empty_data}",
                                                                     "TORCH_HOME": "{torch_home}"},
                                 "faults": {"offline": True}}, 1,
                                "train: {empty_data}/coco: dataset=coco has no list files train.txt, test.txt, "
                                "database.txt here (missing) -- put them there: the paper's datasets take the original "
                                "HashNet release's lists (github.com/thuml/HashNet, docs/paper.md), your own one "
                                "'<image path> <0/1 labels>' line per image; then check them with python "
                                "scripts/check_lists.py dataset=coco; or pass dataset.root=<the folder that holds "
                                "them>"),
    "paper run offline": ("train", ["dataset=coco", "net=resnet50", "hash_bit=48"],
                          {"cwd": "{tmp}/cwd_paper", "env": {"HASHNET_DATA_DIR": "{coco_data}",
                                                             "TORCH_HOME": "{torch_home}"},
                           "faults": {"offline": True}}, 1,
                          "train: ImageNet weights for resnet50 are not cached and could not be downloaded (<urlopen "
                          "error no network (test)>) -- download https://download.pytorch.org/models/"
                          "resnet50-11ad3fa6.pth to {torch_home}/hub/checkpoints/resnet50-11ad3fa6.pth (the torch hub "
                          "cache; TORCH_HOME moves it), or train from scratch with net.pretrained=false"),
    # encode
    "encode split=bogus": ("encode", ["ckpt_path={ckpt}", "split=bogus"], {}, 1, "encode: split='bogus': it must be "
                           "one of ['train', 'query', 'database'] -- pass e.g. split=train"),
    "encode out=<a folder>": ("encode", ["ckpt_path={ckpt}", "out={folder}"], {}, 1, "encode: out={folder} is a "
                              "folder: give the path of a file to write, e.g. out=codes_database.npz"),
    "encode out= read-only": ("encode", ["ckpt_path={ckpt}", "out={readonly}/codes.npz"],
                              {"faults": {"readonly": ["{readonly}"]}}, 1, "encode: cannot write {readonly}/codes.npz "
                              "(Permission denied) -- make {readonly} writable, or pass another out, e.g. "
                              "out=codes_database.npz"),
    "encode 12-bit codes": ("encode", ["ckpt_path={ckpt12}"], {}, 1, "encode: packed codes (a code file, an index) "
                            "need a multiple of 8 bits, one byte holding 8: not hash_bit=12 -- train with hash_bit=8 "
                            "or hash_bit=16"),
    "encode (relative paths)": ("encode", ["ckpt_path={ckpt}", "dataset.root=data/digits_small", "out={codes}",
                                           "dataset.eval_batch_size=64"], {"cwd": "{tmp}/relative"}, 0, ""),
    "encode, disk full": ("encode", ["ckpt_path={ckpt}", *SMALL[:1], "out={full}"],
                          {"faults": {"disk_full": ["numpy.savez"]}}, 1, "encode: the disk is full: {full} could not "
                          "be written (No space left on device); the previous file is unchanged -- free space on that "
                          "disk, or pass out=<a path on another disk>"),
    "encode killed while writing": ("encode", ["ckpt_path={ckpt}", *SMALL[:1], "out={killed}"],
                                    {"faults": {"kill_in": "numpy.savez"}}, -9, ""),
    "encode again after the kill": ("encode", ["ckpt_path={ckpt}", *SMALL[:1], "out={killed}"], {}, 0, ""),
    # search
    "search index=<an .hnx>": ("search", ["ckpt_path={ckpt}", "index={hnx}", SEARCH[2]], {}, 1, "search: {hnx} is an "
                               "index (HammingIndex.save), not a code file -- pass the code file of scripts/encode.py "
                               "(out=...npz), or load the index with HammingIndex.load"),
    "search device=<a GPU not here>": ("search", [*SEARCH, "device=cuda:99"], {}, 1, "search: device='cuda:99': ..."),
    "search with a moved checkpoint": ("search", ["ckpt_path={moved_ckpt}", *SEARCH[1:]], {}, 0, ""),  # same bytes
    "search k=0": ("search", [*SEARCH, "k=0"], {}, 1, "search: k=0: it must be a positive integer, the neighbours "
                   "listed per query -- pass e.g. k=10"),
    "search k=-1": ("search", [*SEARCH, "k=-1"], {}, 1, "search: k=-1: it must be a positive integer, ..."),
    "search k=abc": ("search", [*SEARCH, "k=abc"], {}, 1, "search: k='abc': it must be a positive integer, ..."),
    "search k=1.5": ("search", [*SEARCH, "k=1.5"], {}, 1, "search: k=1.5: it must be a positive integer, ..."),
    "search image=[]": ("search", [*SEARCH[:2], "image=[]"], {}, 1, "search: image=[]: no query image given -- pass "
                        "image=PATH or image=[PATH,PATH]"),
    "search image=<a folder>": ("search", [*SEARCH[:2], "image={folder}"], {}, 1, "search: query image {folder} is a "
                                "folder -- pass image files: image={folder}/<name>.png, or several as "
                                "image=[PATH,PATH]"),
    "search grid= read-only": ("search", [*SEARCH, "grid={readonly}/grid.png"], READONLY, 1,
                               "search: cannot write {readonly}/grid.png (Permission denied) -- make {readonly} "
                               "writable, or pass another grid, e.g. grid=results.png"),
    "search grid= from another folder": ("search", [*SEARCH, "grid={tmp}/grid.png", "k=3"], {"cwd": "{tmp}/elsewhere"},
                                         0, ""),
    # serve (refused before the model loads)
    "serve port=99999": ("serve", [*SERVE, "port=99999"], {}, 1, "serve: port=99999: it must be a TCP port, a whole "
                         "number in 0..65535 (0: any free one) -- pass e.g. port=8000"),
    "serve max_upload_mb=-1": ("serve", [*SERVE, "max_upload_mb=-1"], {}, 1, "serve: max_upload_mb=-1: it must be a "
                               "positive number of megabytes -- pass e.g. max_upload_mb=8"),
    "serve max_upload_mb=abc": ("serve", [*SERVE, "max_upload_mb=abc"], {}, 1, "serve: max_upload_mb='abc': it must be "
                                "a positive number of megabytes -- pass e.g. max_upload_mb=8"),
    "serve max_decoding=0": ("serve", [*SERVE, "max_decoding=0"], {}, 1, "serve: max_decoding=0: it must be a whole "
                             "number >= 1, the uploads decoded at once -- pass e.g. max_decoding=2"),
    # check_lists reads images as training does
    "check_lists 16-bit PNG": ("check_lists", ["dataset.root={odd_images}", "check_images=true"], {}, 0, ""),
    "train reads the 16-bit PNG": ("train", [*SMALL, "dataset.root={odd_images}", "max_steps=1", "val_every=1",
                                             "hash_bit=16", "hydra.run.dir={tmp}/run_odd", "logger=csv"], {}, 0, ""),
    "check_lists bomb": ("check_lists", ["dataset.root={bombed}", "check_images=true"], {}, 1, ""),
    "check_lists non-UTF-8 list": ("check_lists", ["dataset.root={latin1}"], {}, 1, ""),
    # runs that finish: skipped images in every split, R clamped, no query scored, the console
    "train skipping unreadable images": ("train", [*SMALL, "dataset.root={skipping}", "dataset.on_bad_image=skip",
                                                   "max_steps=5", "val_every=5", "hash_bit=16", "logger=csv",
                                                   "hydra.run.dir={tmp}/run_skip"], {}, 0, ""),
    "evaluate R above the database": ("evaluate", ["ckpt_path={ckpt}", *SMALL, "dataset.topk=999999",
                                                   "hydra.run.dir={tmp}/eval_topk"], {}, 0, ""),
    "evaluate no query scorable": ("evaluate", ["ckpt_path={ckpt}", *SMALL, "dataset.root={unscorable}",
                                                "hydra.run.dir={tmp}/eval_unscored"], {}, 0, ""),
    # report
    "report on an empty folder": ("report", ["{report_empty}"], {}, 1, "report: no metrics.json under "
                                  "['{report_empty}']: pass run or multirun folders (outputs/..., multirun/...) of "
                                  "finished runs"),
    "report on a damaged metrics.json": ("report", ["{report_damaged}"], {}, 1, "report: {report_damaged}/run/"
                                         "metrics.json cannot be read as a run's metrics (JSONDecodeError: "
                                         "Unterminated string starting at: line 1 column 14 (char 13)) -- evaluate its "
                                         "checkpoint again (scripts/evaluate.py), or leave its folder out"),
    # the last resort, and the debug switch
    "an unexpected error": ("search", SEARCH, {"faults": {"raise": ["hashnet.tasks.search:search", "boom"]}}, 1,
                            "search: unexpected RuntimeError: boom (HASHNET_DEBUG=1 shows the full chain)"),
    "HASHNET_DEBUG=1 keeps the chain": ("search", [*SEARCH, "k=0"], {"env": {"HASHNET_DEBUG": "1"}}, 1, "Traceback..."),
}


def _format(value, f: Files):
    if isinstance(value, str):
        return value.format(**vars(f))
    if isinstance(value, list):
        return [_format(item, f) for item in value]
    if isinstance(value, dict):
        return {key: _format(item, f) for key, item in value.items()}
    return value


@pytest.fixture(scope="module")
def results(files: Files) -> dict[str, Result]:
    cases = []
    for script, args, options, _, _ in CASES.values():
        options = _format(options, files)
        cases.append(Case(script, _format(args, files), env={**_common(files), **options.get("env", {})},
                          cwd=options.get("cwd", str(files.tmp / "cwd")), faults=options.get("faults", {})))
    return dict(zip(CASES, run_scripts(cases)))


@pytest.mark.parametrize("name", CASES)
def test_command_ends_in_one_line(name: str, results: dict[str, Result], files: Files):
    _, _, _, code, line = CASES[name]
    result = results[name]
    assert result.code == code, f"{name}: exit {result.code}\n{result.stderr[-3000:]}"
    expected = _format(line, files)
    if expected.startswith("Traceback"):  # HASHNET_DEBUG=1: the full chain, as Python prints it
        assert "Traceback (most recent call last)" in result.stderr and "ConfigError: k=0" in result.stderr
        return
    stderr = result.stderr.strip()
    assert "Traceback" not in stderr, stderr
    if code == 1 and expected:
        assert len(stderr.splitlines()) == 1, stderr
        assert stderr.startswith(expected[:-3]) if expected.endswith("...") else stderr == expected, \
            f"{name}:\n{stderr}\n, expected\n{expected}"


# ---- what the commands left behind ----
def test_refused_runs_leave_no_folder(results, files):
    for name in ("batch above the training list", "non-UTF-8 list (train)", "ckpt_path a folder (train)",
                 "read-only HASHNET_DATA_DIR", "HASHNET_DATA_DIR a file"):
        assert results[name].code == 1
    for folder in ("run_batch", "run_latin1", "run_folder_ckpt", "run_ro_data", "run_file_data"):
        assert not (files.tmp / folder).exists(), folder
    for cwd in ("cwd_paper", "cwd_nolists"):  # the default layout's folders are gone too, up to outputs/
        assert [p.name for p in (files.tmp / cwd).rglob("*")] in ([], ["outputs"]), cwd


def test_refused_resume_leaves_the_run_as_it_was(results, files):
    for name in ("resume as another method", "resume with another hash_bit", "train into a finished run",
                 "encode out=<the checkpoint>", "export out=<the checkpoint>", "search grid=<the checkpoint>",
                 "evaluate into a training run", "evaluate into the finished run", "evaluate into a killed run",
                 "export beside a read-only checkpoint"):
        assert results[name].code == 1
    assert (files.run / ".hydra" / "config.yaml").read_bytes() == files.hydra_config
    assert files.ckpt.read_bytes() == files.moved_ckpt.read_bytes()  # the copy made before every case
    assert (files.bank_ckpt.parent.parent / ".hydra" / "config.yaml").read_text() == "the bank run's own config\n"
    assert (files.run / "metrics.json").read_bytes() == (files.trained / "metrics.json").read_bytes() == files.metrics
    assert not (files.run / ".lock").exists()
    assert [p.name for p in files.ckpt.parent.iterdir() if p.suffix != ".ckpt"] == []  # no export, no temporary


def test_paper_run_checks_the_lists_before_the_weights_and_warns_about_unlabeled_rows(results):
    offline = results["paper run offline"]
    assert "2 of 80 training rows have no label (" in offline.stdout and "dataset.drop_unlabeled=true" in offline.stdout
    assert "Downloading" not in results["paper run without lists"].stdout  # the lists failed first


def test_a_full_disk_or_a_kill_leaves_the_old_file_and_no_temporary(results, files):
    assert files.full.read_bytes() == files.full_bytes
    assert list(files.full.parent.iterdir()) == [files.full]
    assert results["encode killed while writing"].code == -9
    assert results["encode again after the kill"].code == 0, results["encode again after the kill"].stderr
    assert [p.name for p in files.killed.parent.iterdir()] == ["codes.npz"]  # the dead writer's .tmp was removed


def test_code_files_hold_absolute_paths_and_search_draws_from_another_folder(results, files):
    encoded = results["encode (relative paths)"]
    assert encoded.stdout.strip() == f"50 16-bit codes of digits/database -> {files.codes}"  # plain, as train
    with np.load(files.codes) as codes:
        assert all(Path(path).is_absolute() and Path(path).is_file() for path in codes["paths"].tolist())
    found = results["search grid= from another folder"]
    assert found.code == 0 and (files.tmp / "grid.png").is_file()
    assert found.stdout.startswith(f"{files.digits}/images/0005.png: top 3 of 50 (digits/database)")
    assert found.stdout.strip().endswith(f"grid -> {files.tmp / 'grid.png'}")


def test_check_lists_decodes_as_training_does(results, files):
    deep = results["check_lists 16-bit PNG"]
    assert "digits: OK (0 errors" in deep.stdout and not re.search(r"^\[\d{4}-", deep.stdout, re.M)  # plain lines
    assert results["train reads the 16-bit PNG"].code == 0, results["train reads the 16-bit PNG"].stderr[-2000:]
    bomb = results["check_lists bomb"].stdout
    assert (f"[error] train: 1 images cannot be decoded, e.g.:\n      {files.bombed}/train.txt:40: {files.bomb} "
            "(144,000,000 pixels, over the decoder's limit of 89,478,485 (PIL.Image.MAX_IMAGE_PIXELS): a decompression "
            "bomb, or an image to shrink first)") in bomb
    latin1 = results["check_lists non-UTF-8 list"].stdout
    assert f"[error] train: {files.latin1}/train.txt:41: not UTF-8 text: byte b'\\xe9'" in latin1


def test_skipped_images_in_every_split_are_counted_and_the_console_is_plain(results, files):
    run = results["train skipping unreadable images"]
    assert run.code == 0, run.stderr[-3000:]
    metrics = json.loads((files.tmp / "run_skip" / "metrics.json").read_text())
    assert metrics["skipped_images"]["count"] == 2  # torn.png (train and database) and torn_query.png
    assert (metrics["num_queries"], metrics["num_database"]) == (9, 49)
    assert metrics["unlabeled_rows"] == {"train": 1} and "1 of 40 training rows have no label" in run.stdout
    assert metrics["threads"] == 1 and metrics["cpu"] and metrics["steps"] == 5 and metrics["kind"] == "training"
    lines = run.stdout.splitlines()
    assert any(line.startswith("step 1/5 ") for line in lines)  # no terminal: the first step is reported
    for noise in ("Tip:", "LeafSpec", "FLOPs", "Flops"):
        assert noise not in run.stdout + run.stderr, noise
    assert f"  metrics.csv: {files.tmp / 'run_skip' / 'metrics.csv'}" in lines  # logger=csv: the CSV file
    assert "Total Flops" in (files.tmp / "run_skip" / "train.log").read_text()  # the log file keeps the table


def test_r_above_the_database_reports_the_r_used(results, files):
    run = results["evaluate R above the database"]
    metrics = json.loads((files.tmp / "eval_topk" / "metrics.json").read_text())
    assert (metrics["topk"], metrics["topk_requested"], metrics["steps"], metrics["kind"]) == (50, 999999, 2,
                                                                                             "evaluation")
    assert metrics["protocol"].startswith("mAP@50 ")
    assert f"dataset.topk=999999 is more than the 50 database images)  -> {files.tmp / 'eval_topk'}/metrics.json" \
        in run.stdout
    assert "val_check_interval" not in run.stdout + run.stderr and "Tip:" not in run.stdout + run.stderr


def test_evaluation_without_a_scorable_query_says_so(results, files):
    run = results["evaluate no query scorable"]
    metrics = json.loads((files.tmp / "eval_unscored" / "metrics.json").read_text())
    assert metrics["mAP"] is None and metrics["scored_queries"] == 0
    assert ("mAP@50: no query could be scored: none of the 10 queries shares a label with a database image (10 of "
            "them have no label) -- check the labels of the query and database lists") in run.stdout
    assert "mAP = 0.0000" not in run.stdout
