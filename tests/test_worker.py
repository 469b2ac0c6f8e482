"""Timers and outbox messages fire once, however many workers poll at the same moment."""
from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select

from engine import Engine
from engine.worker import Worker
from storage.models import CaseEvent, Outbox, TimerJob
from tests.conftest import REVIEWER, bpmn, open_task
from tests.operators import CourtStub


def test_due_timers_fire_once_with_concurrent_workers(engine: Engine, clock) -> None:
    engine.deploy(bpmn("timers.bpmn"), "designer")
    cases = [engine.start_case("timers", {"accepted_at": "2026-11-23T09:00:00+08:00"}, REVIEWER) for _ in range(6)]
    clock.advance(hours=1, minutes=1)  # the one-hour reminders are due, the deadlines are not
    workers = [Worker(engine, name=f"w{i}") for i in range(3)]
    barrier = threading.Barrier(len(workers))

    def run(w: Worker) -> None:
        barrier.wait()
        w.run_due()

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with engine.db.read() as s:
        fired = s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.kind == "timer_fired"))
        remaining = s.scalars(select(TimerJob.bpmn_id)).all()
    assert fired == len(cases)
    assert sorted(set(remaining)) == ["expire"]  # only the not-yet-due deadlines are left
    for case in cases:
        assert open_task(engine, case.id, "review")  # non-interrupting: the review is still open
        assert engine.case_data(case.id)["reminders"] == 1


def test_outbox_delivered_once_and_failures_retried(engine: Engine, clock) -> None:
    engine.deploy(bpmn("service_errors.bpmn"), "designer")
    CourtStub.reset("ok", "ok")
    engine.start_case("service_errors", {"unit": "330106001001GB00001F00010001"}, REVIEWER)
    engine.start_case("service_errors", {"unit": "330106001001GB00001F00010002"}, REVIEWER)
    sent: list[tuple[str, str]] = []
    fail_first = {"330106001001GB00001F00010002"}

    def sender(payload: dict, key: str) -> None:
        if payload["unit"] in fail_first:
            fail_first.clear()
            raise ConnectionError("SMS gateway refused the connection")
        sent.append((payload["unit"], key))

    workers = [Worker(engine, {"notify.applicant": sender}, name=f"w{i}") for i in range(2)]
    barrier = threading.Barrier(2)

    def run(w: Worker) -> None:
        barrier.wait()
        w.deliver_outbox()

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [unit for unit, _ in sent] == ["330106001001GB00001F00010001"]
    with engine.db.read() as s:
        failed = s.scalars(select(Outbox).where(Outbox.status == "pending")).one()
    assert failed.attempts == 1 and "refused" in failed.last_error
    clock.advance(timedelta(minutes=1))
    workers[0].deliver_outbox()
    assert len(sent) == 2 and len({key for _, key in sent}) == 2
    workers[1].deliver_outbox()
    assert len(sent) == 2
