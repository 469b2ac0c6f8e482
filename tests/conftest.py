"""Fixtures: every engine test runs on SQLite and on a real PostgreSQL server.

PostgreSQL comes from ONEWINDOW_TEST_POSTGRES_URL (scripts/test starts a private server and sets
it). Without it the PostgreSQL half is skipped — unless ONEWINDOW_REQUIRE_POSTGRES=1 (CI), where
a missing server fails the run instead of silently testing less.
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from domain.clock import SHANGHAI, FrozenClock
from engine import Actor, Engine, EngineSettings
from handlers.registry import OperatorRegistry, default_registry
from storage.db import Database
from storage.migrate import upgrade

HERE = Path(__file__).parent
BPMN_DIR = HERE / "bpmn"
PG_URL = os.environ.get("ONEWINDOW_TEST_POSTGRES_URL")
REQUIRE_PG = os.environ.get("ONEWINDOW_REQUIRE_POSTGRES") == "1"

CLERK = Actor.of("clerk_wang", "window_clerk")
REVIEWER = Actor.of("reviewer_li", "reviewer")
REGISTRAR = Actor.of("registrar_zhao", "registrar")
SUPERVISOR = Actor.of("supervisor_chen", "supervisor", "reviewer", "window_clerk")
ADMIN = Actor.of("admin_sun", "admin", "designer")
DESK = Actor.of("desk_zhou", "certificate_desk")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[Database | None]:
    """A database of its own for this test run, dropped at the end, so runs side by side don't collide."""
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("ONEWINDOW_REQUIRE_POSTGRES=1 but ONEWINDOW_TEST_POSTGRES_URL is not set")
        yield None
        return
    admin = Database(PG_URL, pool_size=1)
    name = f"onewindow_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.engine.url.set(database=name).render_as_string(hide_password=False)
    db = Database(url, pool_size=10)
    upgrade(db)
    yield db
    db.dispose()
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "case.sqlite3"
        shutil.copy(sqlite_template, path)
        database = Database(f"sqlite:///{path}")
        yield database
        database.dispose()
        return
    yield request.getfixturevalue("pg")


@pytest.fixture
def pg(pg_database: Database | None) -> Database:
    """This run's PostgreSQL database, emptied: the registry's tables and any sandbox department's."""
    if pg_database is None:
        pytest.skip("PostgreSQL not configured (set ONEWINDOW_TEST_POSTGRES_URL or run scripts/test)")
    with pg_database.engine.begin() as conn:
        names = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                  "AND tablename <> 'alembic_version'")).scalars().all()
        conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
    return pg_database


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI))


@pytest.fixture
def registry() -> OperatorRegistry:
    from tests.operators import TEST_REGISTRY

    return default_registry().merged(TEST_REGISTRY)


@pytest.fixture
def engine(db: Database, registry: OperatorRegistry, clock: FrozenClock) -> Engine:
    return Engine(db, registry, clock, EngineSettings(step_time_limit=2.0))


def bpmn(*names: str) -> list[tuple[str, bytes]]:
    return [(n, (BPMN_DIR / n).read_bytes()) for n in names]


def open_task(engine: Engine, case_id: int, bpmn_id: str) -> dict:
    tasks = [t for t in engine.case_tasks(case_id) if t["bpmn_id"] == bpmn_id]
    assert tasks, f"no open task {bpmn_id}; open: {[t['bpmn_id'] for t in engine.case_tasks(case_id)]}"
    return tasks[0]
