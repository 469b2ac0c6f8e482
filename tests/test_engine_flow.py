"""Cases through parallel split/join, a service task, user tasks and an exclusive gateway."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import Conflict, NotPermitted, TaskNotReady, spiff
from storage.models import Case
from tests.conftest import CLERK, REGISTRAR, REVIEWER, bpmn, open_task


def start(engine, **data):
    engine.deploy(bpmn("parallel.bpmn"), "designer")
    base = {"accepted_on": "2026-09-30", "limit_days": 5}
    base.update(data)
    return engine.start_case("parallel_review", base, CLERK)


def test_parallel_split_join_with_service_and_user_task(engine):
    case = start(engine)
    assert case.case_number == "2026-000001"
    accept = open_task(engine, case.id, "accept")
    assert accept["role"] == "window_clerk" and accept["name"] == "受理"
    engine.complete_task(accept["id"], {"applicant": "张三"}, CLERK)
    # the service branch ran at once (across the National Day holiday), the review waits for a person
    review = open_task(engine, case.id, "review")
    assert review["role"] == "reviewer"
    data = engine.case_data(case.id)
    assert data["promise"]["due"] == "2026-10-13"
    engine.complete_task(review["id"], {"approved": True}, REVIEWER)
    register = open_task(engine, case.id, "register")
    engine.complete_task(register["id"], {}, REGISTRAR)
    info = engine.get_case(case.id)
    assert info["status"] == "completed"
    kinds = [e["kind"] for e in engine.history(case.id)]
    assert kinds[0] == "case_started" and kinds[-1] == "case_completed"
    assert kinds.count("task_completed") == 3 and "service_called" in kinds


def test_exclusive_gateway_routes_on_data(engine):
    case = start(engine)
    engine.complete_task(open_task(engine, case.id, "accept")["id"], {}, CLERK)
    engine.complete_task(open_task(engine, case.id, "review")["id"], {"approved": False}, REVIEWER)
    assert engine.get_case(case.id)["status"] == "completed"
    assert "register" not in [t["bpmn_id"] for t in engine.case_tasks(case.id, open_only=False)]


def test_case_numbers_count_up_per_year(engine, clock):
    first = start(engine)
    second = engine.start_case("parallel_review", {"accepted_on": "2026-09-30", "limit_days": 5}, CLERK)
    assert (first.case_number, second.case_number) == ("2026-000001", "2026-000002")
    clock.advance(days=40)  # into 2027
    third = engine.start_case("parallel_review", {"accepted_on": "2027-01-04", "limit_days": 5}, CLERK)
    assert third.case_number == "2027-000001"


def test_completion_refused_for_wrong_role_and_unready_task(engine):
    case = start(engine)
    accept = open_task(engine, case.id, "accept")
    with pytest.raises(NotPermitted, match="窗口受理"):
        engine.complete_task(accept["id"], {}, REVIEWER)
    engine.complete_task(accept["id"], {}, CLERK)
    with pytest.raises(TaskNotReady):
        engine.complete_task(accept["id"], {}, CLERK)


def test_stale_expected_version_is_a_conflict_and_loses_nothing(engine):
    case = start(engine)
    engine.complete_task(open_task(engine, case.id, "accept")["id"], {}, CLERK, expected_version=case.lock_version)
    review = open_task(engine, case.id, "review")
    with pytest.raises(Conflict, match="已被他人更新"):
        engine.complete_task(review["id"], {"approved": True}, REVIEWER, expected_version=case.lock_version)
    current = engine.get_case(case.id)["lock_version"]
    engine.complete_task(review["id"], {"approved": True}, REVIEWER, expected_version=current)
    assert open_task(engine, case.id, "register")


def test_state_is_stored_as_compact_utf8_and_a_lone_surrogate_still_saves(engine):
    """Chinese is stored as itself (not \\u escapes), so states are smaller; a string no UTF-8 can
    hold (a lone surrogate, which a script can make) falls back to escaped JSON, and the case
    reads back the same either way."""
    case = start(engine, applicant="张三")
    with engine.db.read_engine.connect() as conn:
        stored = conn.execute(select(Case.state).where(Case.id == case.id)).scalar_one()
    assert "张三".encode() in stored and b"\\u5f20" not in stored and b'", "' not in stored
    wf = engine.serializer.deserialize_json(stored)
    wf.data["odd"] = "a\ud800b"
    again = spiff.state_bytes(engine.serializer, wf)
    assert again.isascii() and b"\\ud800" in again
    assert engine.serializer.deserialize_json(again).data["odd"] == "a\ud800b"
