"""scripts/check_lists.py and hashnet.data.check_lists on fake copies of the original lists."""
import shlex

import pytest

from hashnet.data.check_lists import check_dataset, format_findings
from hashnet.data.datamodule import HashDataModule
from hashnet.tasks.check_lists import dataset_widths

from conftest import compose_config, datamodule
from original_lists import write_lists, write_original
from script_runner import run_script


def module(fake, num_classes=None, path_map=None) -> HashDataModule:
    return datamodule(multi_label=True, name=fake.root.name, root=fake.root, num_classes=num_classes or fake.width, topk=None,
                          path_map=path_map, num_workers=0)


def by_level(findings, level):
    return [f for f in findings if f.level == level]


def test_author_paths_are_errors_with_the_path_map_line_that_fixes_them(tmp_path):
    fake = write_original(tmp_path, "nus_wide_81", unlabeled=2, queries_in_database=3)
    findings = check_dataset(module(fake), shown=2)
    errors = by_level(findings, "error")
    assert [f.where for f in errors] == ["train", "query", "database"]
    assert errors[0].message.startswith("8 of 8 images do not exist after the path map")
    assert errors[0].message.count("\n      ") == 2  # `shown` examples, the count covers all
    assert f"{fake.root}/train.txt:1: /home/author/dataset/nus_wide_81/images/0000.png -> " in errors[0].message
    line = f"dataset.path_map='{{/home/author/dataset/nus_wide_81/: {fake.root}/}}'"
    assert line in errors[0].fix and "finds 8 of these 8 images" in errors[0].fix
    assert "FAILED (3 errors, 3 warnings)" in format_findings("nus_wide_81", findings)


def test_a_clean_original_copy_reports_its_facts(tmp_path):
    fake = write_original(tmp_path, "nus_wide_81", unlabeled=2, queries_in_database=3)
    findings = check_dataset(module(fake, path_map={fake.prefix: f"{fake.root}/"}))
    assert not by_level(findings, "error")
    infos = [f.message for f in by_level(findings, "info")]
    assert infos[:3] == [f"8 lines, 81 labels each ({fake.root}/train.txt)",
                         f"4 lines, 81 labels each ({fake.root}/test.txt)",
                         f"13 lines, 81 labels each ({fake.root}/database.txt)"]
    assert infos[3].startswith("3 of the 4 query images are also in database: the original protocol")
    warnings = {f.where: f for f in by_level(findings, "warning")}
    assert warnings["train"].message == f"2 of 8 rows have no label (first: {fake.root}/train.txt:7)"
    assert "dataset.drop_unlabeled=true" in warnings["train"].fix
    assert warnings["query"].message.startswith("2 of 4 rows have no label")
    assert warnings["database"].message.startswith("1 of 13 rows have no label")  # a query copied in
    assert "never relevant" in warnings["database"].fix
    assert format_findings("x", findings).endswith("x: OK (0 errors, 3 warnings)")


def test_relative_paths_of_another_working_folder(tmp_path):
    fake = write_original(tmp_path, "nus_wide")  # ./data/nus_wide/images/...
    errors = by_level(check_dataset(module(fake)), "error")
    assert f"dataset.path_map='{{./data/nus_wide/: {fake.root}/}}'" in errors[0].fix


def test_wrong_width_duplicates_train_in_query_and_unreadable_images(tmp_path):
    fake = write_lists(tmp_path, "mixed", 80, "", suffix=".jpg")
    train = (fake.root / "train.txt").read_text().splitlines()
    query = (fake.root / "test.txt").read_text().splitlines()
    (fake.root / "train.txt").write_text("\n".join(train + train[:2] + query[:1]) + "\n")
    (fake.root / "images" / "0003.jpg").write_bytes(b"not a jpeg")
    findings = check_dataset(module(fake, num_classes=21), check_images=True, widths={80: ["coco"], 10: ["digits"]})
    errors = {(f.where, f.message.split(",")[0]) for f in by_level(findings, "error")}
    assert ("train", "80 labels per line") in errors
    assert ("train", "1 images cannot be decoded") in errors
    width = next(f for f in findings if f.message.startswith("80 labels per line"))
    assert width.fix.endswith("set dataset.num_classes=80 (dataset=coco has 80)")
    warnings = {f.where: f.message for f in by_level(findings, "warning")}
    assert warnings["train"] == "2 lines repeat an image listed earlier"
    assert warnings["train+query"].startswith("1 of the 9 train images are also in query: queries seen in training")
    assert f"{fake.root}/images/0003.jpg" not in str(check_dataset(module(fake, num_classes=80)))


def test_missing_list_file_is_an_error(tmp_path):
    fake = write_lists(tmp_path, "x", 21, "")
    (fake.root / "database.txt").unlink()
    errors = by_level(check_dataset(module(fake)), "error")
    assert len(errors) == 1 and "database.txt: list file not found" in errors[0].message


@pytest.mark.slow
def test_script_exit_code_and_fix(tmp_path):
    fake = write_original(tmp_path, "coco", queries_in_database=2)
    command = ["dataset=coco", f"hydra.run.dir={tmp_path / 'out'}"]
    failed = run_script("check_lists", command, tmp_path, timeout=300)
    assert failed.code == 1, failed.stderr[-2000:]
    fix = f"dataset.path_map='{{/home/author/dataset/coco/: {fake.root}/}}'"
    assert fix in failed.stdout and "coco: FAILED (3 errors, 0 warnings)" in failed.stdout
    passed = run_script("check_lists", [*command, *shlex.split(fix)], tmp_path, timeout=300)
    assert passed.code == 0, passed.stdout[-2000:] + passed.stderr[-2000:]
    assert "coco: OK (0 errors, 0 warnings)" in passed.stdout


def test_the_check_names_the_dataset_configs_of_each_width(tmp_path):
    compose_config("check_lists", ["dataset=coco"], tmp_path)  # sets Hydra's config as the script does
    widths = dataset_widths()
    assert widths[80] == ["coco"] and widths[21] == ["nus_wide"] and {"digits", "digits_multi", "cifar10"} <= set(widths[10])
