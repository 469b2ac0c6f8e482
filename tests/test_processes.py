"""The standard processes (processes/*.bpmn) end to end, as the office would run them.

Everything in processes/ is deployed together, the way `onewindow deploy processes` does it, with
the application's own operators (no test stand-ins), against the sandbox departments and a
register seeded with the demo's Hangzhou data. Every human task is completed by a user holding its
role; what is asserted is what a user would see: the register, the certificate numbers, the
messages the worker delivered (once), the deadline clock and the case's status.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.factory import sandbox_database, sandbox_departments
from adapters.sandbox_seed import SeedData, seed_departments, uscc_check_char
from domain import deadlines, register
from engine import SYSTEM, Actor, Engine, EngineSettings
from engine.worker import Worker
from handlers.outbox import senders
from handlers.registry import default_registry
from storage.models import CaseStageTime
from tests.conftest import CLERK, DESK, REVIEWER, SUPERVISOR, open_task
from webapp.simulate import acceptance_form

PROCESSES = Path(__file__).resolve().parent.parent / "processes"
TITLE_NO = re.compile(r"^浙\(2026\)杭州市不动产权第\d{7}号$")
REGISTRATION_NO = re.compile(r"^浙\(2026\)杭州市不动产证明第\d{7}号$")
BANK_CLERK = Actor.of("icbc_xu", "window_clerk")  # 政银合作: the bank's counter accepts mortgage applications

WANG_FANG_FLAT = "330106004002GB00107F00030036"  # 王芳 alone; sold to 周子涵 by contract CL3301-2026-001201
FIRST_TIME = "CL3301-2026-001201"
SEIZED = "CL3301-2026-001205"  # 李娜's flat, seized by 杭州市上城区人民法院


def _bank() -> dict[str, Any]:
    first17 = "91330106MA2B7K1X" + "4"
    return {"name": "中国工商银行股份有限公司杭州西湖支行", "id_type": "统一社会信用代码",
            "id_number": first17 + uscc_check_char(first17)}


ICBC = _bank()


@pytest.fixture
def office(db, clock) -> tuple[Engine, SeedData]:
    departments = sandbox_departments(sandbox_database(db), clock)
    engine = Engine(db, default_registry(), clock, EngineSettings(step_time_limit=5.0), services=departments)
    data = seed_departments(departments.housing, departments.court)
    seed_register(engine, data)
    engine.deploy_paths([PROCESSES], "designer")
    return engine, data


def seed_register(engine: Engine, data: SeedData) -> None:
    from webapp.demo import seed_register as seed

    seed(engine, data)


def person(data: SeedData, name: str) -> dict[str, Any]:
    return data.people[name].model_dump(mode="json")



def complete(engine: Engine, case_id: int, bpmn_id: str, actor: Actor, data: dict[str, Any] | None = None) -> None:
    task = open_task(engine, case_id, bpmn_id)
    assert actor.has(task["role"]), (bpmn_id, task["role"])
    engine.complete_task(task["id"], data or {}, actor)


def open_ids(engine: Engine, case_id: int) -> list[str]:
    return [t["bpmn_id"] for t in engine.case_tasks(case_id)]


def deliver_once(engine: Engine) -> int:
    worker = Worker(engine, senders(engine.services))
    fired = worker.deliver_outbox().fired
    assert worker.deliver_outbox().fired == 0
    return fired


def clock_of(engine: Engine, case_id: int) -> dict[str, Any]:
    with engine.db.read() as s:
        found = deadlines.case_deadline(s, case_id, engine.clock.now())
    assert found is not None
    return found


def stages_of(engine: Engine, case_id: int) -> dict[str, Any]:
    with engine.db.read() as s:
        rows = s.scalars(select(CaseStageTime).where(CaseStageTime.case_id == case_id)).all()
        return {r.stage: r.minutes for r in rows if r.ended_at is not None}


def assert_finished_in_time(engine: Engine, case_id: int) -> None:
    assert engine.get_case(case_id)["status"] == "completed", (engine.incidents(), open_ids(engine, case_id))
    clock = clock_of(engine, case_id)
    assert clock["ended_by"] == "certificate" and clock["within_limit"] is True
    assert set(stages_of(engine, case_id)) == {"acceptance", "review", "certificate"}


# ------------------------------------------------------------------------------ deployment


def test_everything_in_processes_deploys_together(db, clock) -> None:
    engine = Engine(db, default_registry(), clock)
    deployed = {r.process_id for r in engine.deploy_paths([PROCESSES], "designer")}
    assert {"presale_notice", "secondhand_transfer", "mortgage", "transfer_with_mortgage", "seizure", "release",
            "mortgage_cancellation", "issue_and_archive"} <= deployed


def test_the_deploy_command_takes_the_folder(db, monkeypatch) -> None:
    from click.testing import CliRunner

    from webapp.cli import main

    monkeypatch.setenv("ONEWINDOW_DATABASE_URL", db.url.replace("postgresql+psycopg://", "postgresql://"))
    result = CliRunner().invoke(main, ["deploy", str(PROCESSES)])
    assert result.exit_code == 0, result.output
    assert "secondhand_transfer v1 (new version" in result.output


BPMN_NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
           "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
           "dc": "http://www.omg.org/spec/DD/20100524/DC", "di": "http://www.omg.org/spec/DD/20100524/DI"}
NOT_DRAWN = {"documentation", "extensionElements", "laneSet", "lane", "flowNodeRef", "conditionExpression", "script",
             "messageEventDefinition", "timerEventDefinition", "errorEventDefinition", "signalEventDefinition",
             "timeDuration", "incoming", "outgoing"}


@pytest.mark.parametrize("path", sorted(p.name for p in PROCESSES.glob("*.bpmn")))
def test_every_diagram_is_fully_laid_out_without_overlaps(path: str) -> None:
    """What bpmn.io needs to open a diagram cleanly: a shape for every lane and flow node, an edge with
    waypoints for every flow, no two shapes on top of each other, every node inside its lane."""
    from lxml import etree

    root = etree.parse(str(PROCESSES / path)).getroot()
    shapes = {s.get("bpmnElement"): s.find("dc:Bounds", BPMN_NS)
              for s in root.iterfind(".//bpmndi:BPMNShape", BPMN_NS)}
    edges = {e.get("bpmnElement"): e.findall("di:waypoint", BPMN_NS)
             for e in root.iterfind(".//bpmndi:BPMNEdge", BPMN_NS)}
    box = {k: tuple(float(b.get(a)) for a in ("x", "y", "width", "height")) for k, b in shapes.items()}
    for proc in root.iterfind("bpmn:process", BPMN_NS):
        for el in proc.iter():
            if not isinstance(el.tag, str) or not el.tag.startswith(f"{{{BPMN_NS['bpmn']}}}"):
                continue  # comments, SpiffWorkflow extensions
            tag = etree.QName(el).localname
            if tag in NOT_DRAWN or el is proc or not el.get("id"):
                continue
            if tag == "sequenceFlow":
                assert len(edges.get(el.get("id"), [])) >= 2, f"{path}: flow {el.get('id')} has no edge"
            else:
                assert el.get("id") in shapes, f"{path}: {tag} {el.get('id')} has no shape"
        for lane in proc.iterfind(".//bpmn:lane", BPMN_NS):
            lx, ly, lw, lh = box[lane.get("id")]
            for ref in lane.iterfind("bpmn:flowNodeRef", BPMN_NS):
                x, y, w, h = box[ref.text]
                assert lx <= x and x + w <= lx + lw and ly <= y and y + h <= ly + lh, f"{path}: {ref.text} outside lane"
        flat = [el.get("id") for el in proc.iter() if isinstance(el.tag, str) and el.get("id") in box
                and el.tag.startswith(f"{{{BPMN_NS['bpmn']}}}")
                and etree.QName(el).localname not in ("lane", "subProcess", "boundaryEvent")]
        for i, a in enumerate(flat):
            ax, ay, aw, ah = box[a]
            for b in flat[i + 1:]:
                bx, by, bw, bh = box[b]
                overlap = ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah
                assert not overlap, f"{path}: {a} overlaps {b}"


# ------------------------------------------------------------------------------ mortgage


def start_mortgage(engine: Engine, data: SeedData, actor: Actor = BANK_CLERK) -> Any:
    owner = person(data, "王芳")
    return engine.start_case("mortgage", {
        "unit_number": WANG_FANG_FLAT, "mortgagors": [owner], "mortgagee": ICBC, "amount": "1500000.00",
        "term_start": "2026-11-23", "term_end": "2046-11-22", "mode": "ordinary",
        "applicant_phone": owner["phone"], "channel": "bank",
    }, actor)


def test_mortgage_at_the_bank_counter(office) -> None:
    engine, data = office
    case = start_mortgage(engine, data)
    complete(engine, case.id, "accept", BANK_CLERK, acceptance_form("mortgage", pickup_office="西湖区"))
    assert engine.case_data(case.id)["acceptance"]["status"] == "accepted"
    complete(engine, case.id, "review", REVIEWER, {"approved": True, "opinion": "抵押合同与主债权合同一致，同意登记"})
    done = engine.case_data(case.id)
    number = done["certificate"]["number"]
    assert REGISTRATION_NO.match(number)
    complete(engine, case.id, "hand_over", DESK, {"handed_over_to": "中国工商银行西湖支行 许敏"})
    assert_finished_in_time(engine, case.id)
    with engine.db.read() as s:
        mortgages = register.current_rights(s, WANG_FANG_FLAT, ["mortgage"])
    assert [m.holder_names for m in mortgages] == [ICBC["name"]]
    assert mortgages[0].details["amount"] == "1500000.00"
    assert deliver_once(engine) == 3  # the applicant's SMS, the result to housing and to tax
    sent = engine.services.notify.sent(case.case_number)
    assert len(sent) == 1 and number in sent[0].text and "西湖区" in sent[0].text
    assert len(engine.services.housing.received(case.case_number)) == 1
    assert len(engine.services.tax.results_for(case.case_number)) == 1


def test_mortgage_light_turns_yellow_and_the_supervisor_is_asked_to_urge(office) -> None:
    from webapp.wiring import deadline_upkeep

    engine, data = office
    case = start_mortgage(engine, data, CLERK)
    complete(engine, case.id, "accept", CLERK, acceptance_form("mortgage"))
    engine.clock.advance(timedelta(days=7))  # 2026-11-30: past most of the 5 working days
    deadline_upkeep(engine)
    urge = open_task(engine, case.id, "urge_yellow")
    assert urge["role"] == "supervisor" and "review" in open_ids(engine, case.id)
    complete(engine, case.id, "urge_yellow", SUPERVISOR, {"urge_opinion": "请今日办结"})
    assert open_ids(engine, case.id) == ["review"]


# ------------------------------------------------------------------------------ second-hand transfer


def start_transfer(engine: Engine, data: SeedData, contract_no: str, process: str = "secondhand_transfer",
                   **extra: Any) -> tuple[Any, Any]:
    contract = engine.services.housing.get_sale_contract(contract_no)
    unit = data.unit(contract.unit_number)
    case = engine.start_case(process, {
        "contract_no": contract_no, "seller_acquired_on": unit.acquired_on.isoformat(),
        "seller_original_price": str(unit.purchase_price), "seller_only_home": False, "consents": [], **extra,
    }, CLERK)
    return case, contract


def owners(engine: Engine, unit_number: str) -> list[str]:
    with engine.db.read() as s:
        return [h.name for h in register.current_ownership(s, unit_number).holders]


def existing_mortgage(engine: Engine) -> int:
    """王芳 mortgaged her flat to a bank years ago; the mortgage travels with the flat."""
    with engine.db.write() as s:
        right = register.register_mortgage(
            s, WANG_FANG_FLAT, mortgagee={"name": "中国建设银行股份有限公司杭州城西支行", "id_type": "统一社会信用代码",
                                          "id_number": "91330106MA2CCB0001"},
            amount="800000", term_start="2016-09-01", term_end="2036-08-31", case_number="存量数据导入",
            now=engine.clock.now())
    return right.id


def test_secondhand_transfer_with_tax_paid_by_message_and_certificate_mailed(office) -> None:
    engine, data = office
    mortgage_id = existing_mortgage(engine)
    case, contract = start_transfer(engine, data, FIRST_TIME)
    complete(engine, case.id, "accept", CLERK, acceptance_form(
        "secondhand_transfer", delivery_method="mail", delivery_address="杭州市西湖区文三路398号3幢2单元1102室"))
    # housing, court and the register answered; tax assessed and waits for payment, the clock stopped
    assert open_ids(engine, case.id) == ["review"]
    found = engine.case_data(case.id)
    assert found["check_reasons"] == [] and "mortgage_travels" in found["findings"]["codes"]
    paused = clock_of(engine, case.id)
    assert paused["paused"] is True and paused["pause_reason"] == "unpaid_tax"
    complete(engine, case.id, "review", REVIEWER, {"approved": True, "opinion": "材料齐全，同意登记"})
    assert open_ids(engine, case.id) == []  # still waiting for the tax
    tax = engine.case_data(case.id)["tax"]
    paid = engine.services.tax.pay(tax["assessment_no"], "citizen-pay-1")
    engine.send_message(case.id, "tax_paid", {"assessment_no": tax["assessment_no"], "voucher_no": paid.voucher_no},
                        SYSTEM, key=f"tax:{tax['assessment_no']}")
    assert clock_of(engine, case.id)["paused"] is False
    done = engine.case_data(case.id)
    number = done["certificate"]["number"]
    assert TITLE_NO.match(number) and done["delivery"]["method"] == "mail"
    complete(engine, case.id, "hand_over", DESK, {"handed_over_to": "EMS"})
    assert_finished_in_time(engine, case.id)
    assert owners(engine, contract.unit_number) == ["周子涵"]
    with engine.db.read() as s:
        travelled = register.get_right(s, mortgage_id)
    assert travelled.current and [m["name"] for m in travelled.details["mortgagor"]] == ["周子涵"]
    charges = engine.services.tax.charges_for(case.case_number)
    assert (charges.live, charges.payments) == (1, 1)
    assert deliver_once(engine) == 3
    sent = engine.services.notify.sent(case.case_number)
    assert len(sent) == 1 and number in sent[0].text and done["delivery"]["tracking_no"] in sent[0].text
    assert len(engine.services.housing.received(case.case_number)) == 1
    assert len(engine.services.tax.results_for(case.case_number)) == 1


def test_a_seized_flat_is_refused_in_writing_with_every_reason_and_no_tax(office) -> None:
    engine, data = office
    case, contract = start_transfer(engine, data, SEIZED)
    complete(engine, case.id, "accept", CLERK, acceptance_form("secondhand_transfer"))
    found = engine.case_data(case.id)
    assert any("查封" in r for r in found["check_reasons"])
    assert engine.services.tax.charges_for(case.case_number).assessments == 0
    complete(engine, case.id, "review", REVIEWER, {"approved": False, "opinion": "该房屋已被法院查封"})
    reasons = engine.case_data(case.id)["refusal_reasons"]
    assert any("查封" in r for r in reasons) and reasons[-1] == "审核意见：该房屋已被法院查封"
    complete(engine, case.id, "refuse", REVIEWER, {"refusal_opinion": "依法不予登记"})
    assert engine.get_case(case.id)["status"] == "completed"
    assert owners(engine, contract.unit_number) == ["李娜"]
    assert deliver_once(engine) == 1
    sent = engine.services.notify.sent(case.case_number)
    assert len(sent) == 1 and "不予登记" in sent[0].text and "查封" in sent[0].text


def test_a_seizure_arriving_during_review_blocks_the_transfer(office) -> None:
    from webapp.wiring import poll_court_orders

    engine, data = office
    case, contract = start_transfer(engine, data, FIRST_TIME)
    complete(engine, case.id, "accept", CLERK, acceptance_form("secondhand_transfer"))
    complete(engine, case.id, "review", REVIEWER, {"approved": True, "opinion": "同意"})
    engine.services.court.issue_order("seizure", "杭州市西湖区人民法院", "(2026)浙0106执保2001号",
                                      contract.unit_number, date(2026, 11, 23), date(2029, 11, 22))
    assert poll_court_orders(engine)["started"] == 1
    seizure_case = engine.find_case(max(c["case_number"] for c in _cases(engine, "seizure")))
    assert seizure_case["status"] == "completed"
    tax = engine.case_data(case.id)["tax"]
    engine.services.tax.pay(tax["assessment_no"], "citizen-pay-2")
    engine.send_message(case.id, "tax_paid", {"assessment_no": tax["assessment_no"], "voucher_no": "x"}, SYSTEM)
    assert open_ids(engine, case.id) == ["refuse"], engine.incidents()
    reasons = engine.case_data(case.id)["refusal_reasons"]
    assert len(reasons) == 1 and "(2026)浙0106执保2001号" in reasons[0]
    complete(engine, case.id, "refuse", REVIEWER, {"refusal_opinion": "登簿前该房屋被查封，不予登记"})
    assert engine.get_case(case.id)["status"] == "completed"
    assert owners(engine, contract.unit_number) == ["王芳"]


def _cases(engine: Engine, process_id: str) -> list[dict[str, Any]]:
    from storage.models import Case

    with engine.db.read() as s:
        return [{"id": c.id, "case_number": c.case_number, "status": c.status}
                for c in s.scalars(select(Case).where(Case.process_id == process_id).order_by(Case.id))]


# ------------------------------------------------------------------------------ transfer and mortgage together


def test_transfer_and_mortgage_in_one_case_with_tax_found_paid_by_the_periodic_check(office) -> None:
    engine, data = office
    case, contract = start_transfer(engine, data, FIRST_TIME, "transfer_with_mortgage", mortgagee=ICBC,
                                    amount="2000000.00", term_start="2026-11-23", term_end="2056-11-22",
                                    mode="ordinary")
    complete(engine, case.id, "accept", CLERK, acceptance_form("transfer_with_mortgage"))
    complete(engine, case.id, "review", REVIEWER, {"approved": True, "opinion": "转移与抵押一并办理，同意"})
    tax = engine.case_data(case.id)["tax"]
    engine.services.tax.pay(tax["assessment_no"], "citizen-pay-3")  # the callback is lost: no message
    worker = Worker(engine, senders(engine.services))
    engine.clock.advance(timedelta(hours=1))
    assert worker.run_due().fired == 0 and open_ids(engine, case.id) == []
    engine.clock.advance(timedelta(hours=1, minutes=1))
    assert worker.run_due().fired == 1
    done = engine.case_data(case.id)
    assert TITLE_NO.match(done["certificate"]["number"])
    assert REGISTRATION_NO.match(done["mortgage_certificate"]["number"])
    complete(engine, case.id, "hand_over", DESK, {"handed_over_to": "周子涵"})
    assert_finished_in_time(engine, case.id)
    assert owners(engine, contract.unit_number) == ["周子涵"]
    with engine.db.read() as s:
        mortgages = register.current_rights(s, contract.unit_number, ["mortgage"])
    assert [m.holder_names for m in mortgages] == [ICBC["name"]]
    assert [h["name"] for h in mortgages[0].details["mortgagor"]] == ["周子涵"]
    assert deliver_once(engine) == 3
    text = engine.services.notify.sent(case.case_number)[0].text
    assert done["certificate"]["number"] in text and done["mortgage_certificate"]["number"] in text


# ------------------------------------------------------------------------------ pre-sale notice


def test_presale_notice_files_the_contract_and_registers_the_pre_notice(office) -> None:
    engine, data = office
    contract = next(pc.contract for pc in data.presale_contracts if not pc.filed)
    case = engine.start_case("presale_notice", {"contract": contract.model_dump(mode="json")}, CLERK)
    complete(engine, case.id, "accept", CLERK, acceptance_form("presale_notice"))
    complete(engine, case.id, "review", REVIEWER, {"approved": True, "opinion": "预售合同已备案，同意预告登记"})
    done = engine.case_data(case.id)
    assert done["filing"]["contract_no"] == contract.contract_no
    assert REGISTRATION_NO.match(done["certificate"]["number"])
    complete(engine, case.id, "hand_over", DESK, {"handed_over_to": "周子涵"})
    assert_finished_in_time(engine, case.id)
    assert engine.services.housing.get_filing(contract.contract_no) is not None
    with engine.db.read() as s:
        notices = register.current_rights(s, contract.unit_number, ["pre_notice"])
    assert [n.holder_names for n in notices] == ["周子涵"]
    assert deliver_once(engine) == 3


# ------------------------------------------------------------------------------ seizure and release


def test_seizure_started_with_data_is_registered_at_once_and_the_court_told(office) -> None:
    engine, data = office
    case = engine.start_case("seizure", {
        "order_id": "", "court": "杭州市西湖区人民法院", "document_no": "(2026)浙0106执保2002号",
        "unit_number": WANG_FANG_FLAT, "starts_on": "2026-11-23", "ends_on": "2029-11-22",
        "court_contact": "13757100001"}, CLERK)
    assert engine.get_case(case.id)["status"] == "completed", engine.incidents()
    with engine.db.read() as s:
        seizures = register.current_rights(s, WANG_FANG_FLAT, ["seizure"])
    assert [z.document_number for z in seizures] == ["(2026)浙0106执保2002号"]
    assert deliver_once(engine) == 3
    assert "已办理查封登记" in engine.services.notify.sent(case.case_number)[0].text
    deadlines.close_finished(engine.db, engine.clock.now())
    assert clock_of(engine, case.id)["within_limit"] is True


def test_court_orders_are_polled_once_and_a_release_lets_the_queued_seizure_take_effect(office) -> None:
    from webapp.wiring import build_worker, poll_court_orders

    engine, data = office
    queued = "330105001004GB00063F00070012"  # seized by 拱墅区 court, 杭州中院's seizure queued behind it
    court = engine.services.court
    court.issue_order("release", "杭州市拱墅区人民法院", "(2026)浙0105执恢88号", queued,
                      released_document_no="(2025)浙0105执2187号")
    court.issue_order("seizure", "杭州市西湖区人民法院", "(2026)浙0106执保2003号", WANG_FANG_FLAT,
                      date(2026, 11, 23), date(2029, 11, 22))
    assert "court_orders" in [job for job, _every, _fn in build_worker(engine).periodic]
    assert poll_court_orders(engine, limit=1) == {"started": 2, "skipped": 0}
    assert poll_court_orders(engine) == {"started": 0, "skipped": 0}  # remembered: nothing twice
    releases, seizures = _cases(engine, "release"), _cases(engine, "seizure")
    assert [c["status"] for c in releases + seizures] == ["completed", "completed"], engine.incidents()
    with engine.db.read() as s:
        left = register.current_rights(s, queued, ["seizure"])
    assert [(z.document_number, z.queued) for z in left] == [("(2026)浙01执保356号", False)]
    assert engine.case_data(releases[0]["id"])["release_result"]["took_effect"] is not None
    assert deliver_once(engine) == 4  # shared with housing and tax, for each order; no court contact given


# ------------------------------------------------------------------------------ mortgage cancellation


def test_mortgage_cancellation_within_one_working_day(office) -> None:
    engine, data = office
    mortgage_id = existing_mortgage(engine)
    with engine.db.write() as s:  # the bank's 不动产登记证明 of that mortgage
        paper = register.issue_certificate(s, register.Office.from_env(), "registration", mortgage_id, "存量数据导入",
                                           engine.clock.now()).number
    owner = person(data, "王芳")
    case = engine.start_case("mortgage_cancellation", {
        "unit_number": WANG_FANG_FLAT, "mortgagee": {"name": "中国建设银行股份有限公司杭州城西支行",
                                                     "id_type": "统一社会信用代码", "id_number": "91330106MA2CCB0001"},
        "mortgage_certificate_no": paper.replace("(", "（").replace(")", "）"),  # as written on the application
        "applicant_phone": owner["phone"],
    }, BANK_CLERK)
    complete(engine, case.id, "accept", BANK_CLERK, acceptance_form("mortgage_cancellation"))
    complete(engine, case.id, "review", REVIEWER, {"approved": True, "opinion": "贷款已结清，同意注销"})
    # 注销登簿 is the register's own step: no registrar's task, the mortgage ends at once
    assert_finished_in_time(engine, case.id)
    assert clock_of(engine, case.id)["limit"] == {"kind": "workdays", "value": 1}
    with engine.db.read() as s:
        ended = register.get_right(s, mortgage_id)
        voided = register.get_certificate(s, paper)
        assert register.current_rights(s, WANG_FANG_FLAT, ["mortgage"]) == []
    assert not ended.current and ended.ended_by_case == case.case_number and "注销" in (ended.end_reason or "")
    assert voided.voided and voided.voided_by_case == case.case_number
    assert engine.case_data(case.id)["cancelled"]["voided_certificates"] == [paper]
    assert deliver_once(engine) == 3
    sms = engine.services.notify.sent(case.case_number)[0].text
    assert "注销登记已办结" in sms and paper in sms


def test_not_accepted_gives_the_one_time_notification(office) -> None:
    engine, data = office
    case = start_mortgage(engine, data, CLERK)
    complete(engine, case.id, "accept", CLERK, acceptance_form("mortgage", provided=["application_form"]))
    assert engine.get_case(case.id)["status"] == "completed"
    acceptance = engine.case_data(case.id)["acceptance"]
    assert acceptance["status"] == "not_accepted" and len(acceptance["missing"]) >= 3
    assert deliver_once(engine) == 1
    assert engine.services.notify.sent(case.case_number)[0].text == acceptance["notification"]
