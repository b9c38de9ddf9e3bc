"""Shared fixtures."""
from pathlib import Path

import pytest

from hashnet.digits import build_digits


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded ``digits`` dataset (seed 0), built once per test session."""
    root = tmp_path_factory.mktemp("embedded") / "digits"
    build_digits(root)
    return root
