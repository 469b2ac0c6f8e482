"""Storage for the sandbox departments: their own tables, not the registry's.

The sandboxes stand in for other departments' databases, so their tables live in their own
metadata (all named `sandbox_*`), created on first use, outside the registry's Alembic
migrations. In-process they share the application's database; a simulator process gives them
a database of its own.
"""
from __future__ import annotations

import threading

from sqlalchemy import MetaData

from storage.db import Database

SANDBOX_METADATA = MetaData()

_created: dict[str, set[str]] = {}
_lock = threading.Lock()


def ensure_tables(db: Database) -> None:
    """Create the sandbox tables in this database; again whenever a sandbox module added more."""
    with _lock:
        done = _created.setdefault(db.url, set())
        if set(SANDBOX_METADATA.tables) <= done:
            return
        SANDBOX_METADATA.create_all(db.engine, checkfirst=True)
        done.update(SANDBOX_METADATA.tables)
