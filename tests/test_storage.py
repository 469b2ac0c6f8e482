"""The schema the migrations build is the schema the models describe, on both databases."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage.db import Database
from storage.migrate import current
from storage.models import Base, Counter, WorkdayOverride


def _registry_tables(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    return not (type_ == "table" and name.startswith("sandbox_"))


def test_migrations_match_models(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": _registry_tables})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
    assert current(db) is not None


def test_datetimes_come_back_aware_utc(db: Database) -> None:
    from sqlalchemy import select

    from storage.models import ProcessVersion

    shanghai = timezone(timedelta(hours=8))
    when = datetime(2026, 10, 1, 9, 30, tzinfo=shanghai)
    with db.write() as s:
        s.add(ProcessVersion(process_id="p", version=1, sha256="0" * 64, filename="p.bpmn", bpmn_xml="<x/>",
                             dependencies={}, assets={}, meta={}, deployed_by="t", deployed_at=when))
    with db.read() as s:
        got = s.scalar(select(ProcessVersion.deployed_at))
    assert got == when and got.tzinfo is not None and got.utcoffset() == timedelta(0)


def test_naive_datetime_is_refused(db: Database) -> None:
    from sqlalchemy.exc import StatementError

    from storage.models import ProcessVersion

    with pytest.raises(StatementError, match="naive datetime"):
        with db.write() as s:
            s.add(ProcessVersion(process_id="p", version=1, sha256="0" * 64, filename="p.bpmn", bpmn_xml="<x/>",
                                 dependencies={}, assets={}, meta={}, deployed_by="t",
                                 deployed_at=datetime(2026, 10, 1, 9, 30)))
    with db.read() as s:
        assert s.query(Counter).count() == 0 and s.query(WorkdayOverride).count() == 0
