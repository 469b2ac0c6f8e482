"""`onewindow simulate`: many cases of one process, end to end, worked by automated clerks.

A believable world is built first — units with owners in the register, online-signed contracts
and pre-sale projects in the housing sandbox, mortgages and seizures where a process needs them —
so that every case is one the office would complete. Then clerks take every open task in rounds
(each round is ten minutes of office time on the simulation's clock), applicants pay their tax when
assessed, the worker fires timers and deadline lights, and the clock jumps to the next timer when
nothing else can move. A case that ends neither completed nor waiting on something the simulation
will do is reported stuck, with its open tasks and incidents.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.common import Party
from adapters.factory import sandbox_database, sandbox_departments
from adapters.housing import PresaleContract, SaleContract
from adapters.sandbox_seed import make_id_number, uscc_check_char
from domain import deadlines, materials, register
from domain.clock import SHANGHAI, FrozenClock
from engine import SYSTEM, Actor, Engine, EngineSettings
from handlers.registry import default_registry
from storage.db import Database
from storage.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
CLERKS = Actor.of("sim_clerks", "window_clerk", "reviewer", "registrar", "certificate_desk", "supervisor")
ROUND = timedelta(minutes=10)
MIGRATION = "存量数据导入"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "秀英", "华",
         "建国", "子涵", "欣怡", "浩然", "雨桐", "梓轩", "思远", "嘉怡", "晨曦", "一鸣"]


def _bank(code: str, name: str) -> dict[str, Any]:
    first17 = f"91330106MA{code}"[:17].ljust(17, "0")
    return {"name": name, "id_type": "统一社会信用代码", "id_number": first17 + uscc_check_char(first17)}


BANK = _bank("2B7K1X4", "中国工商银行股份有限公司杭州西湖支行")
OLD_BANK = _bank("2CCB0007", "中国建设银行股份有限公司杭州城西支行")
DEVELOPER = _bank("2DEW009", "杭州钱塘云庐置业有限公司")


@dataclass
class World:
    """What the simulation built, per case: the data to start it with."""

    starts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Result:
    figures: dict[str, Any]
    stuck: list[str]

    @property
    def ok(self) -> bool:
        return not self.stuck and self.figures["completed"] == self.figures["cases"]


# ---------------------------------------------------------------------------- building the world

class WorldBuilder:
    """Units, people and contracts that exist only for this simulation (distinct unit numbers)."""

    def __init__(self, engine: Engine, start: datetime) -> None:
        self.engine = engine
        self.today = start.astimezone(SHANGHAI).date()
        self.n = 0

    def person(self, i: int, region: str = "330106") -> Party:
        name = SURNAMES[i % len(SURNAMES)] + GIVEN[(i * 7) % len(GIVEN)]
        born = date(1960 + i % 40, 1 + (i // 40) % 12, 1 + (i // 480) % 28)
        return Party(name=name, id_number=make_id_number(region, born, 1 + (i * 13) % 997),
                     phone=f"13{(i * 7919) % 10**9:09d}")

    def unit(self, i: int) -> str:
        return f"330106009009GB{i // 40 + 1:05d}F{(i % 40) // 8 + 1:04d}{i % 8 + 1:04d}"

    def owned_units(self, count: int) -> list[tuple[str, Party]]:
        """`count` flats, each with one owner in the register."""
        now = self.engine.clock.now()
        made = []
        with self.engine.db.write() as s:
            first = self.n
            self.n += count  # a builder never hands out a unit twice, however often it is asked
            for i in range(first, first + count):
                number, owner = self.unit(i), self.person(10_000 + i)
                register.add_unit(s, number, address=f"杭州市西湖区仿真路{i // 40 + 1}号{(i % 40) // 8 + 1}幢"
                                                       f"{i % 8 + 1}01室", use="residential", now=now,
                                  area=Decimal("89.50"), building=str((i % 40) // 8 + 1), floor=str(i % 8 + 1),
                                  room=f"{i % 8 + 1}01", case_number=MIGRATION)
                register.register_ownership(s, number, [owner.model_dump(mode="json")], case_number=MIGRATION,
                                            now=now, details={"acquired_on": "2012-05-01"})
                made.append((number, owner))
        return made

    def sale_contracts(self, count: int) -> list[tuple[str, str, Party, Party]]:
        housing = self.engine.services.housing
        made = []
        first = self.n
        for i, (number, seller) in enumerate(self.owned_units(count), start=first):
            buyer = self.person(20_000 + i, region="330102")
            contract_no = f"SIM3301-{self.today.year}-{i + 1:06d}"
            housing.add_sale_contract(SaleContract(
                contract_no=contract_no, unit_number=number, sellers=[seller], buyers=[buyer],
                price=Decimal(3_000_000 + i * 1000), area=Decimal("89.50"), signed_on=self.today - timedelta(days=3),
                status="已网签"))
            made.append((contract_no, number, seller, buyer))
        return made


def world_for(process: str, builder: WorldBuilder, count: int) -> World:
    starts: list[dict[str, Any]] = []
    engine = builder.engine
    if process in ("secondhand_transfer", "transfer_with_mortgage"):
        for contract_no, _unit, _seller, _buyer in builder.sale_contracts(count):
            data: dict[str, Any] = {"contract_no": contract_no, "seller_acquired_on": "2012-05-01",
                                    "seller_original_price": "1200000.00", "seller_only_home": False,
                                    "consents": []}
            if process == "transfer_with_mortgage":
                data.update(mortgagee=BANK, amount="1500000.00", term_start=builder.today.isoformat(),
                            term_end=(builder.today + timedelta(days=365 * 20)).isoformat(), mode="ordinary")
            starts.append(data)
    elif process in ("mortgage", "mortgage_cancellation", "seizure", "release", "general_registration"):
        now = engine.clock.now()
        units = builder.owned_units(count)
        for i, (number, owner) in enumerate(units):
            owner_data = owner.model_dump(mode="json")
            if process == "mortgage":
                starts.append({"unit_number": number, "mortgagors": [owner_data], "mortgagee": BANK,
                               "amount": "1000000.00", "term_start": builder.today.isoformat(),
                               "term_end": (builder.today + timedelta(days=365 * 10)).isoformat(), "mode": "ordinary",
                               "applicant_phone": owner.phone, "channel": "bank"})
            elif process == "mortgage_cancellation":
                with engine.db.write() as s:
                    register.register_mortgage(s, number, mortgagee=OLD_BANK, amount="500000", term_start="2016-01-01",
                                               term_end="2036-01-01", case_number=MIGRATION, now=now)
                # imported from the old paper register: no certificate number on record, so the
                # applicant names the mortgage by its mortgagee alone (one per unit here)
                starts.append({"unit_number": number, "mortgagee": OLD_BANK, "mortgage_certificate_no": "",
                               "applicant_phone": owner.phone})
            elif process == "seizure":
                starts.append({"order_id": "", "court": "杭州市西湖区人民法院",
                               "document_no": f"(2026)浙0106执保{5000 + i}号", "unit_number": number,
                               "starts_on": builder.today.isoformat(),
                               "ends_on": (builder.today + timedelta(days=365 * 3 - 2)).isoformat(),
                               "court_contact": "13757100001"})
            elif process == "release":
                document_no = f"(2025)浙0106执{7000 + i}号"
                with engine.db.write() as s:
                    register.register_seizure(s, number, court="杭州市西湖区人民法院", document_number=document_no,
                                              term_start="2025-12-01", term_end="2028-11-30", case_number=MIGRATION,
                                              now=now)
                starts.append({"order_id": "", "court": "杭州市西湖区人民法院",
                               "document_no": f"(2026)浙0106执恢{7000 + i}号", "unit_number": number,
                               "released_document_no": document_no, "court_contact": "13757100001"})
            else:
                starts.append({"applicant": owner.name, "id_number": owner.id_number, "unit_number": number,
                               "promised_workdays": 5})
    elif process == "presale_notice":
        starts = _presale_world(builder, count)
    else:
        raise ValueError(f"the simulator does not know how to build cases for process '{process}'")
    return World(starts)


def _presale_world(builder: WorldBuilder, count: int) -> list[dict[str, Any]]:
    engine = builder.engine
    housing = engine.services.housing
    now = engine.clock.now()
    parcel = "330106009008GB00001"
    permit = f"杭售许字({builder.today.year})第009999号"
    developer = Party(name=DEVELOPER["name"], id_type=DEVELOPER["id_type"], id_number=DEVELOPER["id_number"])
    housing.add_presale_project(permit, "仿真云庐", developer, parcel, builder.today - timedelta(days=60))
    with engine.db.write() as s:
        land = parcel + "W00000000"
        register.add_unit(s, land, address="仿真云庐项目用地", use="non_residential", now=now, case_number=MIGRATION)
        register.register_ownership(s, land, [DEVELOPER], case_number=MIGRATION, now=now,
                                    details={"right": "国有建设用地使用权"})
        units = []
        for i in range(count):
            number = f"{parcel}F{i // 100 + 1:04d}{i % 100 + 1:04d}"
            register.add_unit(s, number, address=f"杭州市钱塘区仿真云庐{i // 100 + 1}幢{i % 100 + 1}室",
                              use="residential", now=now, area=Decimal("98.00"), case_number=MIGRATION)
            units.append(number)
    starts = []
    for i, number in enumerate(units):
        buyer = builder.person(30_000 + i, region="330102")
        contract = PresaleContract(contract_no=f"YS3301-{builder.today.year}-{i + 1:06d}", unit_number=number,
                                   developer=developer, buyers=[buyer], price=Decimal(2_500_000 + i * 1000),
                                   area=Decimal("98.00"), presale_permit_no=permit,
                                   signed_on=builder.today - timedelta(days=2))
        starts.append({"contract": contract.model_dump(mode="json")})
    return starts


# ---------------------------------------------------------------------------- the clerks

def acceptance_form(business: str, **extra: Any) -> dict[str, Any]:
    """What the window clerk enters: every paper item the checklist asks of the applicant (shared ones are
    never asked), handed in at once, and how the certificate is to be delivered (pickup by default)."""
    checklist = materials.checklist(business)
    provided = [i.code for i in checklist.required(checklist.facts({})) if i.source == "applicant"]
    return {"provided": provided, "deferred": [], "facts": {}, "delivery_method": "pickup", "delivery_address": "",
            "pickup_office": "西湖区", **extra}


def clerk_answer(process: str, bpmn_id: str) -> dict[str, Any] | None:
    """What an automated clerk enters in a task; None for a task a real person must look at."""
    if bpmn_id == "accept":
        business = process if process in materials.businesses() else None
        return acceptance_form(business) if business else {"materials_complete": True}
    answers: dict[str, dict[str, Any]] = {
        "review": {"approved": True, "opinion": "材料齐全，符合登记条件，同意登记"},
        "register": {},
        "cancel": {},
        "hand_over": {"handed_over_to": "申请人本人"},
        "urge_yellow": {"urge_opinion": "请抓紧办理"},
        "urge_red": {"urge_opinion": "已超期，请立即办结并说明原因"},
    }
    return answers.get(bpmn_id)


# ---------------------------------------------------------------------------- running

def simulate(process: str, cases: int, *, database_url: str | None = None,
             start: datetime | None = None, log: Callable[[str], None] | None = None) -> Result:
    say = log or (lambda _line: None)
    if cases < 1:
        raise ValueError("--cases must be at least 1")
    if database_url is None:
        folder = Path(tempfile.mkdtemp(prefix="onewindow-simulate-"))
        database_url = f"sqlite:///{folder / 'simulation.sqlite3'}"
    db = Database(database_url)
    upgrade(db)
    clock = FrozenClock(start or datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI))
    engine = Engine(db, default_registry(), clock, EngineSettings(step_time_limit=30.0),
                    services=sandbox_departments(sandbox_database(db), clock))
    engine.deploy_paths([PROCESSES], "simulation", "onewindow simulate")
    world = world_for(process, WorldBuilder(engine, clock.now()), cases)
    say(f"world built: {len(world.starts)} cases of {process}")

    began = time.perf_counter()
    case_ids = [engine.start_case(process, data, CLERKS).id for data in world.starts]
    stuck = _work(engine, clock, process, case_ids, say)
    elapsed = time.perf_counter() - began
    figures = _figures(engine, process, case_ids, elapsed)
    db.dispose()
    return Result(figures, stuck)


def _work(engine: Engine, clock: FrozenClock, process: str, case_ids: list[int], say: Callable[[str], None]
          ) -> list[str]:
    from webapp.wiring import deadline_upkeep

    paid: set[int] = set()
    unanswered: set[tuple[int, str]] = set()
    for _round in range(10_000):
        active = [c for c in case_ids if engine.get_case(c)["status"] == "active"]
        if not active:
            return []
        moved = False
        for task in _open_tasks(engine, active):
            answer = clerk_answer(task["process_id"], task["bpmn_id"])
            if answer is None:
                unanswered.add((task["case_id"], task["bpmn_id"]))
                continue
            engine.complete_task(task["id"], answer, CLERKS)
            moved = True
        for case_id in active:
            if case_id not in paid and not engine.case_tasks(case_id):
                moved |= _pay_if_assessed(engine, case_id, paid)
        clock.advance(ROUND)
        fired = engine.run_due_jobs("simulation")
        deadline_upkeep(engine)
        moved |= fired.fired > 0
        if moved:
            continue
        due = engine.next_due()
        if due is not None and due > clock.now():
            clock.set(due + timedelta(seconds=1))
            continue
        return [_describe_stuck(engine, c, unanswered) for c in active]
    return [f"gave up after 10000 rounds with {len(case_ids)} cases"]


def _open_tasks(engine: Engine, case_ids: list[int]) -> Iterator[dict[str, Any]]:
    for case_id in case_ids:
        yield from engine.case_tasks(case_id)


def _pay_if_assessed(engine: Engine, case_id: int, paid: set[int]) -> bool:
    """The applicant pays at the tax window as soon as tax is assessed; the tax office calls back."""
    tax = engine.case_data(case_id).get("tax")
    if not isinstance(tax, dict) or tax.get("status") != "assessed" or not tax.get("assessment_no"):
        return False
    assessment = engine.services.tax.pay(tax["assessment_no"], f"sim-pay-{case_id}")
    engine.send_message(case_id, "tax_paid", {"assessment_no": tax["assessment_no"],
                                              "voucher_no": assessment.voucher_no},
                        SYSTEM, key=f"tax:{tax['assessment_no']}")
    paid.add(case_id)
    return True


def _describe_stuck(engine: Engine, case_id: int, unanswered: set[tuple[int, str]]) -> str:
    case = engine.get_case(case_id)
    tasks = [t["bpmn_id"] for t in engine.case_tasks(case_id)]
    incidents = [f"{i['bpmn_id']}: {i['message']}" for i in engine.incidents(case_id=case_id)]
    waiting = [b for c, b in unanswered if c == case_id]
    return (f"{case['case_number']} {case['status']}: open tasks {tasks or 'none'}"
            f"{'; tasks no automated clerk answers: ' + ', '.join(sorted(set(waiting))) if waiting else ''}"
            f"{'; incidents: ' + ' | '.join(incidents) if incidents else ''}")


def _figures(engine: Engine, process: str, case_ids: list[int], elapsed: float) -> dict[str, Any]:
    completed = [c for c in case_ids if engine.get_case(c)["status"] == "completed"]
    deadlines.close_finished(engine.db, engine.clock.now())  # what the worker's upkeep does for finished cases
    within = 0
    with engine.db.read() as s:
        for case_id in completed:
            clock = deadlines.case_deadline(s, case_id, engine.clock.now())
            if clock is None or clock.get("within_limit"):
                within += 1
        now = engine.clock.now()
        rate = deadlines.one_hour_rate(s, now - timedelta(days=3650), now)
    figures: dict[str, Any] = {
        "process": process,
        "cases": len(case_ids),
        "completed": len(completed),
        "stuck": len(case_ids) - len(completed),
        "incidents": len(engine.incidents()),
        "cases_per_s": round(len(case_ids) / elapsed, 1) if elapsed > 0 else 0.0,
        "within_limit_share": round(within / len(completed), 3) if completed else 0.0,
        "elapsed_s": round(elapsed, 2),
    }
    if rate.get("cases"):
        figures["one_hour_rate"] = round(rate["rate"], 3) if rate.get("rate") is not None else 0.0
    return figures
