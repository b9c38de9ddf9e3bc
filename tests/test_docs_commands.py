"""Every command docs/*.md print runs as printed (tests/docs_commands.py says what a run may add); a file of its own
beside the README's, so that the two run on two workers at once."""
import pytest

from docs_commands import ROOT, make_workspace, run_documents


@pytest.mark.slow
def test_every_command_of_the_docs_runs_as_printed(tmp_path_factory):
    run_documents(sorted((ROOT / "docs").glob("*.md")), make_workspace(tmp_path_factory.mktemp("user")))
