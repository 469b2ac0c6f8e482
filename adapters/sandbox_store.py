"""Storage for the sandbox departments: their own tables, not the registry's.

The sandboxes stand in for other departments' databases, so their tables live in their own
metadata (all named `sandbox_*`), created on first use, outside the registry's Alembic
migrations. In-process they share the application's database; a simulator process gives them
a database of its own.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import MetaData, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import unit_number as unit_number_rules
from domain.errors import BusinessError
from storage.db import Database

T = TypeVar("T")

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


def lock_counter(session: Session, table: Table, name: str) -> int:
    """The current value of a named counter, its row locked until the transaction ends.

    Taken first thing in a numbering transaction, it serializes the writers that share the counter,
    so their checks see each other's committed rows and numbers are gapless (a refusal or an
    idempotent replay rolls back without using one). SQLite writers are serialized anyway.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(table).values(name=name, value=0).on_conflict_do_nothing(index_elements=[table.c.name]))
    return int(session.execute(select(table.c.value).where(table.c.name == name).with_for_update()).scalar_one())


def set_counter(session: Session, table: Table, name: str, value: int) -> None:
    session.execute(table.update().where(table.c.name == name).values(value=value))


def retry_on_conflict(action: Callable[[], T], attempts: int = 4) -> T:
    """Run a write; when a concurrent writer inserted the same unique row first, run it again (it then
    finds that row). Business errors pass through untouched."""
    for attempt in range(attempts):
        try:
            return action()
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def check_unit(unit_number: str) -> str:
    """The normalised unit number, or BusinessError UNIT_NUMBER_INVALID saying which part is wrong."""
    try:
        return unit_number_rules.validate(unit_number)
    except ValueError as exc:
        raise BusinessError("UNIT_NUMBER_INVALID", f"{exc}；请核对不动产单元号（28位）",
                            unit_number=unit_number) from None
