"""The console's database: one engine per URL, migrated to the newest schema by Alembic before use.

SQLite (the default, one file) and PostgreSQL (`postgresql+psycopg://...`) are both supported; the same migrations run on
both. `iter_reviewed` is the export's source (app/console/export.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(connection: object, _: object) -> None:
            # WAL lets the ingester write while pages read; foreign keys make review deletes cascade.
            cursor = connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is there already)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Database:
    """An engine, migrated, and a session factory for it."""

    def __init__(self, url: str, run_migrations: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if run_migrations:
            migrate(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self.sessions()

    @property
    def backend(self) -> str:
        return self.engine.url.get_backend_name()

    def dispose(self) -> None:
        self.engine.dispose()


def iter_reviewed(db_url: str, with_texts_only: bool = False) -> Iterator[dict[str, Any]]:
    """Reviewed decisions as export dicts (the format in app/console/export.py and docs/review-console.md), oldest first:
    what `heedful calibrate` and `heedful train-heads` read."""
    from app.console.export import reviewed_lines  # the export builds on this module

    db = Database(db_url, run_migrations=False)  # a reader: never migrates (or creates) the database it reads
    try:
        yield from reviewed_lines(db, with_texts_only)
    finally:
        db.dispose()
