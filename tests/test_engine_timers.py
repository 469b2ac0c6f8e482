"""Timers: boundary timers on a user task, an intermediate timer, and the scheduler that fires them.

timers.bpmn: `review` (reviewer) has a non-interrupting reminder `remind` ("PT1H") whose branch sets
`reminders`, and an interrupting deadline `expire` (`add_workdays(accepted_at, 2)`) that cancels the
review and opens the supervisor's `escalated`; after the review, `wait` ("PT30M") holds the case.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from domain.clock import SHANGHAI
from engine.runtime import JobRun
from storage.models import TimerJob
from tests.conftest import REVIEWER, SUPERVISOR, bpmn, open_task


def start(engine, clock, accepted_at: str | None = None):
    engine.deploy(bpmn("timers.bpmn"), "designer")
    accepted_at = accepted_at or clock.now().astimezone(SHANGHAI).isoformat()
    return engine.start_case("timers", {"accepted_at": accepted_at}, REVIEWER)


def timer_jobs(engine, case_id: int) -> dict[str, TimerJob]:
    with engine.db.read() as s:
        return {j.bpmn_id: j for j in s.scalars(select(TimerJob).where(TimerJob.case_id == case_id))}


def fired(engine, case_id: int) -> list[str]:
    return [e["bpmn_id"] for e in engine.history(case_id) if e["kind"] == "timer_fired"]


def test_timers_are_scheduled_when_the_task_opens(engine, clock):
    case = start(engine, clock)
    jobs = timer_jobs(engine, case.id)
    assert set(jobs) == {"remind", "expire"}
    assert {j.kind for j in jobs.values()} == {"timer"}
    assert jobs["remind"].due_at == clock.now() + timedelta(hours=1)
    # 2026-11-23 is a Monday: two working days later is Wednesday, same time of day
    assert jobs["expire"].due_at == datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI)
    assert engine.next_due() == jobs["remind"].due_at


def test_non_interrupting_reminder_runs_its_branch_and_keeps_the_review_open(engine, clock):
    case = start(engine, clock)
    review = open_task(engine, case.id, "review")
    clock.advance(hours=1, minutes=1)
    run = engine.run_due_jobs()
    assert (run.fired, run.failed) == (1, 0)
    still = open_task(engine, case.id, "review")
    assert still["id"] == review["id"] and still["state"] == "open"
    assert [t["bpmn_id"] for t in engine.case_tasks(case.id)] == ["review"]
    assert engine.case_data(case.id)["reminders"] == 1
    assert fired(engine, case.id) == ["remind"]
    assert set(timer_jobs(engine, case.id)) == {"expire"}  # the reminder is done, the deadline still runs
    # the review can still be done after the reminder
    engine.complete_task(review["id"], {"approved": True}, REVIEWER)
    states = {t["bpmn_id"]: t["state"] for t in engine.case_tasks(case.id, open_only=False)}
    assert states == {"review": "completed"}
    assert set(timer_jobs(engine, case.id)) == {"wait"}


def test_interrupting_deadline_counts_working_days_across_national_day(engine, clock):
    clock.set(datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI))
    case = start(engine, clock, accepted_at="2026-09-30T09:00:00+08:00")
    # 10-01..10-07 are the National Day holiday: the 2nd working day after 09-30 is Friday 10-09
    assert timer_jobs(engine, case.id)["expire"].due_at == datetime(2026, 10, 9, 9, 0, tzinfo=SHANGHAI)
    review = open_task(engine, case.id, "review")

    clock.set(datetime(2026, 10, 9, 8, 59, tzinfo=SHANGHAI))
    engine.run_due_jobs()  # only the reminder is due by now
    assert [t["bpmn_id"] for t in engine.case_tasks(case.id)] == ["review"]
    assert fired(engine, case.id) == ["remind"]

    clock.set(datetime(2026, 10, 9, 9, 1, tzinfo=SHANGHAI))
    run = engine.run_due_jobs()
    assert run.fired == 1
    rows = {t["bpmn_id"]: t for t in engine.case_tasks(case.id, open_only=False)}
    assert rows["review"]["id"] == review["id"]
    assert rows["review"]["state"] == "cancelled" and rows["review"]["closed_by"] is None
    assert rows["review"]["closed_at"] == clock.now()
    escalated = open_task(engine, case.id, "escalated")
    assert escalated["role"] == "supervisor" and escalated["name"] == "超期督办"
    assert [t["id"] for t in engine.task_list(SUPERVISOR, role="supervisor")] == [escalated["id"]]
    assert fired(engine, case.id) == ["remind", "expire"]
    assert timer_jobs(engine, case.id) == {}
    assert "wait" not in [t["bpmn_id"] for t in engine.case_tasks(case.id, open_only=False)]

    engine.complete_task(escalated["id"], {}, SUPERVISOR)
    assert engine.get_case(case.id)["status"] == "completed"


def test_completing_the_review_in_time_cancels_both_boundary_timers_and_starts_the_wait(engine, clock):
    case = start(engine, clock)
    clock.advance(minutes=10)
    engine.complete_task(open_task(engine, case.id, "review")["id"], {}, REVIEWER)
    jobs = timer_jobs(engine, case.id)
    assert set(jobs) == {"wait"}
    assert jobs["wait"].due_at == clock.now() + timedelta(minutes=30)
    assert engine.case_tasks(case.id) == []
    assert engine.get_case(case.id)["status"] == "active"

    clock.advance(hours=3)  # the reminder's and deadline's old due times are passed: nothing of them fires
    run = engine.run_due_jobs()
    assert run.fired == 1
    assert fired(engine, case.id) == ["wait"]
    assert "reminders" not in engine.case_data(case.id)
    info = engine.get_case(case.id)
    assert info["status"] == "completed" and info["ended_at"] == clock.now()
    assert timer_jobs(engine, case.id) == {}


def test_intermediate_timer_holds_the_case_until_due(engine, clock):
    case = start(engine, clock)
    engine.complete_task(open_task(engine, case.id, "review")["id"], {}, REVIEWER)
    clock.advance(minutes=29)
    assert engine.run_due_jobs().fired == 0
    assert engine.get_case(case.id)["status"] == "active"
    clock.advance(minutes=2)
    assert engine.run_due_jobs().fired == 1
    assert engine.get_case(case.id)["status"] == "completed"
    kinds = [e["kind"] for e in engine.history(case.id)]
    assert kinds[-2:] == ["timer_fired", "case_completed"]


def test_timer_not_yet_due_does_not_fire(engine, clock):
    case = start(engine, clock)
    clock.advance(minutes=59, seconds=59)
    run = engine.run_due_jobs()
    assert (run.fired, run.skipped, run.failed) == (0, 0, 0)
    assert "reminders" not in engine.case_data(case.id)
    assert fired(engine, case.id) == []
    jobs = timer_jobs(engine, case.id)
    assert set(jobs) == {"remind", "expire"}
    assert jobs["remind"].locked_by is None  # not claimed either


def test_timer_fires_when_run_exactly_at_its_due_time(engine, clock):
    """A scheduler tick at 10:00:00 fires the 10:00:00 reminder, once, and says so truthfully."""
    case = start(engine, clock)
    clock.advance(hours=1)
    run = engine.run_due_jobs()
    assert run.fired == 1
    assert engine.case_data(case.id).get("reminders") == 1
    assert fired(engine, case.id) == ["remind"]
    assert "remind" not in timer_jobs(engine, case.id)
    clock.advance(minutes=5)  # past the job lock: nothing is left to fire again
    assert engine.run_due_jobs().fired == 0
    assert fired(engine, case.id) == ["remind"]


def test_running_due_jobs_twice_fires_once(engine, clock):
    case = start(engine, clock)
    clock.advance(hours=2)
    first = engine.run_due_jobs()
    second = engine.run_due_jobs()
    assert (first.fired, second.fired) == (1, 0)
    assert engine.case_data(case.id)["reminders"] == 1
    assert fired(engine, case.id) == ["remind"]
    assert "remind" not in timer_jobs(engine, case.id)
    clock.advance(minutes=5)  # even after the claim would have expired
    assert engine.run_due_jobs().fired == 0
    assert fired(engine, case.id) == ["remind"]


def test_a_late_scheduler_fires_every_overdue_timer_and_records_each(engine, clock):
    """The worker was down for three days: the reminder and the deadline are both overdue."""
    case = start(engine, clock)
    clock.advance(days=3)
    engine.run_due_jobs()
    assert engine.case_data(case.id)["reminders"] == 1
    assert sorted(fired(engine, case.id)) == ["expire", "remind"]
    states = {t["bpmn_id"]: t["state"] for t in engine.case_tasks(case.id, open_only=False)}
    assert states == {"review": "cancelled", "escalated": "open"}
    assert timer_jobs(engine, case.id) == {}
    assert engine.run_due_jobs().fired == 0


def test_timers_of_a_suspended_case_wait_for_resume(engine, clock):
    case = start(engine, clock)
    engine.suspend_case(case.id, "等待法院协助执行通知书", SUPERVISOR)
    clock.advance(hours=2)
    run = engine.run_due_jobs()
    assert run.fired == 0
    assert "reminders" not in engine.case_data(case.id)
    assert fired(engine, case.id) == []
    assert set(timer_jobs(engine, case.id)) == {"remind", "expire"}  # kept, not lost

    engine.resume_case(case.id, "通知书已送达", SUPERVISOR)
    engine.run_due_jobs()
    assert engine.case_data(case.id)["reminders"] == 1
    assert fired(engine, case.id) == ["remind"]  # the audit trail shows the overdue reminder fired
    assert set(timer_jobs(engine, case.id)) == {"expire"}
    assert [t["bpmn_id"] for t in engine.case_tasks(case.id)] == ["review"]
    kinds = [e["kind"] for e in engine.history(case.id)]
    assert kinds.index("case_resumed") < kinds.index("timer_fired")
    engine.run_due_jobs()
    assert fired(engine, case.id) == ["remind"]


def test_cycle_timer_fires_each_period_then_stops(engine, clock):
    engine.deploy(bpmn("cycle.bpmn"), "designer")
    case = engine.start_case("daily_reminder", {}, REVIEWER)
    for day in range(1, 5):
        clock.advance(hours=24, minutes=1)
        engine.run_due_jobs()
        assert fired(engine, case.id).count("daily") == min(day, 3)
        assert open_task(engine, case.id, "review")  # reminders never take the task away
    with engine.db.read() as s:
        assert s.scalars(select(TimerJob).where(TimerJob.case_id == case.id)).all() == []
    assert engine.case_data(case.id)["reminded"] is True


RACE = """
<bpmn:startEvent id="start"/>
<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="first"/>
<bpmn:eventBasedGateway id="first"/>
<bpmn:sequenceFlow id="f1" sourceRef="first" targetRef="timeout"/>
<bpmn:sequenceFlow id="f2" sourceRef="first" targetRef="answer"/>
<bpmn:intermediateCatchEvent id="timeout">
  <bpmn:timerEventDefinition><bpmn:timeDuration>"PT1H"</bpmn:timeDuration></bpmn:timerEventDefinition>
</bpmn:intermediateCatchEvent>
<bpmn:intermediateCatchEvent id="answer">
  <bpmn:messageEventDefinition messageRef="msg_answer"/>
</bpmn:intermediateCatchEvent>
<bpmn:sequenceFlow id="f3" sourceRef="timeout" targetRef="chase"/>
<bpmn:sequenceFlow id="f4" sourceRef="answer" targetRef="review"/>
<bpmn:userTask id="chase" name="催办"/>
<bpmn:userTask id="review" name="审核"/>
<bpmn:sequenceFlow id="f5" sourceRef="chase" targetRef="end"/>
<bpmn:sequenceFlow id="f6" sourceRef="review" targetRef="end"/>
<bpmn:endEvent id="end"/>
"""


def start_race(engine):
    from tests.diagrams import definitions

    message = '  <bpmn:message id="msg_answer" name="answer"/>\n'
    engine.deploy([("race.bpmn", definitions(RACE, "race", before=message))], "designer")
    return engine.start_case("race", {}, REVIEWER)


def test_an_event_based_gateways_timer_is_scheduled_and_fires(engine, clock):
    """The gateway itself waits (SpiffWorkflow keeps its targets' events on it): its timer is a job."""
    case = start_race(engine)
    jobs = timer_jobs(engine, case.id)
    assert set(jobs) == {"first"} and jobs["first"].due_at == clock.now() + timedelta(hours=1)
    clock.advance(minutes=59)
    assert engine.run_due_jobs().fired == 0
    clock.advance(minutes=2)
    assert engine.run_due_jobs().fired == 1
    assert [t["bpmn_id"] for t in engine.case_tasks(case.id)] == ["chase"]
    assert fired(engine, case.id) == ["first"] and timer_jobs(engine, case.id) == {}


def test_an_event_based_gateways_timer_is_dropped_when_the_message_wins(engine, clock):
    from engine import SYSTEM

    case = start_race(engine)
    engine.send_message(case.id, "answer", {}, SYSTEM)
    assert [t["bpmn_id"] for t in engine.case_tasks(case.id)] == ["review"]
    assert timer_jobs(engine, case.id) == {}
    clock.advance(hours=2)
    assert engine.run_due_jobs().fired == 0 and fired(engine, case.id) == []


def test_a_worker_whose_lease_ran_out_while_it_waited_leaves_the_job_to_the_other(engine, clock):
    """Worker A claims the reminder, then stalls before it has the case; its lease runs out and
    worker B claims and fires the job meanwhile. A, getting the case at last, sees the job gone and
    skips it: no error, no incident, the reminder fired once."""
    if engine.db.is_sqlite:
        pytest.skip("on SQLite a step holds the database's write lock from its start: no interleaving")
    case = start(engine, clock)
    clock.advance(hours=1)
    [job_id] = engine._claim_jobs("A", 10)
    clock.advance(seconds=engine.settings.job_lock_seconds + 1)
    original = engine._lock_case
    interleaved: list[JobRun] = []

    def other_worker_first(s, case_id):
        engine._lock_case = original  # B's own step locks the case as usual
        interleaved.append(engine.run_due_jobs("B"))
        return original(s, case_id)

    engine._lock_case = other_worker_first
    try:
        assert engine._run_job(job_id, "A") is False
    finally:
        engine._lock_case = original
    assert interleaved[0].fired == 1 and interleaved[0].errors == []
    assert fired(engine, case.id) == ["remind"]
    assert engine.case_data(case.id)["reminders"] == 1
    assert engine.get_case(case.id)["open_incidents"] == 0
