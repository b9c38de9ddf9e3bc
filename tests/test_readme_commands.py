"""Every command README.md prints runs as printed (tests/docs_commands.py says what a run may add)."""
import pytest

from docs_commands import ROOT, blocks, make_workspace, run_documents


@pytest.mark.slow
def test_every_command_of_the_readme_runs_as_printed(tmp_path_factory):
    run_documents([ROOT / "README.md"], make_workspace(tmp_path_factory.mktemp("user")))


def test_the_commands_are_found():
    readme = [command.text for command in blocks(ROOT / "README.md")]
    assert "python scripts/train.py dataset=coco net=resnet50 hash_bit=48" in " ".join(readme)
    assert any(text.startswith("pip install -e . && python scripts/train.py") for text in readme)
    continued = [text for text in readme if text.startswith("python scripts/search.py")]
    assert continued and "index=outputs/encode/digits/<time>/codes_database.npz" in continued[0]  # a \ line joined
