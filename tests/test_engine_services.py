"""Service tasks: results, outbox, retries with back-off, incidents, business errors.

service_errors.bpmn: `check` calls `test.court_check` (retries=2, backoff_base=3) with an error
boundary `seized` (code SEIZED → `court_error`) leading to `refuse`; success leads to `approve`.
service_uncaught.bpmn is the same check without the boundary.
"""
from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from engine import CaseNotActive, InvalidInput
from handlers.registry import OperatorRegistry, Param, TransientError, default_registry
from storage.models import Outbox, TimerJob
from tests.conftest import ADMIN, CLERK, REVIEWER, SUPERVISOR, bpmn, open_task
from tests.operators import TEST_REGISTRY, CourtStub

UNIT = "330106001001GB00001F00010001"

LOCAL = OperatorRegistry()


class NotifyingCourt:
    """A court check that queues the applicant's notice *before* it learns the answer."""

    outcomes: ClassVar[list[str]] = []
    keys: ClassVar[list[str]] = []

    @classmethod
    def reset(cls, *outcomes: str) -> None:
        cls.outcomes = list(outcomes)
        cls.keys = []


@LOCAL.register("test.court_check_notify_first", [Param("unit", "str")])
def court_check_notify_first(ctx: Any, unit: str) -> dict[str, Any]:
    NotifyingCourt.keys.append(ctx.idempotency_key)
    ctx.outbox("notify.applicant", {"unit": unit, "text": "核查完成"})
    outcome = NotifyingCourt.outcomes.pop(0) if NotifyingCourt.outcomes else "ok"
    if outcome == "down":
        raise TransientError("court system timed out after 5 s")
    if outcome == "crash":
        raise KeyError("unexpected field")
    return {"seized": False, "unit": unit}


@pytest.fixture
def registry() -> OperatorRegistry:
    return default_registry().merged(TEST_REGISTRY).merged(LOCAL)


def start(engine, *outcomes: str, process: str = "service_errors"):
    CourtStub.reset(*outcomes)
    engine.deploy(bpmn(f"{process}.bpmn"), "designer")
    return engine.start_case(process, {"unit": UNIT}, CLERK)


def jobs(engine, case_id: int) -> list[TimerJob]:
    with engine.db.read() as s:
        return list(s.scalars(select(TimerJob).where(TimerJob.case_id == case_id)))


def outbox(engine) -> list[Outbox]:
    with engine.db.read() as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.id)))


def kinds(engine, case_id: int) -> list[str]:
    return [e["kind"] for e in engine.history(case_id)]


def open_ids(engine, case_id: int) -> list[str]:
    return [t["bpmn_id"] for t in engine.case_tasks(case_id)]


def test_a_failing_notification_is_resent_with_the_configured_back_off_then_an_incident(engine, clock):
    """SMS gateway down: the notice is tried again after 5 s, 10 s, 20 s (outbox_retry_delay 5,
    doubling, at most 15 s: so 15 s), and after outbox_attempts sends it fails with an incident."""
    engine.settings = dataclasses.replace(engine.settings, outbox_attempts=4, outbox_retry_delay=5.0,
                                          outbox_max_delay=15.0)
    case = start(engine, "ok")
    tries: list[str] = []

    def gateway_down(payload: dict, key: str) -> None:
        tries.append(key)
        raise ConnectionError("SMS gateway refused the connection")

    waits = []
    for _attempt in range(3):
        before = clock.now()
        assert engine.deliver_outbox({"notify.applicant": gateway_down}).failed == 1
        [msg] = outbox(engine)
        assert msg.status == "pending" and "SMS gateway" in msg.last_error
        waits.append((msg.due_at - before).total_seconds())
        assert engine.deliver_outbox({"notify.applicant": gateway_down}).failed == 0  # not yet due
        clock.advance(seconds=waits[-1])
    assert waits == [5.0, 10.0, 15.0]
    assert engine.deliver_outbox({"notify.applicant": gateway_down}).failed == 1
    [msg] = outbox(engine)
    assert msg.status == "failed" and msg.attempts == 4 and len(tries) == 4
    [incident] = engine.incidents(case_id=case.id)
    assert incident["kind"] == "outbox_failed" and "4 attempts" in incident["message"]


def test_outbox_back_off_is_read_from_the_environment():
    from webapp.wiring import engine_settings

    settings = engine_settings({"ONEWINDOW_OUTBOX_ATTEMPTS": "3", "ONEWINDOW_OUTBOX_RETRY_DELAY": "2.5",
                                "ONEWINDOW_OUTBOX_MAX_DELAY": "60"})
    assert (settings.outbox_attempts, settings.outbox_retry_delay, settings.outbox_max_delay) == (3, 2.5, 60.0)
    with pytest.raises(ValueError, match="ONEWINDOW_OUTBOX_RETRY_DELAY"):
        engine_settings({"ONEWINDOW_OUTBOX_RETRY_DELAY": "soon"})


def test_success_stores_result_and_queues_the_notification_with_its_key(engine):
    case = start(engine, "ok")
    assert open_ids(engine, case.id) == ["approve"]
    assert engine.case_data(case.id)["court"] == {"seized": False, "unit": UNIT}
    check_guid = engine.history(case.id)[1]["task_guid"]
    key = f"{case.id}:{check_guid}:test.court_check"
    assert CourtStub.calls == [{"unit": UNIT, "key": key, "attempt": 1}]
    [msg] = outbox(engine)
    assert msg.case_id == case.id and msg.topic == "notify.applicant" and msg.status == "pending"
    assert msg.payload == {"unit": UNIT, "text": "核查完成"}
    assert msg.idempotency_key == f"{case.id}:{check_guid}:test.court_check:notify.applicant:1"
    assert "service_called" in kinds(engine, case.id)
    assert jobs(engine, case.id) == [] and engine.incidents() == []

    sent = []
    run = engine.deliver_outbox({"notify.applicant": lambda payload, key: sent.append((payload, key))})
    assert run.fired == 1
    assert sent == [({"unit": UNIT, "text": "核查完成"}, msg.idempotency_key)]
    assert outbox(engine)[0].status == "delivered"
    assert engine.deliver_outbox({"notify.applicant": lambda payload, key: sent.append(key)}).fired == 0
    assert len(sent) == 1


def test_transient_failure_is_retried_after_the_back_off(engine, clock):
    started = clock.now()
    case = start(engine, "down", "ok")
    assert open_ids(engine, case.id) == []
    [job] = jobs(engine, case.id)
    # retry_delay (10 s) * backoff_base (3) ** (attempt - 1)
    assert (job.kind, job.bpmn_id, job.due_at) == ("retry", "check", started + timedelta(seconds=10))
    assert engine.get_case(case.id)["open_incidents"] == 0
    assert outbox(engine) == []  # nothing is said to the applicant before the check is done

    clock.advance(seconds=9)
    assert engine.run_due_jobs().fired == 0
    assert len(CourtStub.calls) == 1

    clock.advance(seconds=1)
    assert engine.run_due_jobs().fired == 1
    assert open_ids(engine, case.id) == ["approve"]
    assert engine.case_data(case.id)["court"] == {"seized": False, "unit": UNIT}
    assert jobs(engine, case.id) == []
    assert [c["attempt"] for c in CourtStub.calls] == [1, 2]
    assert len({c["key"] for c in CourtStub.calls}) == 1
    assert kinds(engine, case.id) == [
        "case_started", "service_retry_scheduled", "service_retry", "service_called"]
    assert len(outbox(engine)) == 1


def test_failures_beyond_the_retries_become_an_incident_an_admin_can_retry(engine, clock):
    started = clock.now()
    case = start(engine, "down", "down", "down", "ok")
    clock.advance(seconds=10)
    engine.run_due_jobs()
    [job] = jobs(engine, case.id)
    assert job.due_at == started + timedelta(seconds=10 + 30)  # second back-off: 10 s * 3
    clock.advance(seconds=30)
    engine.run_due_jobs()

    # the third failure is one more than retries=2: an incident, no more automatic retries
    assert jobs(engine, case.id) == []
    [incident] = engine.incidents()
    assert incident["case_id"] == case.id and incident["bpmn_id"] == "check"
    assert incident["kind"] == "service_fault" and incident["status"] == "open"
    assert "3 time(s)" in incident["message"] and "timed out" in incident["message"]
    assert engine.get_case(case.id)["open_incidents"] == 1
    assert engine.task_list(REVIEWER) == []
    clock.advance(hours=1)
    assert engine.run_due_jobs().fired == 0
    assert len(CourtStub.calls) == 3

    after = engine.retry_incident(incident["id"], ADMIN, comment="法院系统已恢复")
    assert after["status"] == "resolved" and after["retries"] == 1
    assert engine.incidents() == []
    [closed] = engine.incidents(status="resolved")
    assert closed["resolved_by"] == ADMIN.name
    assert engine.get_case(case.id)["open_incidents"] == 0
    assert open_ids(engine, case.id) == ["approve"]
    # the same key on every attempt, so the court (or a tax office) would charge once
    assert len(CourtStub.calls) == 4 and len({c["key"] for c in CourtStub.calls}) == 1
    assert len(outbox(engine)) == 1
    assert kinds(engine, case.id)[-3:] == ["incident_retried", "service_called", "incident_closed"]


def test_retry_that_fails_again_keeps_the_incident_open(engine):
    case = start(engine, "crash", "crash")
    [incident] = engine.incidents()
    after = engine.retry_incident(incident["id"], ADMIN)
    assert after["status"] == "open" and after["retries"] == 1
    assert len(engine.incidents()) == 1
    assert engine.get_case(case.id)["open_incidents"] == 1
    assert open_ids(engine, case.id) == []


def test_business_error_is_caught_by_the_boundary_event(engine):
    case = start(engine, "seized")
    assert open_ids(engine, case.id) == ["refuse"]
    data = engine.case_data(case.id)
    assert data["court_error"] == {"code": "SEIZED", "message": "该不动产单元已被查封",
                                   "court": "杭州市西湖区人民法院", "doc_no": "(2026)浙0106执123号"}
    assert "court" not in data
    assert engine.incidents() == [] and jobs(engine, case.id) == []
    assert "business_error" in kinds(engine, case.id)
    assert len(CourtStub.calls) == 1  # a "no" is an answer: not retried
    engine.complete_task(open_task(engine, case.id, "refuse")["id"], {}, REVIEWER)
    assert engine.get_case(case.id)["status"] == "completed"
    assert "approve" not in [t["bpmn_id"] for t in engine.case_tasks(case.id, open_only=False)]


def test_handler_crash_becomes_an_incident_with_the_exception_text(engine, clock):
    case = start(engine, "crash")
    [incident] = engine.incidents()
    assert incident["kind"] == "service_fault" and incident["bpmn_id"] == "check"
    assert "KeyError" in incident["message"] and "unexpected field" in incident["message"]
    assert "Traceback" in incident["details"] and "court_check" in incident["details"]
    assert engine.get_case(case.id)["open_incidents"] == 1
    assert open_ids(engine, case.id) == [] and jobs(engine, case.id) == []  # a defect is not retried
    clock.advance(hours=1)
    engine.run_due_jobs()
    assert len(CourtStub.calls) == 1


def test_resolve_needs_a_result_while_the_task_is_blocked(engine):
    case = start(engine, "crash")
    [incident] = engine.incidents()
    with pytest.raises(InvalidInput, match="仍因此事件停止"):
        engine.resolve_incident(incident["id"], "已人工核查", ADMIN)
    with pytest.raises(InvalidInput):
        engine.resolve_incident(incident["id"], "  ", ADMIN, result={"seized": False})
    assert engine.incidents()[0]["status"] == "open"
    assert engine.get_case(case.id)["open_incidents"] == 1

    engine.resolve_incident(incident["id"], "已电话向法院核实，未查封", ADMIN,
                            result={"seized": False, "manual": True})
    assert engine.incidents() == []
    [closed] = engine.incidents(status="resolved")
    assert closed["resolved_by"] == ADMIN.name and closed["comment"] == "已电话向法院核实，未查封"
    assert engine.get_case(case.id)["open_incidents"] == 0
    assert engine.case_data(case.id)["court"] == {"seized": False, "manual": True}
    assert "incident_resolved" in kinds(engine, case.id)
    engine.complete_task(open_task(engine, case.id, "approve")["id"], {}, REVIEWER)
    assert engine.get_case(case.id)["status"] == "completed"


def test_retry_of_an_incident_on_a_suspended_case_is_refused(engine):
    case = start(engine, "crash")
    [incident] = engine.incidents()
    engine.suspend_case(case.id, "等待核实", SUPERVISOR)
    with pytest.raises(CaseNotActive):
        engine.retry_incident(incident["id"], ADMIN)
    assert len(CourtStub.calls) == 1
    engine.resume_case(case.id, "核实完毕", SUPERVISOR)
    assert engine.retry_incident(incident["id"], ADMIN)["status"] == "resolved"
    assert open_ids(engine, case.id) == ["approve"]


def test_business_error_without_a_catching_boundary_is_an_incident(engine):
    case = start(engine, "seized", "ok", process="service_uncaught")
    [incident] = engine.incidents()
    assert incident["kind"] == "business_error" and incident["bpmn_id"] == "check"
    assert "SEIZED" in incident["message"]
    assert engine.get_case(case.id)["open_incidents"] == 1
    assert engine.get_case(case.id)["status"] == "active"
    assert open_ids(engine, case.id) == []  # stopped, and visibly so — not silently routed on
    assert "court" not in engine.case_data(case.id)
    assert engine.retry_incident(incident["id"], ADMIN)["status"] == "resolved"
    assert open_ids(engine, case.id) == ["approve"]


@pytest.mark.parametrize("failure", ["down", "crash"])
def test_a_failed_call_does_not_send_what_it_queued(engine, clock, failure):
    """The applicant is told "核查完成" once, after the check really finished."""
    NotifyingCourt.reset(failure, "ok")
    xml = (bpmn("service_errors.bpmn")[0][1]
           .replace(b'"test.court_check"', b'"test.court_check_notify_first"'))
    engine.deploy([("service_notify_first.bpmn", xml)], "designer")
    case = engine.start_case("service_errors", {"unit": UNIT}, CLERK)
    assert outbox(engine) == []
    if failure == "down":
        clock.advance(seconds=10)
        assert engine.run_due_jobs().fired == 1
    else:
        [incident] = engine.incidents()
        engine.retry_incident(incident["id"], ADMIN)
    assert open_ids(engine, case.id) == ["approve"]
    assert engine.incidents() == []
    [msg] = outbox(engine)
    assert msg.idempotency_key.startswith(NotifyingCourt.keys[-1])
    assert len(set(NotifyingCourt.keys)) == 1 and len(NotifyingCourt.keys) == 2
