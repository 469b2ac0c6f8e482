"""Deadlines 限时办结: the time-limit table, case clocks across National Day, pauses, lights, the
worker's escalation messages, stage times and the one-hour rate.

deadline_flow.bpmn: `acceptance_start` (deadline.stage acceptance start) → `accept` (window clerk)
→ `clock_start` (deadline.start business) → `acceptance_end` → if `unpaid_tax`: `clock_pause`
(unpaid_tax) → `pay` → `clock_resume` → `review_start` → `review` (reviewer) → `review_end` →
`certify` (registrar) → `certificate_end` (only the end is marked) → `issue` (certificate desk).
Event subprocesses in the supervisor lane open `urge_yellow` / `urge_red` on deadline_yellow / _red.

2026 National Day: 10-01 … 10-07 are holidays, Saturday 10-10 is a make-up working day.
"""
from __future__ import annotations

import json
import threading
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from domain import calendar, deadlines
from domain.clock import SHANGHAI
from domain.errors import BusinessError
from engine import Actor, Engine, EngineSettings
from handlers.registry import Param
from storage.models import CaseClock, CaseClockPause, CaseStageTime, InboundMessage
from tests.conftest import SUPERVISOR, bpmn, open_task
from webapp.wiring import deadline_upkeep

# one person on every post of the small test office
EVERYONE = Actor.of("duty_officer", "window_clerk", "reviewer", "registrar", "certificate_desk", "supervisor")

MODELLED = {
    "presale_notice": 13, "secondhand_transfer": 7, "mortgage": 9, "mortgage_cancellation": 12, "seizure": 22,
}


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def _default_config(monkeypatch):
    monkeypatch.delenv("ONEWINDOW_DEADLINE_YELLOW_SHARE", raising=False)
    monkeypatch.delenv("ONEWINDOW_DEADLINE_IMMEDIATE_MINUTES", raising=False)
    monkeypatch.delenv("ONEWINDOW_TIME_LIMITS", raising=False)


def start(engine, clock, business: str = "secondhand_transfer", *, when: datetime | None = None,
          unpaid_tax: bool = False, accept_after: timedelta = timedelta(0)):
    """A deadline_flow case started at `when` and accepted `accept_after` later (the clock starts then)."""
    if when is not None:
        clock.set(when)
    engine.deploy(bpmn("deadline_flow.bpmn"), "designer")
    case = engine.start_case("deadline_flow", {"business": business, "unpaid_tax": unpaid_tax}, SUPERVISOR)
    clock.advance(accept_after)
    complete(engine, case.id, "accept")
    return case


def complete(engine, case_id: int, bpmn_id: str, data: dict | None = None) -> None:
    engine.complete_task(open_task(engine, case_id, bpmn_id)["id"], data or {}, EVERYONE)


def deadline(engine, case_id: int) -> dict:
    with engine.db.read() as s:
        return deadlines.case_deadline(s, case_id, engine.clock.now())


def messages(engine, case_id: int) -> list[InboundMessage]:
    with engine.db.read() as s:
        return list(s.scalars(select(InboundMessage).where(InboundMessage.case_id == case_id)
                              .order_by(InboundMessage.id)))


def tasks(engine, case_id: int) -> list[str]:
    return sorted(t["bpmn_id"] for t in engine.case_tasks(case_id))


# ============================================================================ the table


def test_the_table_has_25_rows_and_the_modelled_codes():
    table = deadlines.load_table()
    assert [k.row for k in table.rows] == list(range(1, 26))
    codes = [k.code for k in table.rows]
    assert len(set(codes)) == 25
    for code, row in MODELLED.items():
        assert table.kind(code).row == row
    assert table.kind("secondhand_transfer").name == "国有建设用地使用权及房屋所有权转移登记"
    assert table.limit_for("secondhand_transfer") == deadlines.Limit("workdays", 5)
    assert table.limit_for("mortgage_cancellation") == deadlines.Limit("workdays", 1)
    assert table.limit_for("presale_notice_with_mortgage_notice") == deadlines.Limit("workdays", 7)
    assert table.kind("presale_notice_with_mortgage_notice").legal_text == "30+30"
    assert table.kind("housing_transaction").legal_workdays == 1
    immediate = [k.row for k in table.rows if k.immediate]
    assert immediate == [21, 22, 24, 25]
    assert all(table.limit_for(k.code) == deadlines.Limit("minutes", 60) for k in table.rows if k.immediate)
    # the two modelled kinds the table does not list, derived from its rows
    twm = table.kind("transfer_with_mortgage")
    assert twm.row is None and twm.from_rows == (7, 9) and table.limit_for(twm.code).value == 5
    assert twm.note and "7" in twm.note and "9" in twm.note
    release = table.kind("release")
    assert release.from_rows == (22,) and table.limit_for("release") == deadlines.Limit("minutes", 60)
    assert set(table.pause_reasons) == {"supplement", "notice", "inspection", "policy_housing", "land_premium",
                                        "purchase_restriction", "unpaid_tax"}
    assert table.pause_reasons["unpaid_tax"].clause == "（四）"
    assert [(s.code, s.budget_minutes) for s in table.stages.values()] == [
        ("acceptance", 20), ("review", 20), ("certificate", 20)]
    assert table.kind("secondhand_transfer").one_hour and not table.kind("presale_notice").one_hour
    json.dumps(table.to_data(), ensure_ascii=False)  # the public guide can publish it as is


def test_a_broken_table_is_refused_with_every_problem_at_once():
    data = json.loads(deadlines.TABLE_PATH.read_text(encoding="utf-8"))
    data["rows"][6]["promised"] = {"days": 5}
    data["rows"][8]["code"] = "Mortgage"
    data["combined"][0]["promised"] = {"workdays": 3}
    with pytest.raises(ValueError) as err:
        deadlines.parse_table(data)
    text = str(err.value)
    assert "row 7" in text and "Mortgage" in text and "transfer_with_mortgage" in text


def test_immediate_minutes_and_yellow_share_are_office_settings(monkeypatch):
    monkeypatch.setenv("ONEWINDOW_DEADLINE_IMMEDIATE_MINUTES", "30")
    monkeypatch.setenv("ONEWINDOW_DEADLINE_YELLOW_SHARE", "0.5")
    table = deadlines.load_table()
    assert table.limit_for("seizure") == deadlines.Limit("minutes", 30)
    assert deadlines.yellow_share() == 0.5
    monkeypatch.setenv("ONEWINDOW_DEADLINE_YELLOW_SHARE", "1.5")
    with pytest.raises(ValueError, match="between 0 and 1"):
        deadlines.yellow_share()


def test_the_operators_are_registered_as_the_interfaces_say(registry):
    def params(name: str) -> list[tuple[str, str, bool]]:
        op = registry.get(name)
        assert op is not None and op.wants_context
        return [(p.name, p.type, p.required) for p in op.params]

    assert params("deadline.start") == [("business", "str", True)]
    assert params("deadline.pause") == [("reason", "str", True)]
    assert params("deadline.resume") == []
    assert params("deadline.stage") == [("stage", "str", True), ("event", "str", True)]
    assert isinstance(registry.get("deadline.stage").params[0], Param)


# ============================================================================ clocks and lights


def test_a_transfer_accepted_on_30_september_is_due_13_october(engine, clock):
    # the calendar itself: National Day off, Saturday 10-10 worked
    assert not any(calendar.is_workday(date(2026, 10, d)) for d in range(1, 8))
    assert calendar.is_workday(date(2026, 10, 10)) and not calendar.is_workday(date(2026, 10, 11))
    assert calendar.add_workdays(date(2026, 9, 30), 5) == date(2026, 10, 13)

    case = start(engine, clock, when=at(2026, 9, 30, 10, 0))
    data = engine.case_data(case.id)
    assert data["clock"] == {
        "business": "secondhand_transfer", "limit": {"kind": "workdays", "value": 5},
        "accepted_at": "2026-09-30T10:00:00+08:00", "due_at": "2026-10-13T23:59:59+08:00", "light": "green",
    }
    view = deadline(engine, case.id)
    assert view["remaining"] == {"kind": "workdays", "value": 5} and view["light"] == "green"


def test_lights_turn_yellow_then_red_across_the_holiday(engine, clock):
    case = start(engine, clock, when=at(2026, 9, 30, 10, 0))
    seen = {}
    for moment in [at(2026, 10, 3, 12), at(2026, 10, 6, 12), at(2026, 10, 9, 12), at(2026, 10, 10, 12),
                   at(2026, 10, 11, 12), at(2026, 10, 12, 9), at(2026, 10, 13, 23, 59), at(2026, 10, 14, 0, 0, 1)]:
        clock.set(moment)
        view = deadline(engine, case.id)
        seen[moment.strftime("%m-%d %H:%M")] = (view["light"], view["remaining"]["value"])
    assert seen == {
        "10-03 12:00": ("green", 5),  # the holiday does not count
        "10-06 12:00": ("green", 5),  # six calendar days later: still nothing used
        "10-09 12:00": ("green", 3),
        "10-10 12:00": ("green", 2),  # the make-up Saturday counts
        "10-11 12:00": ("green", 2),
        "10-12 09:00": ("yellow", 1),  # 1/5 = 0.2 <= 0.3
        "10-13 23:59": ("yellow", 0),  # the due day itself is still in time
        "10-14 00:00": ("red", -1),
    }


def test_a_larger_yellow_share_warns_earlier(engine, clock, monkeypatch):
    case = start(engine, clock, when=at(2026, 9, 30, 10, 0))
    clock.set(at(2026, 10, 10, 12))
    assert deadline(engine, case.id)["light"] == "green"
    monkeypatch.setenv("ONEWINDOW_DEADLINE_YELLOW_SHARE", "0.5")
    assert deadline(engine, case.id)["light"] == "yellow"  # 2/5 = 0.4 <= 0.5


def test_unpaid_tax_stops_the_clock_and_paying_moves_the_due_date(engine, clock):
    case = start(engine, clock, when=at(2026, 9, 30, 10, 0), unpaid_tax=True)
    data = engine.case_data(case.id)
    assert data["paused"] == {"paused": True, "reason": "unpaid_tax", "since": "2026-09-30T10:00:00+08:00"}
    assert tasks(engine, case.id) == ["pay"]

    clock.set(at(2026, 10, 12, 9))  # without the pause the case would be yellow now
    view = deadline(engine, case.id)
    assert view["paused"] and view["pause_reason"] == "unpaid_tax"
    assert view["light"] == "green" and view["remaining"]["value"] == 5  # the paused days are not counted
    assert deadline_upkeep(engine)["yellow"] == 0 and messages(engine, case.id) == []

    clock.set(at(2026, 10, 12, 15))
    complete(engine, case.id, "pay")
    paused_days = calendar.workdays_between(date(2026, 9, 30), date(2026, 10, 12))
    assert paused_days == 4  # 10-08, 10-09, 10-10 (make-up), 10-12
    due = calendar.add_workdays(date(2026, 10, 13), paused_days)
    assert due == date(2026, 10, 19)
    assert engine.case_data(case.id)["resumed"] == {"paused": False, "due_at": "2026-10-19T23:59:59+08:00"}
    view = deadline(engine, case.id)
    assert not view["paused"] and view["paused_workdays"] == 4
    assert view["remaining"]["value"] == 5 and view["light"] == "green"  # exactly what was left at the pause
    with engine.db.read() as s:
        (pause,) = s.scalars(select(CaseClockPause).where(CaseClockPause.case_id == case.id)).all()
    assert (pause.reason, pause.workdays) == ("unpaid_tax", 4)
    assert pause.started_at == at(2026, 9, 30, 10) and pause.ended_at == at(2026, 10, 12, 15)


def test_a_paused_clock_keeps_its_light_and_resumes_with_the_days_it_had(engine, clock):
    case = start(engine, clock, when=at(2026, 9, 30, 10, 0))
    clock.set(at(2026, 10, 12, 9))
    assert deadline_upkeep(engine)["yellow"] == 1
    with engine.db.write() as s:
        deadlines.pause_clock(s, case.id, "supplement", clock.now())
        deadlines.pause_clock(s, case.id, "notice", clock.now())  # already paused: keeps the first pause
    clock.set(at(2026, 10, 20, 9))  # a week past the old due date
    view = deadline(engine, case.id)
    assert view["light"] == "yellow" and view["pause_reason"] == "supplement" and view["remaining"]["value"] == 1
    assert deadline_upkeep(engine)["red"] == 0
    assert [m.name for m in messages(engine, case.id)] == ["deadline_yellow"]
    with engine.db.write() as s:
        clock_row = deadlines.resume_clock(s, case.id, at(2026, 10, 20, 10))
        deadlines.resume_clock(s, case.id, at(2026, 10, 20, 11))  # not paused: nothing moves
        shift = calendar.workdays_between(date(2026, 10, 12), date(2026, 10, 20))
        assert shift == 6 and clock_row.paused_workdays == 6
        assert clock_row.due_at == at(2026, 10, 21, 23, 59, 59)
        assert calendar.add_workdays(date(2026, 10, 13), shift) == date(2026, 10, 21)
    view = deadline(engine, case.id)
    assert view["remaining"]["value"] == 1 and view["light"] == "yellow"


def test_an_immediate_kind_gets_sixty_minutes(engine, clock):
    case = start(engine, clock, "seizure", when=at(2026, 11, 23, 10, 0))
    assert engine.case_data(case.id)["clock"]["limit"] == {"kind": "minutes", "value": 60}
    assert engine.case_data(case.id)["clock"]["due_at"] == "2026-11-23T11:00:00+08:00"
    lights = {}
    for minute in (30, 41, 42, 60, 61):
        clock.set(at(2026, 11, 23, 10) + timedelta(minutes=minute))
        view = deadline(engine, case.id)
        lights[minute] = (view["light"], view["remaining"]["value"])
    assert lights == {30: ("green", 30.0), 41: ("green", 19.0), 42: ("yellow", 18.0), 60: ("yellow", 0.0),
                      61: ("red", -1.0)}


def test_a_minute_limit_moves_by_the_minutes_paused(engine, clock):
    case = start(engine, clock, "seizure", when=at(2026, 11, 23, 10, 0))
    with engine.db.write() as s:
        deadlines.pause_clock(s, case.id, "inspection", at(2026, 11, 23, 10, 30))
        row = deadlines.resume_clock(s, case.id, at(2026, 11, 23, 10, 55))
        assert row.due_at == at(2026, 11, 23, 11, 25) and row.paused_seconds == 25 * 60
        assert row.paused_workdays == 0


def test_the_clock_starts_once_and_bad_codes_are_refused(engine, clock):
    case = start(engine, clock, when=at(2026, 11, 23, 9, 0))
    with engine.db.write() as s:
        again = deadlines.start_clock(s, case.id, "x", "mortgage", clock.now() + timedelta(days=3))
        assert again.business == "secondhand_transfer" and again.accepted_at == at(2026, 11, 23, 9)
        with pytest.raises(BusinessError) as err:
            deadlines.pause_clock(s, case.id, "lunch_break", clock.now())
        assert err.value.code == "UNKNOWN_PAUSE_REASON"
        with pytest.raises(BusinessError) as err:
            deadlines.record_stage(s, case.id, "archive", "end", clock.now())
        assert err.value.code == "UNKNOWN_STAGE"
    bad = start(engine, clock, "flat_sale")
    (incident,) = engine.incidents(case_id=bad.id)
    assert incident["bpmn_id"] == "clock_start" and "UNKNOWN_BUSINESS" in incident["message"]


# ============================================================================ the worker


def test_the_worker_sends_yellow_and_red_once_each(engine, clock):
    case = start(engine, clock, when=at(2026, 9, 30, 10, 0))
    clock.set(at(2026, 10, 9, 9))
    assert deadline_upkeep(engine)["yellow"] == 0 and messages(engine, case.id) == []

    clock.set(at(2026, 10, 12, 9))
    first, second = deadline_upkeep(engine), deadline_upkeep(engine)
    assert (first["yellow"], first["changed"], second["yellow"], second["changed"]) == (1, 1, 0, 0)
    (msg,) = messages(engine, case.id)
    assert msg.name == "deadline_yellow" and msg.idempotency_key.endswith(":yellow")
    assert msg.payload == {"light": "yellow", "due_at": "2026-10-13T23:59:59+08:00",
                           "remaining": {"kind": "workdays", "value": 1}}
    assert msg.delivered_at is not None
    urge = open_task(engine, case.id, "urge_yellow")
    assert urge["role"] == "supervisor" and tasks(engine, case.id) == ["review", "urge_yellow"]

    clock.set(at(2026, 10, 14, 9))
    assert deadline_upkeep(engine)["red"] == 1 and deadline_upkeep(engine)["red"] == 0
    assert [m.name for m in messages(engine, case.id)] == ["deadline_yellow", "deadline_red"]
    assert messages(engine, case.id)[1].payload["remaining"] == {"kind": "workdays", "value": -1}
    assert tasks(engine, case.id) == ["review", "urge_red", "urge_yellow"]
    with engine.db.read() as s:
        row = s.get(CaseClock, case.id)
        assert row.light == "red" and row.light_changed_at == at(2026, 10, 14, 9)


def test_two_workers_at_once_still_send_each_message_once(engine, db, registry, clock):
    case = start(engine, clock, when=at(2026, 9, 30, 10, 0))
    other = Engine(db, registry, clock, EngineSettings(step_time_limit=2.0))
    for moment, light in ((at(2026, 10, 12, 9), "yellow"), (at(2026, 10, 14, 9), "red")):
        clock.set(moment)
        barrier = threading.Barrier(2)
        results: list[dict] = []

        def work(e: Engine, barrier: threading.Barrier = barrier, results: list[dict] = results) -> None:
            barrier.wait()
            results.append(deadline_upkeep(e))

        threads = [threading.Thread(target=work, args=(e,)) for e in (engine, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r[light] for r in results) == [0, 1] and all(r["failed"] == 0 for r in results)
    assert [m.name for m in messages(engine, case.id)] == ["deadline_yellow", "deadline_red"]
    assert tasks(engine, case.id) == ["review", "urge_red", "urge_yellow"]


def test_a_message_no_one_catches_is_buffered_and_red_comes_alone(engine, clock):
    """escalation_probe catches only deadline_yellow; a 60-minute clock found overdue goes straight to red."""
    engine.deploy(bpmn("escalation_probe.bpmn"), "designer")
    case = engine.start_case("probe", {}, SUPERVISOR)
    with engine.db.write() as s:
        deadlines.start_clock(s, case.id, case.case_number, "release", clock.now())
    clock.advance(minutes=90)
    result = deadline_upkeep(engine)
    assert (result["yellow"], result["red"]) == (0, 1)
    (msg,) = messages(engine, case.id)
    assert msg.name == "deadline_red" and msg.delivered_at is None
    assert engine.get_case(case.id)["buffered_messages"] == 1
    assert tasks(engine, case.id) == ["review"]


def test_clocks_end_with_their_cases(engine, clock):
    cancelled = start(engine, clock, when=at(2026, 11, 23, 9, 0))
    engine.cancel_case(cancelled.id, "申请人撤回申请", SUPERVISOR)
    paused = start(engine, clock, unpaid_tax=True)
    engine.cancel_case(paused.id, "申请人撤回申请", SUPERVISOR)
    clock.advance(days=20)
    result = deadline_upkeep(engine)
    assert result["closed"] == 2 and result["checked"] == 0 and result["red"] == 0
    with engine.db.read() as s:
        for case in (cancelled, paused):
            row = s.get(CaseClock, case.id)
            assert row.ended_by == "cancelled" and row.completed_at == at(2026, 11, 23, 9)
            assert row.paused_since is None and row.light == "green"
    assert messages(engine, cancelled.id) == []


# ============================================================================ stages and the one-hour rate


def run_case(engine, clock, business: str, begin: datetime, accept: int, review: int, certify: int,
             pay: int | None = None):
    """A case through deadline_flow: minutes spent accepting, (paying,) reviewing, making the certificate."""
    case = start(engine, clock, business, when=begin, unpaid_tax=pay is not None,
                 accept_after=timedelta(minutes=accept))
    if pay is not None:
        clock.advance(minutes=pay)
        complete(engine, case.id, "pay")
    clock.advance(minutes=review)
    complete(engine, case.id, "review")
    clock.advance(minutes=certify)
    complete(engine, case.id, "certify")
    return case


def test_stage_times_and_the_one_hour_rate(engine, clock):
    a = run_case(engine, clock, "secondhand_transfer", at(2026, 11, 23, 9, 0), accept=15, review=20, certify=15)
    b = run_case(engine, clock, "mortgage", at(2026, 11, 23, 10, 0), accept=10, pay=90, review=30, certify=15)
    c = run_case(engine, clock, "secondhand_transfer", at(2026, 11, 23, 13, 0), accept=20, review=40, certify=30)
    d = run_case(engine, clock, "presale_notice", at(2026, 11, 23, 15, 0), accept=5, review=5, certify=5)
    data = engine.case_data(a.id)
    assert data["acceptance_time"]["minutes"] == 15.0 and data["review_time"]["minutes"] == 20.0
    assert data["certificate_time"] == {"stage": "certificate", "event": "end",
                                        "at": "2026-11-23T09:50:00+08:00", "minutes": 15.0}
    with engine.db.read() as s:
        rows = s.scalars(select(CaseStageTime).where(CaseStageTime.case_id == b.id).order_by(CaseStageTime.id))
        assert [(r.stage, r.minutes) for r in rows] == [
            ("acceptance", Decimal("10.00")), ("review", Decimal("30.00")), ("certificate", Decimal("15.00"))]
        # the certificate stage's end ends the clock: waiting for collection is not the office's time
        row = s.get(CaseClock, a.id)
        assert row.ended_by == "certificate" and row.completed_at == at(2026, 11, 23, 9, 50)

        rate = deadlines.one_hour_rate(s, at(2026, 11, 23), at(2026, 11, 24))
        assert (rate["cases"], rate["within"], rate["target_minutes"]) == (3, 2, 60)
        assert rate["rate"] == pytest.approx(2 / 3)
        minutes = {r["case_number"]: r["minutes"] for r in rate["detail"]}
        assert minutes == {a.case_number: 50.0, b.case_number: 55.0, c.case_number: 90.0}  # b: 90 min unpaid
        assert d.case_number not in minutes
        assert deadlines.one_hour_rate(s, at(2026, 11, 24), at(2026, 11, 25))["rate"] is None

        stats = deadlines.stage_statistics(s, at(2026, 11, 23), at(2026, 11, 24), one_hour_only=True)
        assert {k: (v["cases"], v["mean"], v["p90"]) for k, v in stats.items()} == {
            "acceptance": (3, 15.0, 20.0), "review": (3, 30.0, 40.0), "certificate": (3, 20.0, 30.0)}
        assert stats["review"]["within_budget_share"] == pytest.approx(1 / 3)
        assert deadlines.stage_statistics(s, at(2026, 11, 23), at(2026, 11, 24))["acceptance"]["cases"] == 4


def test_a_stage_does_not_count_the_time_the_clock_stood_still(engine, clock):
    case = start(engine, clock, "mortgage", when=at(2026, 11, 23, 9, 0))
    with engine.db.write() as s:
        deadlines.record_stage(s, case.id, "review", "start", at(2026, 11, 23, 9, 0))  # already open: kept
        deadlines.pause_clock(s, case.id, "supplement", at(2026, 11, 23, 9, 10))
        deadlines.resume_clock(s, case.id, at(2026, 11, 23, 9, 40))
        row = deadlines.record_stage(s, case.id, "review", "end", at(2026, 11, 23, 9, 50))
        assert row.started_at == at(2026, 11, 23, 9, 0) and row.minutes == Decimal("20.00")


def test_task_lights_follow_the_stage_budgets_of_one_hour_kinds(engine, clock):
    quick = start(engine, clock, "secondhand_transfer", when=at(2026, 11, 23, 9, 0))
    slow = start(engine, clock, "presale_notice", when=at(2026, 11, 23, 9, 0))
    review = open_task(engine, quick.id, "review")
    other = open_task(engine, slow.id, "review")
    seen = {}
    for minute in (10, 15, 21):
        clock.set(at(2026, 11, 23, 9, minute))
        with engine.db.read() as s:
            lights = deadlines.task_lights(s, [review, other], clock.now())
            assert deadlines.open_task_lights(s, quick.id, clock.now()) == {review["id"]: lights[review["id"]]}
        seen[minute] = (lights[review["id"]], lights[other["id"]])
    # 20-minute review budget: yellow past 70 %, red after it; a 5-day kind shows its case's light
    assert seen == {10: ("green", "green"), 15: ("yellow", "green"), 21: ("red", "green")}
    clock.set(at(2026, 12, 20, 9))  # the presale case is long overdue: its task shows it
    with engine.db.read() as s:
        assert deadlines.task_lights(s, [other], clock.now()) == {other["id"]: "red"}


def test_task_lights_leave_out_every_stretch_the_clock_stood_still(engine, clock):
    """A one-hour transfer's review (20-minute budget, opened 09:00) waited twice for the applicant
    (09:05–09:10, 09:12–09:22): at 09:30 it has used 15 minutes — yellow, not red — and a case
    listed beside it without pauses keeps its own light."""
    quick = start(engine, clock, "secondhand_transfer", when=at(2026, 11, 23, 9, 0))
    plain = start(engine, clock, "secondhand_transfer", when=at(2026, 11, 23, 9, 0))
    with engine.db.write() as s:
        for begin, end in (((9, 5), (9, 10)), ((9, 12), (9, 22))):
            deadlines.pause_clock(s, quick.id, "supplement", at(2026, 11, 23, *begin))
            deadlines.resume_clock(s, quick.id, at(2026, 11, 23, *end))
    review, other = open_task(engine, quick.id, "review"), open_task(engine, plain.id, "review")
    clock.set(at(2026, 11, 23, 9, 30))
    for reader in (engine.db.read, engine.db.read_engine.connect):
        with reader() as s:
            assert deadlines.task_lights(s, [review, other], clock.now()) == {review["id"]: "yellow",
                                                                              other["id"]: "red"}
