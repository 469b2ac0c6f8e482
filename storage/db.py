"""Database engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite: WAL so readers never wait for the writer, and write transactions begin with
`BEGIN IMMEDIATE`, so a step reads the case under the write lock it will commit with (a
deferred transaction would fail with SQLITE_BUSY_SNAPSHOT the moment any other case was
written meanwhile). `synchronous=NORMAL` in WAL mode: a commit is in the WAL file (the OS has
it) when it returns, so it survives the process crashing; the WAL is fsynced at checkpoints,
so a power loss may take back the last commits, never corrupt the database. PostgreSQL: steps
lock the case row with FOR UPDATE instead; pooled connections are pinged only after sitting idle
(`_ping_when_idle`), and large values are compressed with lz4 (`_prefer_lz4`).

`Prepared` and `Batch` run the engine's hot statements on the DBAPI cursor (and, on
PostgreSQL, several in one round trip); everything else goes through SQLAlchemy as usual.
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable

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
            self.engine = create_engine(self.url, echo=echo, pool_size=pool_size, max_overflow=10)
            _ping_when_idle(self.engine)
            _prefer_lz4(self.engine)
            self.write_engine = self.engine
            # reads (task lists, case pages) need no transaction: autocommit saves BEGIN and
            # ROLLBACK round trips on every page
            self.read_engine = create_engine(
                self.url, echo=echo, pool_size=pool_size, max_overflow=10, isolation_level="AUTOCOMMIT",
            )
            _ping_when_idle(self.read_engine)
            _prefer_lz4(self.read_engine)
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


# A pooled PostgreSQL connection is checked (SELECT 1) before use only if it sat idle this long.
PING_AFTER_IDLE_SECONDS = 1.0
_LAST_USED = "onewindow_last_used"


def _ping_when_idle(engine: Engine) -> None:
    """`pool_pre_ping`, for connections that have been idle: what it protects against — a server
    restart, an idle timeout, a dropped connection — happens to connections that sit in the pool,
    while pinging one handed back a moment ago costs a round trip (two on a write connection: the
    ping opens its transaction) on every step and every page, a quarter of a task completion's
    round trips. A connection that fails the ping is replaced (the pool retries with a new one),
    as with pre_ping; one that dies within the second after its last use fails its statement, and
    SQLAlchemy then invalidates the pool's other connections — as it does without pre_ping."""

    @event.listens_for(engine, "connect")
    def _connected(dbapi_conn, record):  # type: ignore[no-untyped-def]
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_conn, record):  # type: ignore[no-untyped-def]
        if record is not None:
            record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn, record, proxy):  # type: ignore[no-untyped-def]
        last = record.info.get(_LAST_USED)
        if last is not None and time.monotonic() - last < PING_AFTER_IDLE_SECONDS:
            return
        dialect = engine.dialect
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as err:
            if dialect.is_disconnect(err, dbapi_conn, None):
                raise sa_exc.DisconnectionError(str(err)) from err  # the pool replaces it
            raise


def _prefer_lz4(engine: Engine) -> None:
    """Compress large values with lz4 rather than PostgreSQL's default pglz.

    Every step rewrites its case's state, 10–90 KB of JSON, which PostgreSQL compresses into
    TOAST on the server: measured on this machine for a 90 KB second-hand-transfer state, pglz
    takes 1.7 ms per UPDATE and makes 28 KB, lz4 0.3 ms and 12 KB. Reading handles either method,
    so rows written before or by other clients stay readable. A server without lz4 (older than
    14, or built without it) keeps pglz.
    """

    @event.listens_for(engine, "connect")
    def _lz4(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        if dbapi_conn.info.server_version < 140000:
            return
        try:
            with dbapi_conn.cursor() as cur:
                cur.execute("SET default_toast_compression = 'lz4'")
            if not dbapi_conn.autocommit:
                dbapi_conn.commit()
        except engine.dialect.loaded_dbapi.Error:
            if not dbapi_conn.autocommit:
                dbapi_conn.rollback()


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
        sql = f"BEGIN {mode}"
        dbapi_conn = conn.connection.dbapi_connection
        try:  # on the DBAPI connection: it is one statement on every step, exec_driver_sql costs more
            dbapi_conn.execute(sql)
        except conn.dialect.loaded_dbapi.Error as err:
            raise sa_exc.DBAPIError.instance(sql, (), err, conn.dialect.loaded_dbapi.Error,
                                             dialect=conn.dialect) from err


# ---------------------------------------------------------------------------- prepared statements

class Prepared:
    """A Core statement compiled once per dialect and run on the DBAPI cursor underneath a
    SQLAlchemy connection, for the engine's hot path.

    SQLAlchemy's per-execution machinery (cache-key lookup, execution context, result wrapping)
    costs several times what SQLite or a loopback PostgreSQL needs to run a small statement, and
    a case step runs a handful of them. This runs the very SQL SQLAlchemy compiles for the
    dialect, with the bind and result conversions of the columns' types (UTC datetimes, JSON)
    taken from SQLAlchemy too, so what is stored is byte-for-byte what `conn.execute` would store.

    The statement runs in whatever transaction the connection is in (`session.connection()` of
    `Database.write()`: BEGIN IMMEDIATE on SQLite, the implicit transaction on PostgreSQL);
    DBAPI errors are raised as SQLAlchemy's exception classes (IntegrityError …), and a
    disconnect invalidates the connection as SQLAlchemy would. Only plain bind parameters are
    supported (no expanding IN lists).
    """

    __slots__ = ("_by_dialect", "_make")

    def __init__(self, statement: Executable | Callable[[str], Executable]) -> None:
        self._make = statement if callable(statement) and not isinstance(statement, Executable) else (
            lambda _name: statement)
        self._by_dialect: dict[str, _Compiled] = {}

    def _for(self, conn: Connection) -> _Compiled:
        dialect = conn.dialect
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect[dialect.name] = _Compiled(self._make(dialect.name), dialect)
        return compiled

    def execute(self, conn: Connection, params: Mapping[str, Any] | None = None) -> int:
        """Run once; returns the number of rows it changed."""
        cursor = self._for(conn).run(conn, params or {})
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._for(conn).run_many(conn, rows)

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None) -> tuple[Any, ...] | None:
        compiled = self._for(conn)
        cursor = compiled.run(conn, params or {})
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return compiled.convert(row) if row is not None else None

    def all(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        compiled = self._for(conn)
        cursor = compiled.run(conn, params or {})
        try:
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return [compiled.convert(row) for row in rows]


_PYFORMAT = re.compile(r"%\((\w+)\)s")


class _Compiled:
    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if compiled.escaped_bind_names:
            raise ValueError("Prepared statements need plain bind parameter names")
        self.sql = compiled.string
        self.dialect = dialect
        self.dbapi_error = dialect.loaded_dbapi.Error
        if compiled.positional:
            names = list(compiled.positiontup or ())
        elif dialect.paramstyle == "pyformat":
            names = list(dict.fromkeys(_PYFORMAT.findall(self.sql)))
        else:
            raise ValueError(f"unsupported paramstyle {dialect.paramstyle}")
        binds = compiled.binds
        self.positional = compiled.positional
        self.names = names
        self.defaults = {n: binds[n].effective_value for n in names if not binds[n].required}
        processors = {}
        for n in names:
            proc = binds[n].type._cached_bind_processor(dialect)
            if proc is not None:
                processors[n] = proc
        self.processors = processors
        columns = list(getattr(statement, "selected_columns", ()) or ())
        self.result_processors = [c.type._cached_result_processor(dialect, None) for c in columns]
        self.any_result_processor = any(p is not None for p in self.result_processors)

    def _params(self, params: Mapping[str, Any]) -> Any:
        if self.defaults:
            params = {**self.defaults, **params}
        procs = self.processors
        if self.positional:
            return tuple(procs[n](params[n]) if n in procs else params[n] for n in self.names)
        return {n: (procs[n](params[n]) if n in procs else params[n]) for n in self.names}

    def run(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        bound = self._params(params)
        dbapi_conn = conn.connection.dbapi_connection
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(self.sql, bound)
        except self.dbapi_error as err:
            cursor.close()
            raise self._wrap(conn, dbapi_conn, cursor, err, bound) from err
        return cursor

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        bound = [self._params(r) for r in rows]
        dbapi_conn = conn.connection.dbapi_connection
        cursor = dbapi_conn.cursor()
        try:
            cursor.executemany(self.sql, bound)
        except self.dbapi_error as err:
            raise self._wrap(conn, dbapi_conn, cursor, err, bound) from err
        finally:
            cursor.close()

    def _wrap(self, conn: Connection, dbapi_conn: Any, cursor: Any, err: Exception, bound: Any) -> Exception:
        invalidated = bool(self.dialect.is_disconnect(err, dbapi_conn, cursor))
        if invalidated:
            conn.invalidate(err)
        return sa_exc.DBAPIError.instance(self.sql, bound, err, self.dbapi_error,
                                          connection_invalidated=invalidated, dialect=self.dialect)

    def convert(self, row: Sequence[Any]) -> tuple[Any, ...]:
        if not self.any_result_processor:
            return tuple(row)
        return tuple(p(v) if p is not None else v for p, v in zip(self.result_processors, row, strict=False))


class Batch:
    """Prepared statements sent to the database together, in order, in the connection's
    transaction: on PostgreSQL in one psycopg pipeline — one network round trip for all of them
    (and for the BEGIN, when they are the transaction's first) — on SQLite one after another.

    `run` returns one `BatchResult` per statement: its row count and, for a query, its rows.
    An error in any statement is raised (as SQLAlchemy's exception class) when the batch runs;
    on PostgreSQL the statements after it are not executed, and the transaction must roll back.
    """

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[tuple[Prepared, Any, bool]] = []

    def __len__(self) -> int:
        return len(self._items)

    def add(self, prepared: Prepared, params: Mapping[str, Any] | None = None) -> int:
        self._items.append((prepared, params or {}, False))
        return len(self._items) - 1

    def add_many(self, prepared: Prepared, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._items.append((prepared, rows, True))

    def run(self, conn: Connection) -> list[BatchResult]:
        if not self._items:
            return []
        work = [(prepared._for(conn), params, many) for prepared, params, many in self._items]
        self._items = []
        first = work[0][0]
        dbapi_conn = conn.connection.dbapi_connection
        cursors: list[Any] = []
        bound: Any = None
        try:
            # one statement gains nothing from a pipeline, which costs CPU to enter and leave
            with dbapi_conn.pipeline() if len(work) > 1 and _pipelined(conn) else nullcontext():
                for compiled, params, many in work:
                    cursor = dbapi_conn.cursor()
                    cursors.append(cursor)
                    if many:
                        bound = [compiled._params(p) for p in params]
                        cursor.executemany(compiled.sql, bound)
                    else:
                        bound = compiled._params(params)
                        cursor.execute(compiled.sql, bound)
            results = []
            for (compiled, _params, _many), cursor in zip(work, cursors, strict=True):
                rows = [compiled.convert(r) for r in cursor.fetchall()] if cursor.description else []
                results.append(BatchResult(int(cursor.rowcount), rows))
            return results
        except first.dbapi_error as err:
            failed = work[len(cursors) - 1][0] if cursors else first  # the last one sent (exact without pipeline)
            raise failed._wrap(conn, dbapi_conn, cursors[-1] if cursors else None, err, bound) from err
        finally:
            for cursor in cursors:
                cursor.close()


class BatchResult:
    __slots__ = ("rowcount", "rows")

    def __init__(self, rowcount: int, rows: list[tuple[Any, ...]]) -> None:
        self.rowcount = rowcount
        self.rows = rows

    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


def _pipelined(conn: Connection) -> bool:
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
        return False
    import psycopg

    return bool(psycopg.Pipeline.is_supported())
