"""Shared fixtures: the real Scorer, loaded once per test session, and a writer for policy files in a temp folder."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from classifiers import DEFAULT_MODEL_DIR, Scorer

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"

HEADER = """\
apiVersion: heedful/v1
kind: Policy
metadata:
  name: {name}
spec:
  default: true
"""


@pytest.fixture(scope="session")
def scorer() -> Scorer:
    return Scorer(DEFAULT_MODEL_DIR, threads=2)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """write("a.yaml", text) -> path; text is dedented."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


def policy_text(rules: str, name: str = "p", extra: str = "") -> str:
    """A minimal valid policy with the given (dedented, `rules:`-level) rules block."""
    return HEADER.format(name=name) + extra + "  rules:\n" + textwrap.indent(textwrap.dedent(rules).strip("\n"), "    ") + "\n"
