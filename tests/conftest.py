"""Shared fixtures; plots render off-screen."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

from tests.helpers import make_tiny_data  # noqa: E402


@pytest.fixture
def make_data():
    """The ``make_tiny_data`` factory: ``make_data(modalities=("a", "b"), n=60, ...)``."""
    return make_tiny_data
