"""Alembic environment: runs on the connection the console hands over (app/console/db.py migrate)."""

from __future__ import annotations

from alembic import context

from app.console.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
