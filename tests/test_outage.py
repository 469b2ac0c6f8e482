"""A department outage seen through the whole stack: real HTTP to the simulators, the engine's
retries, an incident, and an admin's retry once the department is back — tax charged once."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.factory import departments, sandbox_database
from adapters.sandbox_seed import seed_departments
from adapters.simulators import FaultConfig, RunningSimulators, start_simulators
from engine import Engine, EngineSettings
from tests.conftest import ADMIN, bpmn, open_task
from tests.test_handlers import FIRST_TIME, start_transfer
from webapp.demo import seed_register

FAST = {"ONEWINDOW_HTTP_CONNECT_TIMEOUT": "0.3", "ONEWINDOW_HTTP_READ_TIMEOUT": "0.3",
        "ONEWINDOW_HTTP_ATTEMPTS": "3", "ONEWINDOW_HTTP_BACKOFF": "0.01", "ONEWINDOW_HTTP_BACKOFF_MAX": "0.05",
        "ONEWINDOW_HTTP_DEADLINE": "5"}


@pytest.fixture
def office(db, registry, clock) -> Iterator[tuple[Engine, RunningSimulators, object]]:
    # the departments run as HTTP services on their own database, as they would in reality
    with start_simulators(sandbox_database(db), clock, faults=FaultConfig(timeout_s=1.0, seed=7)) as sims:
        env = {"ONEWINDOW_ADAPTERS": "http", **FAST, **{f"ONEWINDOW_{d.upper()}_URL": url
                                                          for d, url in sims.urls.items()}}
        deps = departments(db, clock, env=env)
        engine = Engine(db, registry, clock, EngineSettings(step_time_limit=10.0), services=deps)
        data = seed_departments(sims.service("housing"), sims.service("court"))
        seed_register(engine, data)
        engine.deploy(bpmn("transfer_services.bpmn"), "designer")
        yield engine, sims, data
        for client in (deps.tax, deps.housing, deps.court, deps.notify):
            client.close()


def test_tax_outage_becomes_an_incident_and_a_retry_completes_it_charging_once(office, clock) -> None:
    engine, sims, data = office
    sims.faults("tax").update({"error_rate": 1.0, "reset_stats": True})
    case, _contract = start_transfer(engine, data, FIRST_TIME)
    history = [e["kind"] for e in engine.history(case.id)]
    assert history.count("service_retry_scheduled") == 1 and engine.incidents() == []
    for _ in range(3):  # the diagram's default: three retries, with growing back-off
        clock.advance(hours=1)
        engine.run_due_jobs()
    [incident] = engine.incidents()
    assert incident["bpmn_id"] == "assess" and incident["kind"] == "service_fault"
    assert "tax authority" in incident["message"] and "4 time(s)" in incident["message"]
    assert engine.get_case(case.id)["open_incidents"] == 1
    assert sims.service("tax").charges_for(case.case_number).assessments == 0

    # the tax system is back, but the first answer is lost on the way: the client asks again
    sims.faults("tax").update({"error_rate": 0.0, "script": ["drop", "ok"], "reset_stats": True})
    assert engine.retry_incident(incident["id"], ADMIN)["status"] == "resolved"
    assert open_task(engine, case.id, "pay")
    charges = sims.service("tax").charges_for(case.case_number)
    assert (charges.assessments, charges.live) == (1, 1)
    assert engine.get_case(case.id)["open_incidents"] == 0
