"""The operators end to end: a transfer through the engine against the sandbox departments and the
register, seeded with the demo's Hangzhou data."""
from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.factory import sandbox_database, sandbox_departments
from adapters.sandbox_seed import SeedData, seed_departments
from domain import register
from engine import Engine, EngineSettings
from engine.worker import Worker
from handlers.outbox import senders
from tests.conftest import CLERK, REGISTRAR, REVIEWER, bpmn, open_task
from webapp.demo import seed_register

FIRST_TIME = "CL3301-2026-001201"  # 周子涵 buys a flat; nothing stands in the way
RESTRICTED = "CL3301-2026-001203"  # the buyers already own two homes in Hangzhou
SEIZED = "CL3301-2026-001205"  # the unit is seized by a court


@pytest.fixture
def office(db, registry, clock) -> tuple[Engine, SeedData]:
    departments = sandbox_departments(sandbox_database(db), clock)
    engine = Engine(db, registry, clock, EngineSettings(step_time_limit=5.0), services=departments)
    data = seed_departments(departments.housing, departments.court)
    seed_register(engine, data)
    engine.deploy(bpmn("transfer_services.bpmn"), "designer")
    return engine, data


def start_transfer(engine: Engine, data: SeedData, contract_no: str):
    contract = engine.services.housing.get_sale_contract(contract_no)
    unit = data.unit(contract.unit_number)
    case_data = {
        "unit_number": contract.unit_number, "price": str(contract.price), "area": str(contract.area),
        "contract_date": contract.signed_on.isoformat(), "seller_acquired_on": unit.acquired_on.isoformat(),
        "seller_original_price": str(unit.purchase_price), "seller_only_home": False,
        "sellers": [p.model_dump(mode="json") for p in contract.sellers],
        "buyers": [p.model_dump(mode="json") for p in contract.buyers],
    }
    return engine.start_case("transfer_services", case_data, CLERK), contract


def test_transfer_registered_certified_notified_and_shared_once(office) -> None:
    engine, data = office
    case, contract = start_transfer(engine, data, FIRST_TIME)
    pay = open_task(engine, case.id, "pay")
    tax = engine.case_data(case.id)["tax"]
    assert Decimal(tax["total_payable"]) > 0 and tax["status"] == "assessed"
    # the applicant has not paid yet: the window is asked again
    engine.complete_task(pay["id"], {}, CLERK)
    pay = open_task(engine, case.id, "pay")
    engine.services.tax.pay(tax["assessment_no"], "citizen-payment-1")
    engine.complete_task(pay["id"], {}, CLERK)
    assert engine.get_case(case.id)["status"] == "completed", engine.incidents()
    done = engine.case_data(case.id)
    assert done["certificate"]["number"] == "浙(2026)杭州市不动产权第0000001号"
    with engine.db.read() as s:
        owner = register.current_ownership(s, contract.unit_number)
    assert [h.name for h in owner.holders] == [b.name for b in contract.buyers]
    charges = engine.services.tax.charges_for(case.case_number)
    assert (charges.live, charges.payments) == (1, 1)
    worker = Worker(engine, senders(engine.services))
    assert worker.deliver_outbox().fired == 3
    assert worker.deliver_outbox().fired == 0
    sent = engine.services.notify.sent(case.case_number)
    assert len(sent) == 1 and "浙(2026)杭州市不动产权第0000001号" in sent[0].text
    assert len(engine.services.housing.received(case.case_number)) == 1
    assert len(engine.services.tax.results_for(case.case_number)) == 1


@pytest.mark.parametrize("contract_no, reason", [(SEIZED, "seized"), (RESTRICTED, "restricted")])
def test_refusals_route_to_the_written_refusal(office, contract_no: str, reason: str) -> None:
    engine, data = office
    case, contract = start_transfer(engine, data, contract_no)
    assert open_task(engine, case.id, "refuse")
    found = engine.case_data(case.id)
    if reason == "seized":
        assert found["seizure"]["seized"] and "seized" in found["findings"]["codes"]
    else:
        assert not found["restriction"]["allowed"] and "限购" in found["restriction"]["reason"]
    assert engine.services.tax.charges_for(case.case_number).assessments == 0
    engine.complete_task(open_task(engine, case.id, "refuse")["id"], {}, REVIEWER)
    with engine.db.read() as s:
        owner = register.current_ownership(s, contract.unit_number)
    assert [h.id_number for h in owner.holders] == [p.id_number for p in contract.sellers]


def test_a_register_refusal_undoes_its_partial_writes(office) -> None:
    """A seizure registered after review: the transfer handler refuses, and nothing it began stays."""
    engine, data = office
    case, contract = start_transfer(engine, data, FIRST_TIME)
    with engine.db.write() as s:
        register.register_seizure(s, contract.unit_number, court="杭州市西湖区人民法院",
                                  document_number="(2026)浙0106执保999号", term_start="2026-11-23",
                                  term_end="2027-11-22", case_number="court-order", now=engine.clock.now())
    tax = engine.case_data(case.id)["tax"]
    engine.services.tax.pay(tax["assessment_no"], "citizen-payment-2")
    engine.complete_task(open_task(engine, case.id, "pay")["id"], {}, CLERK)
    incident = engine.incidents()[0]
    assert incident["bpmn_id"] == "record" and "查封" in incident["message"]
    with engine.db.read() as s:
        owner = register.current_ownership(s, contract.unit_number)
        history = register.history(s, contract.unit_number)
    assert [h.id_number for h in owner.holders] == [p.id_number for p in contract.sellers]
    assert [r.kind for r in history if r.case_number == case.case_number] == []
    assert REGISTRAR  # the registrar would resolve it; here the point is the register stayed whole
