"""Several `onewindow worker` processes on one PostgreSQL database: every timer, service retry and
outbox message is done exactly once.

tests/test_worker.py races Worker objects in threads of one process; here the workers are real
processes (`python -m webapp.cli worker`, as an operator starts them), each with its own engine,
pools and APScheduler, claiming `timer_job` and `outbox` rows with FOR UPDATE SKIP LOCKED. The
departments are the HTTP simulators in this process, so every call the workers make is counted
where it arrives:

    start → court.check_seizure (the court is down for the first call: a retry job)
          → timer PT1S → notify.applicant (an outbox message) → end

The test process starts the cases (each first court call fails, its retry is due a second later);
three worker processes then fire the retries, the timers and deliver the messages. Exactly once:
one successful court call per case, one `service_retry` and one `timer_fired` event per case, one
POST to the notification gateway per message, every case completed, nothing left in timer_job,
no incident.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.factory import departments
from adapters.simulators import RunningSimulators, start_simulators
from domain.clock import Clock
from domain.errors import TransientError
from engine import Engine, EngineSettings
from storage.db import Database
from storage.models import Case, CaseEvent, Incident, Outbox, TimerJob
from tests.conftest import REVIEWER

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 3
CASES = 12

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="defs_many_workers" targetNamespace="http://onewindow.example/test">
  <bpmn:process id="many_workers" name="多进程执行器" isExecutable="true">
    <bpmn:laneSet id="lanes">
      <bpmn:lane id="reviewer" name="审核">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>check</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>wait</bpmn:flowNodeRef><bpmn:flowNodeRef>notify</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="check"/>
    <bpmn:serviceTask id="check" name="法院查封核查">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="court.check_seizure" resultVariable="court">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="unit_number" type="str" value="unit"/>
          </spiffworkflow:parameters>
          <spiffworkflow:retry retries="3" backoff_base="2"/>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="check" targetRef="wait"/>
    <bpmn:intermediateCatchEvent id="wait" name="等一秒">
      <bpmn:timerEventDefinition><bpmn:timeDuration>"PT1S"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="wait" targetRef="notify"/>
    <bpmn:serviceTask id="notify" name="短信告知">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="notify.applicant" resultVariable="notified">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="channel" type="str" value="'sms'"/>
            <spiffworkflow:parameter id="to" type="str" value="'13800138000'"/>
            <spiffworkflow:parameter id="text" type="str" value="'您的登记已办结'"/>
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f4" sourceRef="notify" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>
"""

# the HTTP clients of the test process and the workers: no client-side retries (one call is one
# call), short timeouts
HTTP = {"ONEWINDOW_HTTP_ATTEMPTS": "1", "ONEWINDOW_HTTP_CONNECT_TIMEOUT": "2", "ONEWINDOW_HTTP_READ_TIMEOUT": "5",
        "ONEWINDOW_HTTP_DEADLINE": "8"}


def unit(i: int) -> str:
    return f"330106001001GB00001F{i:08d}"


class Departments:
    """The simulators, with every court check and every notification counted as it arrives."""

    def __init__(self, sims: RunningSimulators) -> None:
        self.sims = sims
        self.lock = threading.Lock()
        self.court_calls: Counter[str] = Counter()  # unit -> calls answered
        self.court_refused: Counter[str] = Counter()  # unit -> calls answered 503
        self.notifications: Counter[str] = Counter()  # idempotency key -> POSTs received
        court, notify = sims.service("court"), sims.service("notify")
        check, send = court.check_seizures, notify.send

        def check_seizures(unit_number: str):  # type: ignore[no-untyped-def]
            with self.lock:
                first = not self.court_refused[unit_number]
                if first:
                    self.court_refused[unit_number] += 1
            if first:
                raise TransientError("court system is down for maintenance (test)")
            answer = check(unit_number)
            with self.lock:
                self.court_calls[unit_number] += 1
            return answer

        def send_notification(notification, key: str) -> None:  # type: ignore[no-untyped-def]
            with self.lock:
                self.notifications[key] += 1
            send(notification, key)

        court.check_seizures = check_seizures
        notify.send = send_notification

    def env(self) -> dict[str, str]:
        return {"ONEWINDOW_ADAPTERS": "http", **HTTP,
                **{f"ONEWINDOW_{d.upper()}_URL": url for d, url in self.sims.urls.items()}}


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Departments]:
    sims = start_simulators(Database(f"sqlite:///{tmp_path / 'departments.sqlite3'}"))
    try:
        yield Departments(sims)
    finally:
        sims.stop()


def start_workers(url: str, env: dict[str, str], log_dir: Path) -> list[subprocess.Popen[bytes]]:
    full = {**os.environ, **env, "ONEWINDOW_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    procs = []
    for i in range(WORKERS):
        log = (log_dir / f"worker{i}.log").open("wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "webapp.cli", "-v", "worker", "--interval", "0.2"],
                                      cwd=ROOT, env=full, stdout=log, stderr=subprocess.STDOUT))
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_worker_processes_fire_retries_timers_and_outbox_exactly_once(pg: Database, office: Departments,
                                                                        tmp_path: Path) -> None:
    url = pg.engine.url.render_as_string(hide_password=False)
    services = departments(pg, env=office.env())
    engine = Engine(pg, clock=Clock(), settings=EngineSettings(retry_delay=1.0), services=services)
    engine.deploy([("many_workers.bpmn", BPMN.encode())], "designer")
    # the workers are up and polling before anything is due, so they race for every job
    procs = start_workers(url, office.env(), tmp_path)
    try:
        cases = [engine.start_case("many_workers", {"unit": unit(i)}, REVIEWER) for i in range(CASES)]
        assert sum(office.court_refused.values()) == CASES and not office.court_calls
        deadline = time.monotonic() + 40  # generous: on a loaded machine Python starts slowly
        while time.monotonic() < deadline:
            with pg.read() as s:
                done = s.scalar(select(func.count()).select_from(Case).where(Case.status == "completed"))
                pending = s.scalar(select(func.count()).select_from(Outbox).where(Outbox.status != "delivered"))
            if done == CASES and pending == 0:
                break
            assert all(p.poll() is None for p in procs), "a worker process died; see its log in " + str(tmp_path)
            time.sleep(0.2)
        time.sleep(1.0)  # let a duplicate, if there were one, happen
    finally:
        stop_workers(procs)
        for client in (services.tax, services.housing, services.court, services.notify):
            client.close()
    logs = "\n".join((tmp_path / f"worker{i}.log").read_text(errors="replace") for i in range(WORKERS))
    with pg.read() as s:
        statuses = Counter(s.scalars(select(Case.status)))
        events = Counter((e.case_id, e.kind) for e in s.scalars(select(CaseEvent)))
        jobs = s.scalar(select(func.count()).select_from(TimerJob))
        outbox = s.scalars(select(Outbox)).all()
        incidents = s.scalars(select(Incident.message)).all()
    assert statuses == {"completed": CASES}, f"{statuses}; worker logs:\n{logs[-4000:]}"
    assert incidents == [] and jobs == 0
    for case in cases:
        assert events[(case.id, "service_retry")] == 1
        assert events[(case.id, "timer_fired")] == 1
    # the court answered each case once after its refusal: no retry ran twice
    assert office.court_calls == {unit(i): 1 for i in range(CASES)}
    # one message per case, each delivered once and received once
    assert len(outbox) == CASES and {m.status for m in outbox} == {"delivered"}
    assert office.notifications == {m.idempotency_key: 1 for m in outbox}
    # all three processes were up and polling the same database
    assert logs.count("polling every") == WORKERS, logs[-4000:]
