"""One shipped-model scorer per test session for the classifier tests (loading it takes about a second)."""

from __future__ import annotations

import pytest

from classifiers.runtime import Scorer


@pytest.fixture(scope="session")
def scorer() -> Scorer:
    return Scorer()
