"""Soak run: many cases through the department simulators with injected faults while worker
processes are killed with SIGKILL; then every case is accounted for.

    .venv/bin/python bench/soak.py [--cases 10000] [--workers 4] [--kills 12] [--kill-every 30]
                                   [--fault-rate 0.1] [--minutes 15] [--postgres URL | --database URL]

On a fresh PostgreSQL database (`<bench database>_soak` on the server of --postgres or
ONEWINDOW_BENCH_POSTGRES_URL, dropped and made anew):

1. the world — units and owners in the register, online-signed contracts in the housing
   department, mortgages and seizures — is built for every case (webapp/simulate.py's
   `world_for`), the departments' records by the sandbox classes on the database the simulators
   will serve;
2. `onewindow simulators` runs as a subprocess on that database with `--fault-rate` of all
   requests failing: mostly 503s, some hanging past the client's read timeout, some done with
   the answer lost (so a retry must not do the work twice);
3. `--workers` `onewindow worker` processes fire the retries (the HTTP clients try once, so every
   fault becomes an engine retry a worker runs), timers and the outbox; every `--kill-every`
   seconds (±50 %) one of them is killed with SIGKILL — preferably one holding claimed jobs, so
   it dies mid-work — and a replacement starts;
4. this process plays the counter (`--drivers` threads): starts the cases (a mix of
   secondhand_transfer, transfer_with_mortgage, mortgage, seizure, release), completes clerks'
   tasks with webapp/simulate.py's `clerk_answer`, and pays each assessed tax at the tax
   department (HTTP, faults included) then sends the case `tax_paid`;
5. when every case is started (or `--minutes` have passed: the run is bounded, the figures say
   how many were started) and nothing is left to do — no answerable task, no unpaid assessment,
   no due job, no pending outbox message — for a few seconds, or `--settle` seconds passed,
   the workers are stopped and the books are checked.

Time is compressed in one place: the outbox's own back-off (10 s × 2^attempts, in the engine)
would make the last messages wait minutes, so pending messages that failed are made due again
every second (`outbox_hurried` counts them) — the retries still go through the workers, with
the same keys. Service retries use ONEWINDOW_RETRY_DELAY=0.5 s (× 2 per attempt, 4 retries)
and a killed worker's claimed jobs return after ONEWINDOW_JOB_LOCK_SECONDS=10.

Every case must be completed, waiting for a person (an open task no automated clerk answers),
waiting for a timer (a timer_job not yet due) or have an open incident; any other is `lost`.
Also checked: no case charged tax twice (the tax department's assessments and payments per
case), certificate numbers unique and gapless per office, kind and year (and equal to their
counter), no notification received twice, no due job left behind, and the audit log
reconciles with the tables (`audit_mismatches`: cases vs case_started, completed vs
case_completed, completed tasks vs task_completed, incidents vs incident_opened, retries
scheduled vs fired plus pending, notifications delivered vs received). Prints one `name: value`
line per figure; exits 1 when any of lost, tax_double_charges, certificate_gaps, duplicates,
overdue_jobs, outbox_pending or audit_mismatches is not 0, naming what was found.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # bench/http.py shadows `http`
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import timedelta  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from adapters.factory import departments, sandbox_departments  # noqa: E402
from bench import databases  # noqa: E402
from domain.clock import Clock  # noqa: E402
from domain.errors import BusinessError, TransientError  # noqa: E402
from engine import SYSTEM, Engine, EngineSettings  # noqa: E402
from engine.errors import EngineError  # noqa: E402
from handlers.registry import default_registry  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Case, CaseEvent, HumanTask, Incident, Outbox, RegisterCertificate, TimerJob  # noqa: E402
from storage.models import Counter as CounterRow  # noqa: E402
from webapp.simulate import CLERKS, PROCESSES, WorldBuilder, clerk_answer, world_for  # noqa: E402

# mortgage_cancellation is left out: webapp/simulate.py's world registers its mortgages without the
# certificate number the process checks, so every such case ends in 不予登记 (a person's task)
MIX = {"secondhand_transfer": 0.40, "mortgage": 0.25, "transfer_with_mortgage": 0.10, "seizure": 0.125,
       "release": 0.125}
# user tasks the automated clerks answer (others — 补正, 不予登记, 查封异常 — wait for a person)
ANSWERED = ("accept", "review", "register", "cancel", "hand_over", "urge_yellow", "urge_red")
PAYMENT_WAIT = "poll_payment"  # the boundary timer of secondhand_transfer's wait for tax_paid


@dataclass
class SoakConfig:
    cases: int = 10_000
    workers: int = 4
    kills: int = 12
    kill_every: float = 30.0  # seconds between kills, ±50 %
    fault_rate: float = 0.10  # share of department requests that fail: 70 % 503, 10 % hang, 20 % dropped answer
    timeout_s: float = 2.0  # how long a hanging request hangs (the client gives up after read_timeout)
    read_timeout: float = 1.0
    drivers: int = 3  # threads playing the counter
    max_inflight: int = 300  # active cases the counter lets pile up before starting more
    minutes: float = 15.0  # bound on the driving phase: stop starting cases after this
    settle: float = 300.0  # seconds to wait for the last retries and messages afterwards
    worker_interval: float = 0.5
    retry_delay: float = 0.5  # the engine's first retry after a fault, then ×2
    retries: int = 4  # engine retries per service call before an incident
    job_lock_seconds: float = 10.0  # a killed worker's claimed jobs return to the pool after this
    mix: dict[str, float] = field(default_factory=lambda: dict(MIX))
    seed: int = 20261122
    log_dir: Path | None = None


@dataclass
class SoakResult:
    figures: dict[str, Any]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------------------- set-up

def soak_database(server_url: str) -> str:
    """A fresh database `<name>_soak` on the bench server; returns its URL."""
    return databases.recreate(server_url, "_soak")


def build_world(db: Database, config: SoakConfig) -> list[tuple[str, dict[str, Any]]]:
    """Deploy processes/ and build every case's world; the departments' records go to the sandbox
    tables of `db`, which the simulators then serve. Returns (process, start data), shuffled."""
    clock = Clock()
    engine = Engine(db, default_registry(), clock, EngineSettings(step_time_limit=30.0),
                    services=sandbox_departments(db, clock))
    engine.deploy_paths([PROCESSES], "soak", "bench/soak.py")
    counts = split(config.cases, config.mix)
    starts: list[tuple[str, dict[str, Any]]] = []
    builder = WorldBuilder(engine, clock.now())  # one builder: no unit, person or contract used twice
    for process, count in counts.items():
        if count:
            world = world_for(process, builder, count)
            starts += [(process, data) for data in world.starts]
    random.Random(config.seed).shuffle(starts)
    for service in (engine.services.tax, engine.services.housing, engine.services.court, engine.services.notify):
        getattr(service, "close", lambda: None)()
    return starts


def split(total: int, mix: dict[str, float]) -> dict[str, int]:
    weight = sum(mix.values())
    counts = {p: int(total * w / weight) for p, w in mix.items()}
    first = next(iter(counts))
    counts[first] += total - sum(counts.values())
    return counts


def free_base_port(count: int = 4) -> int:
    """A port p with p … p+count-1 free on loopback (the simulators take four in a row)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            held = []
            for port in range(base, base + count):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError("no four free ports in a row on 127.0.0.1")


class Simulators:
    """`onewindow simulators` in a subprocess, on the soak database, with faults."""

    def __init__(self, url: str, config: SoakConfig, log: Path) -> None:
        self.base_port = free_base_port()
        rate = config.fault_rate
        cmd = [sys.executable, "-m", "webapp.cli", "simulators", "--base-port", str(self.base_port),
               "--database", url, "--no-demo-data", "--seed", str(config.seed),
               "--error-rate", f"{rate * 0.7:.4f}", "--timeout-rate", f"{rate * 0.1:.4f}",
               "--drop-rate", f"{rate * 0.2:.4f}", "--timeout-s", str(config.timeout_s)]
        self.log = log
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                     stdout=log.open("wb"), stderr=subprocess.STDOUT)
        self.urls = {d: f"http://127.0.0.1:{self.base_port + i}" for i, d in
                     enumerate(("tax", "housing", "court", "notify"))}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the simulators exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                if all(httpx.get(f"{u}/_health", timeout=1).status_code == 200 for u in self.urls.values()):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the simulators did not come up within 60 s")

    def stats(self) -> dict[str, dict[str, int]]:
        out = {}
        for department, url in self.urls.items():
            try:
                out[department] = httpx.get(f"{url}/_faults", timeout=5).json()["stats"]
            except (httpx.HTTPError, ValueError, KeyError):
                out[department] = {}
        return out

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[bytes], wait: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def client_env(url: str, sims: Simulators, config: SoakConfig) -> dict[str, str]:
    """What the workers and this process use: the simulators over HTTP, one try per call (a fault is an
    engine retry), short timeouts, quick engine retries and short job leases."""
    return {
        "ONEWINDOW_DATABASE_URL": url,
        "ONEWINDOW_ADAPTERS": "http",
        **{f"ONEWINDOW_{d.upper()}_URL": u for d, u in sims.urls.items()},
        "ONEWINDOW_HTTP_ATTEMPTS": "1",
        "ONEWINDOW_HTTP_CONNECT_TIMEOUT": "1",
        "ONEWINDOW_HTTP_READ_TIMEOUT": str(config.read_timeout),
        "ONEWINDOW_HTTP_DEADLINE": str(config.read_timeout * 3),
        "ONEWINDOW_RETRY_DELAY": str(config.retry_delay),
        "ONEWINDOW_RETRY_BACKOFF_BASE": "2",
        "ONEWINDOW_DEFAULT_RETRIES": str(config.retries),
        "ONEWINDOW_JOB_LOCK_SECONDS": str(config.job_lock_seconds),
    }


class Workers:
    """`onewindow worker` processes; `kill_one` SIGKILLs one (preferably mid-work) and starts another."""

    def __init__(self, env: dict[str, str], config: SoakConfig, log_dir: Path, db: Database) -> None:
        self.env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        self.config = config
        self.log_dir = log_dir
        self.db = db
        self.started = 0
        self.killed = 0
        self.killed_holding_jobs = 0
        self.procs: list[subprocess.Popen[bytes]] = [self._start() for _ in range(config.workers)]

    def _start(self) -> subprocess.Popen[bytes]:
        self.started += 1
        log = (self.log_dir / f"worker{self.started}.log").open("wb")
        return subprocess.Popen([sys.executable, "-m", "webapp.cli", "-v", "worker",
                                 "--interval", str(self.config.worker_interval)],
                                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def holding(self) -> set[int]:
        """PIDs of workers with claimed timer jobs or outbox messages right now."""
        with self.db.read() as s:
            names = set(s.scalars(select(TimerJob.locked_by).where(TimerJob.locked_by.is_not(None))))
            names |= set(s.scalars(select(Outbox.locked_by).where(Outbox.locked_by.is_not(None),
                                                                   Outbox.status == "pending")))
        pids = set()
        for name in names:
            try:
                pids.add(int(str(name).rsplit(":", 1)[1]))
            except (IndexError, ValueError):
                continue
        return pids

    def kill_one(self, rng: random.Random) -> None:
        alive = [p for p in self.procs if p.poll() is None]
        if not alive:
            return
        busy = self.holding()
        mid_work = [p for p in alive if p.pid in busy]
        victim = rng.choice(mid_work or alive)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.killed += 1
        self.killed_holding_jobs += bool(mid_work)
        self.procs[self.procs.index(victim)] = self._start()

    def check_alive(self) -> list[str]:
        """Workers that died by themselves (not killed here) are restarted and reported."""
        died = []
        for i, p in enumerate(self.procs):
            if p.poll() is not None:
                died.append(f"worker pid {p.pid} exited by itself with status {p.returncode}")
                self.procs[i] = self._start()
        return died

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# ---------------------------------------------------------------------------- the counter

class OfficeCounter:
    """The office counter 窗口: clerks and applicants, in `drivers` threads sharing one engine."""

    def __init__(self, engine: Engine, starts: list[tuple[str, dict[str, Any]]], config: SoakConfig,
                 deadline: float) -> None:
        self.engine = engine
        self.starts = starts
        self.config = config
        self.start_deadline = deadline
        self.lock = threading.Lock()
        self.next_start = 0
        self.inflight = 0  # refreshed from the database by the main loop, raised by each start
        self.paid: set[int] = set()
        self.tally: Counter[str] = Counter()
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.first_start: float | None = None
        self.threads = [threading.Thread(target=self._run, args=(k,), name=f"counter-{k}", daemon=True)
                        for k in range(config.drivers)]

    @property
    def started(self) -> int:
        return self.next_start

    def all_started(self) -> bool:
        return self.next_start >= len(self.starts) or time.monotonic() >= self.start_deadline

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(60)

    def _error(self, what: str, err: BaseException) -> None:
        with self.lock:
            self.tally["errors"] += 1
            if len(self.errors) < 20:
                self.errors.append(f"{what}: {type(err).__name__}: {err}")

    def _take_start(self) -> tuple[str, dict[str, Any]] | None:
        with self.lock:
            if self.all_started() or self.inflight >= self.config.max_inflight:
                return None
            item = self.starts[self.next_start]
            self.next_start += 1
            self.inflight += 1
            if self.first_start is None:
                self.first_start = time.monotonic()
            return item

    def _run(self, k: int) -> None:
        while not self.stopping.is_set():
            worked = 0
            for _ in range(2):
                item = self._take_start()
                if item is None:
                    break
                try:
                    self.engine.start_case(item[0], item[1], CLERKS)
                    self.tally["started"] += 1
                except Exception as err:  # noqa: BLE001 — counted; the case never existed
                    self._error(f"start {item[0]}", err)
                worked += 1
            worked += self._clerks(k)
            worked += self._payments(k)
            if not worked:
                self.stopping.wait(0.2)

    def _clerks(self, k: int) -> int:
        with self.engine.db.read() as s:
            rows = s.execute(
                select(HumanTask.id, HumanTask.bpmn_id, Case.process_id).join(Case, Case.id == HumanTask.case_id)
                .where(HumanTask.state == "open", HumanTask.bpmn_id.in_(ANSWERED), Case.status == "active",
                       Case.id % self.config.drivers == k)
                .order_by(HumanTask.id).limit(20)).all()
        for task_id, bpmn_id, process in rows:
            if self.stopping.is_set():
                break
            answer = clerk_answer(process, bpmn_id)
            if answer is None:
                continue
            try:
                self.engine.complete_task(task_id, answer, CLERKS)
                self.tally["tasks_completed"] += 1
            except EngineError as err:  # a conflict with a worker's step, or the task moved on: next round
                self.tally[f"complete_{type(err).__name__}"] += 1
            except Exception as err:  # noqa: BLE001
                self._error(f"complete task {task_id} ({bpmn_id})", err)
        return len(rows)

    def payable(self, k: int | None = None) -> list[int]:
        """Cases waiting for their tax payment that this counter has not paid yet."""
        q = select(TimerJob.case_id).where(TimerJob.bpmn_id == PAYMENT_WAIT, TimerJob.kind == "timer")
        if k is not None:
            q = q.where(TimerJob.case_id % self.config.drivers == k)
        with self.engine.db.read() as s:
            ids = list(s.scalars(q))
        return [c for c in ids if c not in self.paid]

    def _payments(self, k: int) -> int:
        done = 0
        for case_id in self.payable(k)[:10]:
            if self.stopping.is_set():
                break
            try:
                tax = self.engine.case_data(case_id).get("tax")
                if not isinstance(tax, dict) or tax.get("status") != "assessed":
                    continue
                # the applicant pays at the tax window; a lost answer is paid again with the same key
                paid = self.engine.services.tax.pay(tax["assessment_no"], f"soak-pay-{case_id}")
                self.engine.send_message(case_id, "tax_paid", {"assessment_no": tax["assessment_no"],
                                                               "voucher_no": paid.voucher_no},
                                         SYSTEM, key=f"tax:{tax['assessment_no']}")
                with self.lock:
                    self.paid.add(case_id)
                    self.tally["payments"] += 1
                done += 1
            except TransientError:
                self.tally["payment_faults"] += 1  # the tax department failed: pay again next round
            except (EngineError, BusinessError) as err:
                self._error(f"payment for case {case_id}", err)
        return done


# ---------------------------------------------------------------------------- running

def hurry_outbox(db: Database) -> int:
    """Make outbox messages that failed due again now (see the module docstring); returns how many."""
    now = Clock().now()
    with db.write() as s:
        return s.execute(Outbox.__table__.update().where(
            Outbox.status == "pending", Outbox.attempts > 0, Outbox.due_at > now).values(due_at=now)).rowcount


def quiet(engine: Engine, counter: OfficeCounter) -> str | None:
    """What is still to be done, or None when nothing is (the run has settled)."""
    now = engine.clock.now()
    with engine.db.read() as s:
        tasks = s.scalar(select(func.count()).select_from(HumanTask).join(Case, Case.id == HumanTask.case_id)
                         .where(HumanTask.state == "open", HumanTask.bpmn_id.in_(ANSWERED), Case.status == "active"))
        due = s.scalar(select(func.count()).select_from(TimerJob).join(Case, Case.id == TimerJob.case_id)
                       .where(TimerJob.due_at <= now + timedelta(seconds=5), Case.status == "active"))
        outbox = s.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "pending"))
    unpaid = len(counter.payable())
    if not counter.all_started():
        return f"{len(counter.starts) - counter.started} cases to start"
    if tasks or due or outbox or unpaid:
        return f"{tasks} tasks, {due} due jobs, {outbox} outbox messages, {unpaid} unpaid assessments"
    return None


def run_soak(url: str, config: SoakConfig, say: Callable[[str], None] = print) -> SoakResult:
    """The whole run on the (empty, migrated or not) database at `url`."""
    log_dir = config.log_dir or Path(tempfile.mkdtemp(prefix="onewindow-soak-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    db = Database(url, pool_size=config.drivers + 4)
    upgrade(db)
    began = time.monotonic()
    starts = build_world(db, config)
    say(f"world built for {len(starts)} cases in {time.monotonic() - began:.0f} s; logs in {log_dir}")
    sims = Simulators(url, config, log_dir / "simulators.log")
    workers: Workers | None = None
    counter: OfficeCounter | None = None
    problems: list[str] = []
    rng = random.Random(config.seed)
    try:
        env = client_env(url, sims, config)
        services = departments(db, env=env)
        from webapp.wiring import engine_settings

        engine = Engine(db, default_registry(), Clock(), engine_settings(env), services=services)
        workers = Workers(env, config, log_dir, db)
        counter = OfficeCounter(engine, starts, config, time.monotonic() + config.minutes * 60)
        counter.start()
        next_kill = time.monotonic() + config.kill_every * rng.uniform(0.5, 1.5)
        settle_until: float | None = None
        calm = 0
        last_say = 0.0
        hurried = 0
        while True:
            time.sleep(1.0)
            with db.read() as s:
                counter.inflight = s.scalar(select(func.count()).select_from(Case).where(Case.status == "active"))
            problems += workers.check_alive()
            if workers.killed < config.kills and time.monotonic() >= next_kill:
                workers.kill_one(rng)
                next_kill = time.monotonic() + config.kill_every * rng.uniform(0.5, 1.5)
            hurried += hurry_outbox(db)
            left = quiet(engine, counter)
            if time.monotonic() - last_say > 30:
                say(f"  {time.monotonic() - began:5.0f} s: {counter.started} started, {counter.inflight} active, "
                    f"{workers.killed} workers killed; to do: {left or 'nothing'}")
                last_say = time.monotonic()
            if counter.all_started() and settle_until is None:
                settle_until = time.monotonic() + config.settle
            calm = calm + 1 if left is None else 0
            if calm >= 3:
                break
            if settle_until is not None and time.monotonic() > settle_until:
                problems.append(f"did not settle within {config.settle:g} s after the last start: {left}")
                break
        finished = time.monotonic()
        counter.stop()
        figures = check(engine, sims, counter, workers, problems)
        figures["outbox_hurried"] = hurried
        elapsed = finished - (counter.first_start or finished)
        figures["elapsed_s"] = round(elapsed, 1)
        figures["cases_per_s"] = round(figures["cases"] / elapsed, 2) if elapsed > 0 else 0.0
        for client in (services.tax, services.housing, services.court, services.notify):
            client.close()
    finally:
        if counter is not None:
            counter.stop()
        if workers is not None:
            workers.stop()
        sims.stop()
        db.dispose()
    return SoakResult(figures, problems)


# ---------------------------------------------------------------------------- the books

def check(engine: Engine, sims: Simulators, counter: OfficeCounter, workers: Workers, problems: list[str]
          ) -> dict[str, Any]:
    """Classify every case and reconcile the tables, the departments and the audit log."""
    now = engine.clock.now()
    with engine.db.read() as s:
        cases = s.execute(select(Case.id, Case.case_number, Case.status, Case.open_incidents)).all()
        open_tasks = set(s.scalars(select(HumanTask.case_id).where(HumanTask.state == "open")))
        jobs = s.execute(select(TimerJob.case_id, TimerJob.kind, TimerJob.due_at, TimerJob.bpmn_id)).all()
        incident_rows = s.execute(select(Incident.case_id, Incident.kind, Incident.status, Incident.message)).all()
        event_counts = {kind: n for kind, n in s.execute(select(CaseEvent.kind, func.count())
                                                          .group_by(CaseEvent.kind)).all()}
        started_cases = s.scalar(select(func.count(func.distinct(CaseEvent.case_id)))
                                 .where(CaseEvent.kind == "case_started"))
        tasks_done = s.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.state == "completed"))
        outbox = Counter(s.scalars(select(Outbox.status)))
        delivered_keys = set(s.scalars(select(Outbox.idempotency_key).where(
            Outbox.status == "delivered", Outbox.topic == "notify.applicant")))
        certificates = s.execute(select(RegisterCertificate.office_code, RegisterCertificate.kind,
                                        RegisterCertificate.year, RegisterCertificate.serial,
                                        RegisterCertificate.number)).all()
        counters = dict(s.execute(select(CounterRow.name, CounterRow.value)
                                  .where(CounterRow.name.like("certificate:%"))).all())
        tax_rows = s.execute(text("SELECT case_number, status, voucher_no FROM sandbox_tax_assessment")).all()
        notify_rows = s.execute(text("SELECT idempotency_key, count(*) FROM sandbox_notify_messages "
                                     "GROUP BY idempotency_key")).all()
    open_incident_cases = {r.case_id for r in incident_rows if r.status == "open"}
    timer_cases = {j.case_id for j in jobs}
    overdue = [j for j in jobs if j.due_at < now - timedelta(seconds=60)]
    kinds: Counter[str] = Counter()
    lost = []
    for c in cases:
        if c.status == "completed":
            kinds["completed"] += 1
        elif c.status == "cancelled":
            kinds["cancelled"] += 1
        elif c.id in open_incident_cases or c.open_incidents:
            kinds["incidents"] += 1
            if (c.id in open_incident_cases) != bool(c.open_incidents):
                problems.append(f"case {c.case_number}: open_incidents={c.open_incidents} but "
                                f"{'an' if c.id in open_incident_cases else 'no'} open incident row")
        elif c.id in open_tasks:
            kinds["waiting_person"] += 1
        elif c.id in timer_cases:
            kinds["waiting_timer"] += 1
        else:
            lost.append(c.case_number)
    if lost:
        problems.append(f"{len(lost)} lost case(s) (active, with no open task, timer or incident): "
                        + ", ".join(lost[:20]))
    if overdue:
        problems.append(f"{len(overdue)} job(s) overdue by more than a minute, e.g. " + ", ".join(
            f"case {j.case_id} {j.kind} {j.bpmn_id} due {j.due_at:%H:%M:%S}" for j in overdue[:5]))

    # tax: per case at most one assessment and one payment; none for a case that does not exist
    numbers = {c.case_number for c in cases}
    per_case: dict[str, list[Any]] = {}
    for row in tax_rows:
        per_case.setdefault(row.case_number, []).append(row)
    doubles = [n for n, rows in per_case.items()
               if len(rows) > 1 or sum(1 for r in rows if r.voucher_no) > 1]
    orphans = [n for n in per_case if n not in numbers]
    if doubles:
        problems.append(f"tax charged more than once for {len(doubles)} case(s): {', '.join(doubles[:10])}")
    if orphans:
        problems.append(f"tax assessed for {len(orphans)} case number(s) the registry does not have: "
                        + ", ".join(orphans[:10]))

    # certificates: per office, kind and year, serials 1..n each once, and the counter at n
    series: dict[tuple[str, str, int], list[int]] = {}
    for cert in certificates:
        series.setdefault((cert.office_code, cert.kind, cert.year), []).append(cert.serial)
    gaps = duplicate_serials = 0
    for (office, kind, year), serials in series.items():
        distinct = set(serials)
        duplicate_serials += len(serials) - len(distinct)
        missing = set(range(1, max(distinct) + 1)) - distinct
        gaps += len(missing)
        counter_value = counters.get(f"certificate:{office}:{kind}:{year}")
        if counter_value != max(distinct):
            problems.append(f"certificate counter {office}/{kind}/{year} is {counter_value}, "
                            f"the highest serial issued {max(distinct)}")
        if missing:
            problems.append(f"certificate serials missing in {office}/{kind}/{year}: {sorted(missing)[:10]}")
    duplicate_numbers = len(certificates) - len({c.number for c in certificates})
    duplicate_notifications = sum(n - 1 for _key, n in notify_rows if n > 1)
    duplicates = duplicate_serials + duplicate_numbers + duplicate_notifications
    if duplicates:
        problems.append(f"duplicates: {duplicate_serials} certificate serial(s), {duplicate_numbers} certificate "
                        f"number(s), {duplicate_notifications} notification(s) received twice")

    # the audit log against the tables
    received_keys = {key for key, _n in notify_rows}
    pending_retries = sum(1 for j in jobs if j.kind == "retry")
    step_incidents = sum(1 for r in incident_rows if r.kind != "outbox_failed"
                         and not r.message.startswith("scheduled "))
    audit = {
        "cases vs case_started events": (len(cases), started_cases),
        "completed cases vs case_completed events": (kinds["completed"], event_counts.get("case_completed", 0)),
        "completed tasks vs task_completed events": (tasks_done, event_counts.get("task_completed", 0)),
        "step incidents vs incident_opened events": (step_incidents, event_counts.get("incident_opened", 0)),
        "retries scheduled vs fired + pending": (event_counts.get("service_retry_scheduled", 0),
                                                 event_counts.get("service_retry", 0) + pending_retries),
        "notifications delivered vs received": (len(delivered_keys), len(delivered_keys & received_keys)),
        "payments by the applicants vs paid assessments": (counter.tally["payments"],
                                                            sum(1 for r in tax_rows if r.voucher_no)),
        "cases started by the counter vs cases": (counter.tally["started"], len(cases)),
    }
    mismatches = {what: pair for what, pair in audit.items() if pair[0] != pair[1]}
    for what, (a, b) in mismatches.items():
        problems.append(f"audit: {what}: {a} ≠ {b}")

    faults = sims.stats()
    figures: dict[str, Any] = {
        "cases": len(cases),
        "completed": kinds["completed"],
        "waiting_person": kinds["waiting_person"],
        "waiting_timer": kinds["waiting_timer"],
        "incidents": kinds["incidents"],
        "lost": len(lost),
        "tax_double_charges": len(doubles),
        "tax_orphans": len(orphans),
        "certificate_gaps": gaps,
        "certificates": len(certificates),
        "duplicates": duplicates,
        "overdue_jobs": len(overdue),
        "outbox_pending": outbox.get("pending", 0),
        "outbox_delivered": outbox.get("delivered", 0),
        "audit_mismatches": len(mismatches),
        "workers_killed": workers.killed,
        "workers_killed_holding_jobs": workers.killed_holding_jobs,
        "department_requests": sum(sum(v.values()) for v in faults.values()),
        "faults_injected": sum(v.get("error", 0) + v.get("timeout", 0) + v.get("drop", 0) for v in faults.values()),
        "answers_dropped": sum(v.get("drop", 0) for v in faults.values()),
        "service_retries": event_counts.get("service_retry", 0),
        "tasks_completed": tasks_done,
        "payments": counter.tally["payments"],
        "counter_errors": counter.tally["errors"],
    }
    if figures["outbox_pending"]:
        problems.append(f"{figures['outbox_pending']} outbox message(s) still pending")
    for err in counter.errors:
        problems.append(f"counter: {err}")
    if incident_rows:
        by_kind = Counter(f"{r.kind}: {r.message[:90]}" for r in incident_rows if r.status == "open")
        figures["incident_kinds"] = json.dumps(dict(by_kind.most_common(5)), ensure_ascii=False)
    return figures


FAILING = ("lost", "tax_double_charges", "tax_orphans", "certificate_gaps", "duplicates", "overdue_jobs",
           "outbox_pending", "audit_mismatches")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = SoakConfig()
    p.add_argument("--cases", type=int, default=d.cases)
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--kills", type=int, default=d.kills)
    p.add_argument("--kill-every", type=float, default=d.kill_every)
    p.add_argument("--fault-rate", type=float, default=d.fault_rate)
    p.add_argument("--drivers", type=int, default=d.drivers)
    p.add_argument("--max-inflight", type=int, default=d.max_inflight)
    p.add_argument("--minutes", type=float, default=d.minutes, help="stop starting cases after this long")
    p.add_argument("--settle", type=float, default=d.settle)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--postgres", default=os.environ.get("ONEWINDOW_BENCH_POSTGRES_URL"),
                   help="PostgreSQL server URL (default ONEWINDOW_BENCH_POSTGRES_URL); the run uses <db>_soak")
    p.add_argument("--database", default=None, help="run on this (empty) database instead of a fresh <db>_soak")
    p.add_argument("--log-dir", type=Path, default=None)
    args = p.parse_args(argv)
    if not (args.database or args.postgres):
        p.error("give --postgres URL or set ONEWINDOW_BENCH_POSTGRES_URL (eval \"$(scripts/pg env)\")")
    config = SoakConfig(cases=args.cases, workers=args.workers, kills=args.kills, kill_every=args.kill_every,
                        fault_rate=args.fault_rate, drivers=args.drivers, max_inflight=args.max_inflight,
                        minutes=args.minutes, settle=args.settle, seed=args.seed, log_dir=args.log_dir)
    url = args.database or soak_database(args.postgres)
    result = run_soak(url, config, say=lambda line: print(line, file=sys.stderr, flush=True))
    for name, value in result.figures.items():
        print(f"{name}: {value}")
    for problem in result.problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 0 if result.ok and not any(result.figures.get(k) for k in FAILING) else 1


if __name__ == "__main__":
    sys.exit(main())
