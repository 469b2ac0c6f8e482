"""The exception paths of the standard processes (issue 4), through the real diagrams in processes/.

Each test runs a case the way the office would — the application's own operators, the sandbox
departments (or, for the outage, the departments' HTTP simulators), users holding the lanes' roles —
and asserts what a user would notice: the text the applicant receives, the tasks on the list, the
deadline clock and its lights, the register, what the tax authority charged. The fixture and the
helpers are those of tests/test_processes.py; the paths covered there (a seized flat refused with
its reasons, a seizure arriving during review) are not repeated.
"""
# ruff: noqa: F811 — the tests take `office`, the fixture imported from tests/test_processes.py
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from adapters.factory import departments, sandbox_database, sandbox_departments
from adapters.sandbox_seed import SeedData, seed_departments
from adapters.simulators import FaultConfig, start_simulators
from domain import deadlines, materials, register
from domain.clock import SHANGHAI
from engine import SYSTEM, Engine, EngineSettings
from handlers.registry import default_registry
from storage.models import CaseClockPause, HumanTask, TimerJob
from tests.conftest import ADMIN, CLERK, DESK, REVIEWER, SUPERVISOR, open_task
from tests.test_outage import FAST
from tests.test_processes import (  # noqa: F401 — `office` is the fixture the tests below take
    BANK_CLERK,
    FIRST_TIME,
    ICBC,
    PROCESSES,
    SEIZED,
    TITLE_NO,
    WANG_FANG_FLAT,
    acceptance_form,
    assert_finished_in_time,
    clock_of,
    complete,
    deliver_once,
    existing_mortgage,
    office,
    open_ids,
    owners,
    person,
    seed_register,
    start_mortgage,
    start_transfer,
)
from webapp.wiring import deadline_upkeep

RESTRICTED = "CL3301-2026-001203"  # 陈建国 and 沈美华 already own two homes in Hangzhou


def at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def pay_tax(engine: Engine, case_id: int, tax: Any = None) -> None:
    """The applicant pays at the tax window; the tax authority's callback reaches the case."""
    assessment = engine.case_data(case_id)["tax"]
    paid = (tax or engine.services.tax).pay(assessment["assessment_no"], f"citizen-pay-{case_id}")
    engine.send_message(case_id, "tax_paid", {"assessment_no": assessment["assessment_no"],
                                              "voucher_no": paid.voucher_no},
                        SYSTEM, key=f"tax:{assessment['assessment_no']}")


def pauses(engine: Engine, case_id: int) -> list[tuple[str, int | None]]:
    with engine.db.read() as s:
        return [(p.reason, p.workdays) for p in s.scalars(
            select(CaseClockPause).where(CaseClockPause.case_id == case_id).order_by(CaseClockPause.id))]


def timers(engine: Engine, case_id: int) -> list[str]:
    with engine.db.read() as s:
        return sorted(j.bpmn_id for j in s.scalars(select(TimerJob).where(TimerJob.case_id == case_id)))


def task_states(engine: Engine, case_id: int, bpmn_id: str) -> list[str]:
    with engine.db.read() as s:
        return [t.state for t in s.scalars(select(HumanTask).where(
            HumanTask.case_id == case_id, HumanTask.bpmn_id == bpmn_id).order_by(HumanTask.id))]


# ------------------------------------------------------------------------------ one-time notification


def test_missing_materials_are_told_all_at_once_in_one_notification(office) -> None:
    engine, data = office
    case, _contract = start_transfer(engine, data, FIRST_TIME)
    facts = {"agent": True, "tax_relief": True}  # an agent applies, and the buyer claims a tax relief
    complete(engine, case.id, "accept", CLERK, acceptance_form("secondhand_transfer", provided=[], facts=facts))

    acceptance = engine.case_data(case.id)["acceptance"]
    assert acceptance["status"] == "not_accepted"
    checklist = materials.checklist("secondhand_transfer")
    asked = [i for i in checklist.required(checklist.facts(facts)) if not i.shared]
    assert {m["code"] for m in acceptance["missing"]} == {i.code for i in asked} == {
        "application_form", "power_of_attorney", "title_certificate", "tax_relief_proof"}
    assert engine.get_case(case.id)["status"] == "completed" and open_ids(engine, case.id) == []
    assert deliver_once(engine) == 1  # one notification, not one per item
    [sms] = engine.services.notify.sent(case.case_number)
    assert sms.text == acceptance["notification"] and "不予受理" in sms.text and "共4项" in sms.text
    for item in asked:  # every missing item named, with why it is needed
        assert item.name in sms.text and item.why in sms.text
    missing_part = sms.text.split("由本机构通过部门共享获取")[0]
    for item in checklist.required(checklist.facts(facts)):
        if item.shared:  # what we obtain ourselves is never asked of the applicant
            assert item.name not in missing_part.split("尚缺的申请材料")[1]
    with engine.db.read() as s:  # not accepted: no clock, no tax
        assert deadlines.case_deadline(s, case.id, engine.clock.now()) is None
    assert engine.services.tax.charges_for(case.case_number).assessments == 0


# ------------------------------------------------------------------------------ 容缺受理


def test_deferred_item_promised_then_handed_in_before_the_certificate_is_handed_over(office) -> None:
    engine, data = office
    case, contract = start_transfer(engine, data, FIRST_TIME)
    promised = date(2026, 11, 25)  # accepted on Monday 2026-11-23, the relief proof promised for Wednesday
    complete(engine, case.id, "accept", CLERK, acceptance_form(
        "secondhand_transfer", facts={"tax_relief": True},
        deferred=[{"code": "tax_relief_proof", "promised_by": promised.isoformat()}]))
    acceptance = engine.case_data(case.id)["acceptance"]
    assert acceptance["status"] == "accepted_with_deficiencies"
    assert "请于2026年11月25日前补交" in acceptance["notification"]
    # the case goes on; the window tracks the promised item beside it
    assert sorted(open_ids(engine, case.id)) == ["review", "supplement_materials"]
    assert open_task(engine, case.id, "supplement_materials")["role"] == "window_clerk"

    complete(engine, case.id, "review", REVIEWER, {"approved": True, "opinion": "材料齐全（优惠证明容缺），同意登记"})
    pay_tax(engine, case.id)
    done = engine.case_data(case.id)
    assert TITLE_NO.match(done["certificate"]["number"]) and owners(engine, contract.unit_number) == ["周子涵"]
    # registered and the certificate made, but not handed over: the proof is still owed
    assert open_ids(engine, case.id) == ["supplement_materials"]
    assert engine.get_case(case.id)["status"] == "active"
    assert deliver_once(engine) == 0  # not told to collect yet
    # the office never waited for the applicant before registration: only the tax stopped the clock
    clock = clock_of(engine, case.id)
    assert clock["ended_by"] == "certificate" and clock["within_limit"] is True
    assert [reason for reason, _days in pauses(engine, case.id)] == ["unpaid_tax"]

    engine.clock.set(at(promised, 8, 59))
    assert engine.run_due_jobs().fired == 0
    engine.clock.set(at(promised, 9, 1))  # the promised day: the applicant is reminded
    assert engine.run_due_jobs().fired == 1
    assert deliver_once(engine) == 1
    [reminder] = engine.services.notify.sent(case.case_number)
    assert "税费优惠申报证明材料（2026-11-25前）" in reminder.text and "补交" in reminder.text
    engine.clock.set(at(promised, 17, 30))
    assert engine.run_due_jobs().fired == 0 and deliver_once(engine) == 0  # reminded once

    # the applicant comes in the afternoon; the clerk first types the wrong code, then the right one
    complete(engine, case.id, "supplement_materials", CLERK, {"received": ["title_certificate"]})
    assert open_ids(engine, case.id) == ["supplement_materials"]
    assert "title_certificate 不在容缺受理的承诺补交材料中" in engine.case_data(case.id)["supplement_error"]["message"]
    complete(engine, case.id, "supplement_materials", CLERK, {"received": ["tax_relief_proof"]})
    supplement = engine.case_data(case.id)["supplement"]
    assert supplement["all_received"] is True and supplement["status"] == "accepted"
    assert supplement["received"] == [{"code": "tax_relief_proof", "name": "税费优惠申报证明材料",
                                       "promised_by": "2026-11-25", "received_on": "2026-11-25", "late": False}]
    assert open_ids(engine, case.id) == ["hand_over"] and timers(engine, case.id) == []  # no overdue escalation
    assert deliver_once(engine) == 3  # now: ready for collection, results to housing and tax
    ready = engine.services.notify.sent(case.case_number)[-1].text
    assert "已办结" in ready and "西湖区" in ready and "领取" in ready
    complete(engine, case.id, "hand_over", DESK, {"handed_over_to": "周子涵"})
    assert_finished_in_time(engine, case.id)
    assert "supplement_overdue" not in [t["bpmn_id"] for t in engine.case_tasks(case.id, open_only=False)]


def test_deferred_item_overdue_is_escalated_to_the_supervisor(office) -> None:
    """抵押权注销 with the paper 不动产登记证明 accepted with deficiencies (镇海, seed 001): the register
    cancels the mortgage at once; the file is closed only when the paper certificate is handed in."""
    engine, data = office
    mortgage_id = existing_mortgage(engine)
    case = engine.start_case("mortgage_cancellation", {
        "unit_number": WANG_FANG_FLAT, "mortgagee": {"name": "中国建设银行股份有限公司杭州城西支行",
                                                     "id_type": "统一社会信用代码", "id_number": "91330106MA2CCB0001"},
        "mortgage_certificate_no": "", "applicant_phone": person(data, "王芳")["phone"],
    }, BANK_CLERK)
    form = acceptance_form("mortgage_cancellation")
    form["provided"].remove("mortgage_certificate")
    complete(engine, case.id, "accept", BANK_CLERK, {
        **form, "deferred": [{"code": "mortgage_certificate", "promised_by": "2026-11-24"}]})
    complete(engine, case.id, "review", REVIEWER, {"approved": True, "opinion": "贷款已结清，同意注销"})
    with engine.db.read() as s:
        assert register.get_right(s, mortgage_id).ended_by_case == case.case_number
    assert clock_of(engine, case.id)["within_limit"] is True  # 1 working day: kept, the paper is not waited for
    assert open_ids(engine, case.id) == ["supplement_materials"] and engine.get_case(case.id)["status"] == "active"
    assert deliver_once(engine) == 3  # the cancellation is told and shared at once

    engine.clock.set(at(date(2026, 11, 24), 9, 1))
    assert engine.run_due_jobs().fired == 1 and deliver_once(engine) == 1  # the reminder
    assert "不动产登记证明（抵押权）（2026-11-24前）" in engine.services.notify.sent(case.case_number)[-1].text
    engine.clock.set(at(date(2026, 11, 25), 9, 1))  # the next working day, still nothing
    assert engine.run_due_jobs().fired == 1
    overdue = open_task(engine, case.id, "supplement_overdue")
    assert overdue["role"] == "supervisor" and overdue["name"] == "容缺材料逾期督办"
    complete(engine, case.id, "supplement_overdue", SUPERVISOR, {"overdue_opinion": "已电话督促，明日补交"})
    assert deliver_once(engine) == 0  # the applicant was reminded once only

    engine.clock.set(at(date(2026, 11, 26), 10))
    complete(engine, case.id, "supplement_materials", BANK_CLERK, {"received": ["mortgage_certificate"]})
    assert engine.get_case(case.id)["status"] == "completed"
    [received] = engine.case_data(case.id)["supplement"]["received"]
    assert received["received_on"] == "2026-11-26" and received["late"] is True


def test_a_refusal_ends_the_tracking_of_deferred_items(office) -> None:
    engine, data = office
    case, _contract = start_transfer(engine, data, SEIZED)
    complete(engine, case.id, "accept", CLERK, acceptance_form(
        "secondhand_transfer", facts={"tax_relief": True},
        deferred=[{"code": "tax_relief_proof", "promised_by": "2026-11-30"}]))
    assert sorted(open_ids(engine, case.id)) == ["review", "supplement_materials"]
    complete(engine, case.id, "review", REVIEWER, {"approved": False, "opinion": "该房屋已被法院查封"})
    complete(engine, case.id, "refuse", REVIEWER, {"refusal_opinion": "依法不予登记"})
    assert engine.get_case(case.id)["status"] == "completed"  # not left waiting for a proof no one needs
    assert task_states(engine, case.id, "supplement_materials") == ["cancelled"]
    assert timers(engine, case.id) == []
    assert deliver_once(engine) == 1 and "不予登记" in engine.services.notify.sent(case.case_number)[0].text


def _deferrable(monkeypatch: pytest.MonkeyPatch, business: str, code: str) -> None:
    """An office whose checklist lets this item be handed in later. The published lists of pre-sale
    notices and mortgages have no non-essential item from the applicant (the pre-sale's maintenance
    fund voucher is shared, never asked): their diagrams' 容缺 branch is there for offices that do."""
    checklists = dict(materials._all())
    checklists[business] = replace(checklists[business], items=tuple(
        replace(i, essential=False) if i.code == code else i for i in checklists[business].items))
    monkeypatch.setattr(materials, "_cache", checklists)


@pytest.mark.parametrize("process", ["presale_notice", "transfer_with_mortgage", "mortgage"])
def test_every_registration_waits_for_deferred_items_before_the_hand_over(office, process, monkeypatch) -> None:
    engine, data = office
    deferred, facts = {"presale_notice": ("purchase_eligibility_proof", {"purchase_restricted": True}),
                       "transfer_with_mortgage": ("tax_relief_proof", {"tax_relief": True}),
                       "mortgage": ("loan_contract", {})}[process]
    if process == "presale_notice":
        _deferrable(monkeypatch, process, deferred)
        contract = next(pc.contract for pc in data.presale_contracts if not pc.filed)
        case = engine.start_case("presale_notice", {"contract": contract.model_dump(mode="json")}, CLERK)
    elif process == "mortgage":
        _deferrable(monkeypatch, process, deferred)
        case = start_mortgage(engine, data, CLERK)
    else:
        case, _contract = start_transfer(engine, data, FIRST_TIME, process, mortgagee=ICBC, amount="2000000.00",
                                         term_start="2026-11-23", term_end="2056-11-22", mode="ordinary")
    form = acceptance_form(process, facts=facts)
    form["provided"] = [c for c in form["provided"] if c != deferred]
    complete(engine, case.id, "accept", CLERK, {**form, "deferred": [{"code": deferred, "promised_by": "2026-11-27"}]})
    assert engine.case_data(case.id)["acceptance"]["status"] == "accepted_with_deficiencies"
    early = process == "transfer_with_mortgage"  # handed in while the case is still in review
    if early:
        complete(engine, case.id, "supplement_materials", CLERK, {"received": [deferred]})
        assert open_ids(engine, case.id) == ["review"]
    complete(engine, case.id, "review", REVIEWER, {"approved": True, "opinion": "同意"})
    if process == "transfer_with_mortgage":
        pay_tax(engine, case.id)
    assert clock_of(engine, case.id)["ended_by"] == "certificate"
    if not early:  # registered; the certificate waits for the item
        assert open_ids(engine, case.id) == ["supplement_materials"], engine.incidents()
        complete(engine, case.id, "supplement_materials", CLERK, {"received": [deferred]})
    assert open_ids(engine, case.id) == ["hand_over"], engine.incidents()
    complete(engine, case.id, "hand_over", DESK, {"handed_over_to": "申请人"})
    assert_finished_in_time(engine, case.id)


# ------------------------------------------------------------------------------ unpaid tax stops the clock


def test_unpaid_tax_stops_the_clock_and_payment_resumes_it_with_the_days_left(office) -> None:
    engine, data = office
    case, _contract = start_transfer(engine, data, FIRST_TIME)
    complete(engine, case.id, "accept", CLERK, acceptance_form("secondhand_transfer"))  # Monday 2026-11-23
    accepted = clock_of(engine, case.id)
    assert accepted["paused"] is True and accepted["pause_reason"] == "unpaid_tax"
    assert accepted["due_at"].startswith("2026-11-30") and accepted["remaining"] == {"kind": "workdays", "value": 5}

    engine.clock.set(at(date(2026, 12, 3)))  # eight working days unpaid: past the promised five
    engine.run_due_jobs()  # the periodic payment check finds it still unpaid
    deadline_upkeep(engine)
    waiting = clock_of(engine, case.id)
    assert waiting["paused"] is True and waiting["light"] == "green" and waiting["published_light"] == "green"
    assert waiting["due_at"] == accepted["due_at"] and waiting["remaining"] == accepted["remaining"]
    assert open_ids(engine, case.id) == ["review"]  # no supervisor was asked to urge

    pay_tax(engine, case.id)
    resumed = clock_of(engine, case.id)
    assert resumed["paused"] is False and resumed["paused_workdays"] == 8
    assert resumed["due_at"].startswith("2026-12-10") and resumed["remaining"] == {"kind": "workdays", "value": 5}
    engine.clock.set(at(date(2026, 12, 4)))  # and it runs again
    deadline_upkeep(engine)
    assert clock_of(engine, case.id)["remaining"] == {"kind": "workdays", "value": 4}
    assert open_ids(engine, case.id) == ["review"]

    complete(engine, case.id, "review", REVIEWER, {"approved": True, "opinion": "同意登记"})
    complete(engine, case.id, "hand_over", DESK, {"handed_over_to": "周子涵"})
    assert_finished_in_time(engine, case.id)
    assert pauses(engine, case.id) == [("unpaid_tax", 8)]


# ------------------------------------------------------------------------------ purchase restriction


def test_a_purchase_restriction_refuses_with_its_reason_and_no_tax_is_assessed(office) -> None:
    engine, data = office
    case, contract = start_transfer(engine, data, RESTRICTED)
    complete(engine, case.id, "accept", CLERK, acceptance_form("secondhand_transfer"))
    found = engine.case_data(case.id)
    restriction = found["restriction"]
    assert restriction["allowed"] is False and "限购" in restriction["reason"]
    assert found["check_reasons"] == ["限购核查：" + restriction["reason"]]
    assert engine.services.tax.charges_for(case.case_number).assessments == 0
    assert clock_of(engine, case.id)["paused"] is False  # nothing to pay, nothing stops the clock

    complete(engine, case.id, "review", REVIEWER, {"approved": True, "opinion": "材料齐全"})  # not the reviewer's call
    refuse = open_task(engine, case.id, "refuse")
    assert refuse["role"] == "reviewer" and open_ids(engine, case.id) == ["refuse"]
    assert engine.case_data(case.id)["refusal_reasons"] == ["限购核查：" + restriction["reason"]]
    complete(engine, case.id, "refuse", REVIEWER, {"refusal_opinion": "购房家庭不符合限购政策，依法不予登记"})
    assert engine.get_case(case.id)["status"] == "completed"
    assert owners(engine, contract.unit_number) == [s.name for s in contract.sellers]
    assert engine.services.tax.charges_for(case.case_number).assessments == 0
    assert deliver_once(engine) == 1
    [sms] = engine.services.notify.sent(case.case_number)
    assert "不予登记" in sms.text and restriction["reason"] in sms.text


# ------------------------------------------------------------------------------ mortgage cancellation


def _cancellation(engine: Engine, data: SeedData, certificate_no: str) -> Any:
    case = engine.start_case("mortgage_cancellation", {
        "unit_number": WANG_FANG_FLAT, "mortgagee": {"name": "中国建设银行股份有限公司杭州城西支行",
                                                     "id_type": "统一社会信用代码", "id_number": "91330106MA2CCB0001"},
        "mortgage_certificate_no": certificate_no, "applicant_phone": person(data, "王芳")["phone"],
    }, BANK_CLERK)
    complete(engine, case.id, "accept", BANK_CLERK, acceptance_form("mortgage_cancellation"))
    complete(engine, case.id, "review", REVIEWER, {"approved": True, "opinion": "贷款已结清，同意注销"})
    return case


def test_a_cancellation_the_register_cannot_match_to_one_mortgage_is_refused_with_what_it_holds(office) -> None:
    """The bank holds two mortgages on the flat (a loan and a later top-up): an application that does not
    say which is refused with both listed; naming the registration certificate cancels exactly that one."""
    engine, data = office
    first, second = existing_mortgage(engine), existing_mortgage(engine)
    with engine.db.write() as s:
        numbers = [register.issue_certificate(s, register.Office.from_env(), "registration", right, "存量数据导入",
                                              engine.clock.now()).number for right in (first, second)]
    vague = _cancellation(engine, data, "")
    assert open_ids(engine, vague.id) == ["refuse"], engine.incidents()
    [reason] = engine.case_data(vague.id)["refusal_reasons"]
    assert "有2项" in reason and all(n in reason for n in numbers) and "请写明" in reason
    complete(engine, vague.id, "refuse", REVIEWER, {"refusal_opinion": "申请注销的抵押权不明确，不予登记"})
    assert engine.get_case(vague.id)["status"] == "completed"

    wrong = _cancellation(engine, data, "浙(2016)杭州市不动产证明第0012345号")  # not in the register
    assert "没有" in engine.case_data(wrong.id)["refusal_reasons"][0]
    complete(engine, wrong.id, "refuse", REVIEWER, {"refusal_opinion": "登记证明号与登记簿不符，不予登记"})

    exact = _cancellation(engine, data, numbers[1])
    assert engine.get_case(exact.id)["status"] == "completed", engine.incidents()
    with engine.db.read() as s:
        assert register.get_right(s, first).current
        assert register.get_right(s, second).ended_by_case == exact.case_number
    assert [e["kind"] for e in engine.incidents(status=None)] == []  # refusals are answers, never incidents


# ------------------------------------------------------------------------------ a department outage


@pytest.fixture
def office_over_http(db, clock) -> Iterator[tuple[Engine, Any, SeedData]]:
    """The office with the departments as HTTP services (their own database), as in production."""
    with start_simulators(sandbox_database(db), clock, faults=FaultConfig(timeout_s=1.0, seed=11)) as sims:
        env = {"ONEWINDOW_ADAPTERS": "http", **FAST, **{f"ONEWINDOW_{d.upper()}_URL": url
                                                          for d, url in sims.urls.items()}}
        deps = departments(db, clock, env=env)
        engine = Engine(db, default_registry(), clock, EngineSettings(step_time_limit=10.0), services=deps)
        data = seed_departments(sims.service("housing"), sims.service("court"))
        seed_register(engine, data)
        engine.deploy_paths([PROCESSES], "designer")
        yield engine, sims, data
        for client in (deps.tax, deps.housing, deps.court, deps.notify):
            client.close()


def test_a_tax_outage_becomes_an_incident_and_the_admins_retry_completes_the_case_taxed_once(
        office_over_http, clock) -> None:
    engine, sims, data = office_over_http
    tax = sims.service("tax")
    sims.faults("tax").update({"error_rate": 1.0, "reset_stats": True})
    case, contract = start_transfer(engine, data, FIRST_TIME)
    complete(engine, case.id, "accept", CLERK, acceptance_form("secondhand_transfer"))
    assert open_ids(engine, case.id) == ["review"] and engine.incidents() == []  # the rest of the case goes on
    complete(engine, case.id, "review", REVIEWER, {"approved": True, "opinion": "同意登记"})
    for _ in range(3):  # the engine's three retries, with growing back-off
        clock.advance(hours=1)
        engine.run_due_jobs()
    [incident] = engine.incidents()
    assert incident["case_id"] == case.id and incident["bpmn_id"] == "assess" and incident["kind"] == "service_fault"
    assert "4 time(s)" in incident["message"] and engine.get_case(case.id)["open_incidents"] == 1
    assert tax.charges_for(case.case_number).assessments == 0

    # the tax system is back, but its first answer is lost on the way: the client asks again, same key
    sims.faults("tax").update({"error_rate": 0.0, "script": ["drop", "ok"], "reset_stats": True})
    assert engine.retry_incident(incident["id"], ADMIN, "税务系统已恢复")["status"] == "resolved"
    assert engine.get_case(case.id)["open_incidents"] == 0
    assert clock_of(engine, case.id)["pause_reason"] == "unpaid_tax"
    pay_tax(engine, case.id, tax)
    complete(engine, case.id, "hand_over", DESK, {"handed_over_to": "周子涵"})
    assert_finished_in_time(engine, case.id)
    assert owners(engine, contract.unit_number) == ["周子涵"]
    charges = tax.charges_for(case.case_number)
    assert (charges.assessments, charges.live, charges.payments) == (1, 1, 1)
    assert deliver_once(engine) == 3
    assert len(sims.service("notify").sent(case.case_number)) == 1


# ------------------------------------------------------------------------------ lights across a holiday


@pytest.fixture
def autumn_office(db, clock) -> tuple[Engine, SeedData]:
    """The office on 2026-09-30, the last working day before the National Day holiday (10-01 … 10-07,
    with Saturday 10-10 a make-up working day)."""
    clock.set(datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI))
    services = sandbox_departments(sandbox_database(db), clock)
    engine = Engine(db, default_registry(), clock, EngineSettings(step_time_limit=5.0), services=services)
    data = seed_departments(services.housing, services.court)
    seed_register(engine, data)
    engine.deploy_paths([PROCESSES], "designer")
    return engine, data


def test_deadline_lights_turn_yellow_and_red_on_the_right_days_across_national_day(autumn_office) -> None:
    engine, data = autumn_office
    case = start_mortgage(engine, data, CLERK)
    complete(engine, case.id, "accept", CLERK, acceptance_form("mortgage"))  # Wednesday 2026-09-30
    # five working days: 10-08, 10-09, 10-10 (make-up Saturday), 10-12, 10-13
    assert clock_of(engine, case.id)["due_at"] == "2026-10-13T23:59:59+08:00"
    seen: dict[str, tuple[str, int, list[str]]] = {}
    day = date(2026, 10, 1)
    while day <= date(2026, 10, 15):
        engine.clock.set(at(day))
        deadline_upkeep(engine)
        clock = clock_of(engine, case.id)
        seen[day.isoformat()] = (clock["light"], clock["remaining"]["value"],
                                 sorted(t for t in open_ids(engine, case.id) if t.startswith("urge_")))
        day += timedelta(days=1)
    assert seen["2026-10-07"] == ("green", 5, [])  # the holiday does not count
    assert seen["2026-10-10"] == ("green", 2, [])  # the make-up Saturday does
    assert seen["2026-10-11"] == ("green", 2, [])
    assert seen["2026-10-12"] == ("yellow", 1, ["urge_yellow"])  # one day of five left: yellow, urged
    assert seen["2026-10-13"] == ("yellow", 0, ["urge_yellow"])  # the due day itself is still in time
    assert seen["2026-10-14"] == ("red", -1, ["urge_red", "urge_yellow"])  # overdue: red, urged again
    assert seen["2026-10-15"][0] == "red" and seen["2026-10-15"][2] == ["urge_red", "urge_yellow"]  # once each
    assert [d for d, (light, _left, _tasks) in seen.items() if light == "yellow"] == ["2026-10-12", "2026-10-13"]
    for urge in ("urge_yellow", "urge_red"):
        assert open_task(engine, case.id, urge)["role"] == "supervisor"
    complete(engine, case.id, "urge_red", SUPERVISOR, {"urge_opinion": "超期，今日办结"})
    complete(engine, case.id, "review", REVIEWER, {"approved": True, "opinion": "同意登记"})
    complete(engine, case.id, "hand_over", DESK, {"handed_over_to": "中国工商银行西湖支行 许敏"})
    assert engine.get_case(case.id)["status"] == "active"  # the yellow urge is still on the supervisor's list
    complete(engine, case.id, "urge_yellow", SUPERVISOR, {"urge_opinion": "已督办"})
    assert engine.get_case(case.id)["status"] == "completed"
    assert clock_of(engine, case.id)["within_limit"] is False
