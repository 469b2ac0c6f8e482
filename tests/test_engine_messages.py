"""Messages: buffered until the case waits, delivered once, refused for finished cases.

messages.bpmn: `accept` (window clerk) → catch event `paid` (message `tax_paid`, payload into
`payment`) → `issue` → end.
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine import SYSTEM, CaseNotActive, Conflict, InvalidInput
from storage.models import InboundMessage
from tests.conftest import CLERK, REVIEWER, SUPERVISOR, bpmn, open_task

PAID = {"receipt_no": "SW-2026-000123", "amount": 8950.0, "office": "西湖区税务局"}


def start(engine):
    engine.deploy(bpmn("messages.bpmn"), "designer")
    return engine.start_case("messages", {"applicant": "张三"}, CLERK)


def accept(engine, case_id: int) -> None:
    engine.complete_task(open_task(engine, case_id, "accept")["id"], {}, CLERK)


def open_ids(engine, case_id: int) -> list[str]:
    return [t["bpmn_id"] for t in engine.case_tasks(case_id)]


def message_rows(engine, case_id: int) -> int:
    with engine.db.read() as s:
        return s.scalar(select(func.count()).select_from(InboundMessage)
                        .where(InboundMessage.case_id == case_id))


def kinds(engine, case_id: int) -> list[str]:
    return [e["kind"] for e in engine.history(case_id)]


def test_early_message_is_buffered_and_delivered_when_the_case_waits(engine):
    case = start(engine)
    sent = engine.send_message(case.id, "tax_paid", PAID, SYSTEM, key="tax:SW-2026-000123")
    assert sent["delivered"] is False and sent["duplicate"] is False
    assert engine.get_case(case.id)["buffered_messages"] == 1
    assert open_ids(engine, case.id) == ["accept"]
    assert "payment" not in engine.case_data(case.id)

    accept(engine, case.id)  # the case now reaches the catch event and takes the buffered message
    info = engine.get_case(case.id)
    assert info["buffered_messages"] == 0 and info["status"] == "active"
    assert open_ids(engine, case.id) == ["issue"]
    assert engine.case_data(case.id)["payment"] == PAID
    history = kinds(engine, case.id)
    received, completed, delivered = (history.index(k) for k in
                                      ("message_received", "task_completed", "message_delivered"))
    assert received < completed < delivered


def test_message_sent_while_waiting_is_delivered_at_once(engine):
    case = start(engine)
    accept(engine, case.id)
    assert open_ids(engine, case.id) == []  # waiting for the tax office
    sent = engine.send_message(case.id, "tax_paid", PAID, SYSTEM)
    assert sent["delivered"] is True
    assert engine.get_case(case.id)["buffered_messages"] == 0
    assert open_ids(engine, case.id) == ["issue"]
    assert engine.case_data(case.id)["payment"] == PAID


def test_message_for_something_else_stays_buffered(engine):
    case = start(engine)
    accept(engine, case.id)
    sent = engine.send_message(case.id, "mortgage_released", {"bank": "工商银行"}, SYSTEM)
    assert sent["delivered"] is False
    assert engine.get_case(case.id)["buffered_messages"] == 1
    assert open_ids(engine, case.id) == []
    with pytest.raises(InvalidInput):
        engine.send_message(case.id, " ", {}, SYSTEM)


def test_duplicate_send_with_the_same_key_is_not_delivered_twice(engine):
    case = start(engine)
    first = engine.send_message(case.id, "tax_paid", PAID, SYSTEM, key="tax:SW-2026-000123")
    again = engine.send_message(case.id, "tax_paid", {**PAID, "amount": 1.0}, SYSTEM,
                                key="tax:SW-2026-000123")
    assert again == {"id": first["id"], "delivered": False, "duplicate": True}
    assert engine.get_case(case.id)["buffered_messages"] == 1
    accept(engine, case.id)
    assert engine.case_data(case.id)["payment"] == PAID
    # the tax office's callback is retried after delivery: still one message, the first payload
    late = engine.send_message(case.id, "tax_paid", {**PAID, "amount": 2.0}, SYSTEM, key="tax:SW-2026-000123")
    assert late == {"id": first["id"], "delivered": True, "duplicate": True}
    assert message_rows(engine, case.id) == 1
    assert engine.get_case(case.id)["buffered_messages"] == 0
    assert kinds(engine, case.id).count("message_delivered") == 1
    assert kinds(engine, case.id).count("message_received") == 1
    assert engine.case_data(case.id)["payment"] == PAID


def test_a_key_used_for_another_case_is_refused_not_silently_dropped(engine):
    first = start(engine)
    second = engine.start_case("messages", {"applicant": "李四"}, CLERK)
    accept(engine, second.id)
    engine.send_message(first.id, "tax_paid", PAID, SYSTEM, key="tax:SW-2026-000123")
    with pytest.raises(Conflict, match="tax:SW-2026-000123"):
        engine.send_message(second.id, "tax_paid", PAID, SYSTEM, key="tax:SW-2026-000123")
    with pytest.raises(Conflict):
        engine.send_message(first.id, "mortgage_released", {}, SYSTEM, key="tax:SW-2026-000123")
    assert message_rows(engine, second.id) == 0
    assert open_ids(engine, second.id) == []  # still waiting; the sender was told, it can send again
    engine.send_message(second.id, "tax_paid", PAID, SYSTEM, key="tax:SW-2026-000999")
    assert open_ids(engine, second.id) == ["issue"]


def test_message_to_a_suspended_case_waits_for_resume(engine):
    case = start(engine)
    accept(engine, case.id)
    engine.suspend_case(case.id, "申请人补正材料", SUPERVISOR)
    sent = engine.send_message(case.id, "tax_paid", PAID, SYSTEM)
    assert sent["delivered"] is False
    assert engine.get_case(case.id)["buffered_messages"] == 1
    engine.resume_case(case.id, "材料已补正", SUPERVISOR)
    assert engine.get_case(case.id)["buffered_messages"] == 0
    assert open_ids(engine, case.id) == ["issue"]
    assert engine.case_data(case.id)["payment"] == PAID


def test_messages_to_a_finished_case_are_refused(engine):
    done = start(engine)
    accept(engine, done.id)
    engine.send_message(done.id, "tax_paid", PAID, SYSTEM)
    engine.complete_task(open_task(engine, done.id, "issue")["id"], {}, CLERK)
    assert engine.get_case(done.id)["status"] == "completed"
    with pytest.raises(CaseNotActive, match="办结"):
        engine.send_message(done.id, "tax_paid", PAID, SYSTEM)

    withdrawn = engine.start_case("messages", {}, CLERK)
    engine.cancel_case(withdrawn.id, "申请人撤回申请", SUPERVISOR)
    with pytest.raises(CaseNotActive, match="撤销"):
        engine.send_message(withdrawn.id, "tax_paid", PAID, SYSTEM, key="tax:late")
    assert message_rows(engine, done.id) == 1 and message_rows(engine, withdrawn.id) == 0
    assert engine.get_case(withdrawn.id)["buffered_messages"] == 0


def test_a_message_starts_an_event_subprocess_for_the_supervisor(engine):
    """Deadline escalation: a non-interrupting message start in an event subprocess, any time."""
    engine.deploy(bpmn("escalation_probe.bpmn"), "designer")
    case = engine.start_case("probe", {}, REVIEWER)
    result = engine.send_message(case.id, "deadline_yellow", {"light": "yellow"}, SUPERVISOR)
    assert result["delivered"] is True
    urge = open_task(engine, case.id, "urge")
    assert urge["role"] == "supervisor" and open_task(engine, case.id, "review")
    engine.complete_task(urge["id"], {}, SUPERVISOR)
    engine.complete_task(open_task(engine, case.id, "review")["id"], {}, REVIEWER)
    assert engine.get_case(case.id)["status"] == "completed"
