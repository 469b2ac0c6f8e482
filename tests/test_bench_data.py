"""bench/stored_cases.py writes cases the way the engine keeps them: the task list shows exactly the
open tasks it says it wrote, on both databases, so the benchmarks' data cannot silently rot."""
from __future__ import annotations

from sqlalchemy import func, select

from bench.stored_cases import ROOT, clerk_logins, store_cases
from domain import deadlines
from engine import Actor, Engine
from storage.models import Case, CaseClock, CaseEvent, HumanTask
from tests import test_storage

POSTS = ("window_clerk", "reviewer", "registrar", "certificate_desk", "supervisor")
EVERYONE = Actor.of("bench_everyone", *POSTS)


def test_stored_cases_are_what_the_task_list_shows(engine: Engine) -> None:
    engine.deploy_paths([ROOT / "processes"], "test")
    stored = store_cases(engine, 200, active_share=0.2)

    assert stored.rows["cases"] == 200 and stored.active > 0 and stored.open_tasks > 0
    with engine.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 200
        assert s.scalar(select(func.count()).where(HumanTask.state == "open")) == stored.open_tasks
        assert s.scalar(select(func.count()).select_from(CaseClock)) == stored.rows["case_clock"] > 0
        assert s.scalar(select(func.count()).select_from(CaseEvent)) == stored.rows["case_event"] > 200
    for post in POSTS:
        rows = engine.task_list(Actor.of("bench_nobody", post), role=post, limit=1000)
        assert len(rows) == stored.unclaimed[post], post
        assert [(r["created_at"], r["id"]) for r in rows] == sorted((r["created_at"], r["id"]) for r in rows)
        for row in rows:
            assert row["state"] == "open" and row["assignee"] is None and row["role"] == post
            assert row["summary"] and engine.get_case(row["case_id"])["status"] in ("active", "suspended")
    for login, count in stored.claimed.items():
        assert len(engine.task_list(Actor.of(login, *POSTS), mine_only=True, limit=1000)) == count
    assert set(stored.claimed) <= {login for post in POSTS for login in clerk_logins(post)}

    everything = engine.task_list(EVERYONE, limit=1000)
    assert {r["case_number"] for r in everything} <= set(stored.open_case_numbers)
    last = everything[-1]
    found = engine.task_list(EVERYONE, search=last["case_number"], limit=1000)
    assert found and {r["case_number"] for r in found} == {last["case_number"]}
    if last["summary"].get("id_number"):  # what clerks type: the beginning of a party's ID number
        found = engine.task_list(EVERYONE, search=last["summary"]["id_number"][:14].lower(), limit=1000)
        assert last["id"] in {r["id"] for r in found}
    with engine.db.read() as s:
        lights = deadlines.task_lights(s, everything, engine.clock.now())
    assert set(lights.values()) <= {"green", "yellow", "red", None} and any(lights.values())

    # the engine's own cases go on after the stored ones: case numbers and ids do not collide
    ref = engine.start_case("general_registration", {"applicant": "张伟", "id_number": "330106199001011234",
                                                     "promised_workdays": 5}, Actor.of("window_01", "window_clerk"))
    assert ref.id == stored.first_id + 200
    with engine.db.read() as s:
        assert s.scalar(select(func.count()).where(Case.case_number == ref.case_number)) == 1
    assert engine.case_tasks(ref.id)


def test_bulk_load_ends_with_the_schema_it_began_with(engine: Engine) -> None:
    """The PostgreSQL bulk path (indexes and constraints dropped, chunks copied by two processes,
    indexes built again) on a small load; SQLite takes its one path."""
    engine.deploy_paths([ROOT / "processes"], "test")
    stored = store_cases(engine, 300, rebuild_indexes=True, jobs=2, batch=60)
    assert stored.rows["cases"] == 300
    test_storage.test_migrations_match_models(engine.db)
    rows = engine.task_list(EVERYONE, limit=10_000)
    assert len(rows) == sum(stored.unclaimed.values()) + sum(
        n for login, n in stored.claimed.items() if login == EVERYONE.name)
    assert len({r["task_guid"] for r in rows}) == len(rows)
