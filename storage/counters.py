"""Gapless counters: case numbers per year, certificate numbers per office, kind and year.

`next_counter` is one statement, `INSERT … ON CONFLICT DO UPDATE SET value = value + 1
RETURNING value`, run inside the caller's transaction:

- the counter row stays locked until that transaction ends (row lock on PostgreSQL; SQLite
  write transactions begin IMMEDIATE and are serialized anyway), so concurrent callers take
  turns and never see the same value;
- a caller that rolls back undoes its increment, so the next caller gets the same number again
  and the sequence has no gaps — which is why this is not a database SEQUENCE (sequences hand
  out numbers outside transactions and lose them on rollback).

The price is that a counter is a serialization point: keep the transaction that draws a number
short (draw it near the end of the step).
"""
from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import Counter

__all__ = ["next_counter"]


def next_counter(s: Session, name: str) -> int:
    """The next value of a gapless counter; atomic under concurrency on both databases."""
    dialect = s.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Counter).values(name=name, value=1)
    stmt = stmt.on_conflict_do_update(index_elements=[Counter.name], set_={"value": Counter.value + 1})
    return int(s.execute(stmt.returning(Counter.value)).scalar_one())
