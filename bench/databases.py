"""A benchmark's own database on the bench PostgreSQL server, made afresh for each run, so
benchmarks running side by side (engine, tasklist, HTTP, soak) never empty each other's data."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.db import Database, normalise_url


def recreate(server_url: str, suffix: str) -> str:
    """Drop and create `<name><suffix>` beside the database of `server_url`; returns its URL."""
    base = make_url(normalise_url(server_url))
    name = f"{base.database}{suffix}"
    admin = Database(server_url, pool_size=1)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)
