"""Console fixtures: a throwaway PostgreSQL cluster (initdb/pg_ctl on a free port, as a non-root user when the tests run
as root), a fresh database per test on SQLite and on PostgreSQL, and token files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.console.auth import add_token
from tests.console.pg import PostgresServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty console database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'console.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def tokens(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A token file with one person per role; the clear tokens for the test to sign in with."""
    file = tmp_path / "tokens.json"
    clear = {role: add_token(file, f"{role}-person", role) for role in ("viewer", "reviewer", "admin")}
    return file, clear
