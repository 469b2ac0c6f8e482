"""Database engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite: WAL so readers never wait for the writer, and write transactions begin with
`BEGIN IMMEDIATE`, so a step reads the case under the write lock it will commit with (a
deferred transaction would fail with SQLITE_BUSY_SNAPSHOT the moment any other case was
written meanwhile). PostgreSQL: steps lock the case row with FOR UPDATE instead.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///var/onewindow.sqlite3"


def database_url() -> str:
    return os.environ.get("ONEWINDOW_DATABASE_URL", DEFAULT_URL)


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


class Database:
    """One database: an engine for reads, one for writes, and session factories for both."""

    def __init__(self, url: str | None = None, *, echo: bool = False, pool_size: int = 5) -> None:
        self.url = normalise_url(url or database_url())
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            path = self.url.split("///", 1)[1] if "///" in self.url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                self.url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
            )
            _configure_sqlite(self.engine)
            self.write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        else:
            self.engine = create_engine(
                self.url, echo=echo, pool_size=pool_size, max_overflow=10, pool_pre_ping=True
            )
            self.write_engine = self.engine
            # reads (task lists, case pages) need no transaction: autocommit saves BEGIN and
            # ROLLBACK round trips on every page
            self.read_engine = create_engine(
                self.url, echo=echo, pool_size=pool_size, max_overflow=10, pool_pre_ping=True,
                isolation_level="AUTOCOMMIT",
            )
        if self.is_sqlite:
            self.read_engine = self.engine
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on any error."""
        with self._write() as session:
            with session.begin():
                yield session

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
