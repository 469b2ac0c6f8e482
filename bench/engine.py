"""Engine benchmark: durable cases per second against bare in-memory SpiffWorkflow, and the task list.

    .venv/bin/python bench/engine.py [--process secondhand_transfer] [--cases 300] [--runs 3]
                                     [--tasklist-cases 100000] [--queries 300] [--postgres URL] [--no-simple]

Prints one `name: value` line per figure: medians over --runs. Each durable run follows an
in-memory run of its own and a ratio is that pair's quotient (the median of those is printed),
so load from other work on the machine, which comes and goes, falls on both sides of a ratio.
PostgreSQL figures are printed when --postgres or ONEWINDOW_BENCH_POSTGRES_URL is given
(`eval "$(scripts/pg env)"` sets it); each run gets a fresh database of its own on that server,
`<name>_engine`, so other benchmarks using the bench database are left alone.

**The process (`--process`, default `secondhand_transfer`)** — the second-hand transfer with its
callee `issue_and_archive`: 20 service tasks (contract, materials, stage clocks, four parallel
checks, tax assessment and payment check, transfer in the register, certificate, and the call
activity's share / delivery / notification), two script tasks, the payment waited for by a
receive task with a polling timer (armed, never due), event subprocesses listening for deadline
alerts, and three user tasks (accept, review, hand over). A durable case is one start, three
completions and one `tax_paid` message (five transactions), plus the task lookups a clerk makes
(`case_tasks`), on SQLite and on PostgreSQL:

    inmemory_process_cases_per_s      the same BPMN files run by bare SpiffWorkflow
    durable_cases_per_s_sqlite        durable_ratio_sqlite       (durable / in memory)
    durable_cases_per_s_postgresql    durable_ratio_postgresql
    steps_per_case                    transactions per durable case

Service tasks: both runs get the *same stubbed operator results*. Before measuring, one case is
run durably with the application's real operators against the sandbox departments (a world built
the way `onewindow simulate` builds it: a registered flat, an online-signed contract) and an
automated clerk (`webapp.simulate.clerk_answer`) who also pays the tax, so the tax office's
`tax_paid` message arrives. What every operator returned (by service task) and what the clerk
did are recorded. The durable runs then use a registry with the same operators and parameters
whose functions return the recorded results, and the in-memory run uses a stock
`PythonScriptEngine` whose `call_service` returns them; both replay the clerk's actions.
Why stubs rather than the real operators in both: the real operators are department work (the
register's writes and rule queries, the tax arithmetic, the sandboxes' own tables) that needs a
database and a session — it cannot run "in memory", and what it costs is the departments', not
the engine's. With the same results in both runs every gateway routes the same way, the
workflows have the same tasks and data, and the ratio compares the engine's overhead only:
locking, reading and writing the case, the task index, audit rows, timers, serialization, the
script sandbox, savepoints around handlers, the message buffer. (Expressions run in the
engine's RestrictedPython sandbox in the durable runs and in SpiffWorkflow's plain `eval` in
memory: the sandbox is part of the engine, so its cost counts as overhead.)

**The simple process** (as in issue #2, skip with `--no-simple`): processes/
general_registration.bpmn, a parallel split with a service task (the real calendar operator in
both runs) and three user tasks; a durable case is a start and three completions:

    inmemory_cases_per_s  durable_cases_per_s  durable_ratio                      (SQLite)
    durable_cases_per_s_simple_postgresql  durable_ratio_simple_postgresql       (issue #2 printed
        these as durable_cases_per_s_postgresql / durable_ratio_postgresql: those names are now the process's)
    tasklist_p50_ms  tasklist_p95_ms  (and _postgresql): the task list over --tasklist-cases stored cases
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# keep bench/ off the path: its http.py would shadow the standard library's `http` (webapp imports it)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow  # noqa: E402
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment  # noqa: E402
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser  # noqa: E402
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import func, insert, select, text  # noqa: E402

from adapters.factory import sandbox_database, sandbox_departments  # noqa: E402
from domain import calendar  # noqa: E402
from domain.clock import SHANGHAI, FrozenClock  # noqa: E402
from engine import SYSTEM, Actor, Engine, EngineSettings  # noqa: E402
from engine.sandbox import default_helpers  # noqa: E402
from handlers.registry import Operator, OperatorRegistry, default_registry  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Case, HumanTask, ProcessVersion  # noqa: E402
from webapp.simulate import CLERKS, WorldBuilder, clerk_answer, world_for  # noqa: E402

PROCESSES = ROOT / "processes"
BPMN = PROCESSES / "general_registration.bpmn"
CLERK = Actor.of("bench_clerk", "window_clerk")
REVIEWER = Actor.of("bench_reviewer", "reviewer")
REGISTRAR = Actor.of("bench_registrar", "registrar")
DATA = {"applicant": "张伟", "id_number": "330106199001011234", "promised_workdays": 5}
START = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)


# ---------------------------------------------------------------------------- databases

def fresh_database(url: str | None) -> Database:
    """A new SQLite file, or a new database `<name>_engine` on the PostgreSQL server of `url`."""
    if url is None:
        path = Path(tempfile.mkdtemp(prefix="onewindow-bench-")) / "bench.sqlite3"
        db = Database(f"sqlite:///{path}")
        upgrade(db)
        return db
    from bench import databases

    db = Database(databases.recreate(url, "_engine"), pool_size=10)
    upgrade(db)
    return db


# ---------------------------------------------------------------------------- simple process: durable

def run_durable(engine: Engine, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        case = engine.start_case("general_registration", DATA, CLERK)
        for bpmn_id, actor, data in (("accept", CLERK, {"materials_complete": True}),
                                     ("review", REVIEWER, {"approved": True}),
                                     ("register", REGISTRAR, {})):
            task = next(t for t in engine.case_tasks(case.id) if t["bpmn_id"] == bpmn_id)
            engine.complete_task(task["id"], data, actor)
    elapsed = time.perf_counter() - t0
    return n / elapsed


# ---------------------------------------------------------------------------- simple process: in memory

class BareEnvironment(TaskDataEnvironment):
    def call_service(self, context, operation_name, operation_params, **kwargs):  # type: ignore[no-untyped-def]
        args = {k: v["value"] for k, v in operation_params.items()}
        due = calendar.add_workdays(args["start"], args["days"])
        return json.dumps({"start": args["start"], "days": args["days"], "due": due})


def run_inmemory(n: int) -> float:
    parser = SpiffBpmnParser()
    parser.add_bpmn_file(str(BPMN))
    spec = parser.get_spec("general_registration")
    subs = parser.get_subprocess_specs("general_registration")
    env = BareEnvironment({"today": lambda: datetime.now(UTC).date().isoformat()})
    script_engine = PythonScriptEngine(environment=env)
    t0 = time.perf_counter()
    for _ in range(n):
        wf = BpmnWorkflow(spec, subs, script_engine=script_engine)
        for task in wf.get_tasks(state=TaskState.READY):
            task.data.update(DATA)
        wf.do_engine_steps()
        for bpmn_id, data in (("accept", {"materials_complete": True}), ("review", {"approved": True}),
                              ("register", {})):
            task = next(t for t in wf.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.bpmn_id == bpmn_id)
            task.data.update(data)
            task.run()
            wf.do_engine_steps()
        assert wf.is_completed()
    return n / (time.perf_counter() - t0)


# ---------------------------------------------------------------------------- the process: recording

@dataclass
class Scenario:
    """One case of a process as the office works it, to replay: start data, what the clerks and the
    tax office did, and what every service task's operator answered."""

    process: str
    start: dict[str, Any]
    actions: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (task|message, id, data)
    results: dict[str, Any] = field(default_factory=dict)  # service task bpmn id -> operator result (JSON)

    @property
    def steps(self) -> int:
        return 1 + len(self.actions)


def _iso(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def record_scenario(process: str) -> Scenario:
    """Run one case with the real operators and sandbox departments; record answers and actions."""
    folder = Path(tempfile.mkdtemp(prefix="onewindow-bench-record-"))
    db = Database(f"sqlite:///{folder / 'record.sqlite3'}")
    upgrade(db)
    clock = FrozenClock(START)
    results: dict[str, Any] = {}

    def recording(op: Operator) -> Operator:
        def call(ctx: Any, **args: Any) -> Any:
            out = op(ctx, args)
            if ctx.bpmn_id in results:
                raise RuntimeError(f"service task {ctx.bpmn_id} ran twice in one case; the benchmark replays one "
                                   f"result per service task")
            results[ctx.bpmn_id] = json.loads(json.dumps(out, ensure_ascii=False, default=_iso))
            return out

        return Operator(op.name, call, op.params, op.description, wants_context=True)

    registry = OperatorRegistry({name: recording(op) for name, op in default_registry().operators.items()})
    engine = Engine(db, registry, clock, EngineSettings(step_time_limit=30.0),
                    services=sandbox_departments(sandbox_database(db), clock))
    engine.deploy_paths([PROCESSES], "bench")
    scenario = Scenario(process, world_for(process, WorldBuilder(engine, clock.now()), 1).starts[0],
                        results=results)
    case = engine.start_case(process, scenario.start, CLERKS)
    for _ in range(100):
        tasks = engine.case_tasks(case.id)
        if tasks:
            task = tasks[0]
            answer = clerk_answer(process, task["bpmn_id"])
            if answer is None:
                raise RuntimeError(f"{process}: no automated answer for task {task['bpmn_id']}")
            engine.complete_task(task["id"], answer, CLERKS)
            scenario.actions.append(("task", task["bpmn_id"], answer))
            continue
        if engine.get_case(case.id)["status"] == "completed":
            break
        tax = engine.case_data(case.id).get("tax")
        paid = any(kind == "message" for kind, _, _ in scenario.actions)
        if isinstance(tax, dict) and tax.get("status") == "assessed" and not paid:
            assessment = engine.services.tax.pay(tax["assessment_no"], "bench-pay")
            payload = {"assessment_no": tax["assessment_no"], "voucher_no": assessment.voucher_no}
            engine.send_message(case.id, "tax_paid", payload, SYSTEM, key=f"tax:{tax['assessment_no']}")
            scenario.actions.append(("message", "tax_paid", payload))
            continue
        raise RuntimeError(f"{process}: the case waits for something the benchmark does not drive "
                           f"(incidents: {engine.incidents(case_id=case.id)})")
    if engine.get_case(case.id)["status"] != "completed" or engine.incidents(case_id=case.id):
        raise RuntimeError(f"{process}: the recorded case did not complete cleanly: {engine.incidents()}")
    db.dispose()
    return scenario


def stub_registry(scenario: Scenario) -> OperatorRegistry:
    """The application's operators (same names and parameters, so deployment checks pass) answering
    with the recorded results."""

    def stub(op: Operator) -> Operator:
        def call(ctx: Any, **_args: Any) -> Any:
            return scenario.results[ctx.bpmn_id]

        return Operator(op.name, call, op.params, op.description, wants_context=True)

    return OperatorRegistry({name: stub(op) for name, op in default_registry().operators.items()})


# ---------------------------------------------------------------------------- the process: replaying

def scenario_engine(url: str | None, scenario: Scenario) -> Engine:
    engine = Engine(fresh_database(url), stub_registry(scenario), FrozenClock(START))
    engine.deploy_paths([PROCESSES], "bench")
    return engine


def run_durable_scenario(engine: Engine, scenario: Scenario, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        case = engine.start_case(scenario.process, scenario.start, CLERKS)
        for kind, name, data in scenario.actions:
            if kind == "task":
                task = next(t for t in engine.case_tasks(case.id) if t["bpmn_id"] == name)
                engine.complete_task(task["id"], data, CLERKS)
            else:
                engine.send_message(case.id, name, data, SYSTEM, key=f"bench:{case.id}:{name}")
    return n / (time.perf_counter() - t0)


def check_completed(engine: Engine, expected: int) -> None:
    with engine.db.read() as s:
        done = s.scalar(select(func.count()).select_from(Case).where(Case.status == "completed"))
    if done != expected:
        raise RuntimeError(f"only {done} of {expected} durable cases completed: {engine.incidents()[:3]}")


class ReplayScriptEngine(PythonScriptEngine):
    """SpiffWorkflow's stock script engine; service tasks answer with the recorded results."""

    def __init__(self, results: dict[str, Any], helpers: dict[str, Any]) -> None:
        super().__init__(environment=TaskDataEnvironment(helpers))
        self.results = results

    def call_service(self, task: Any, **kwargs: Any) -> str:
        return json.dumps(self.results[task.task_spec.bpmn_id], ensure_ascii=False)


def run_inmemory_scenario(scenario: Scenario, n: int) -> float:
    parser = SpiffBpmnParser()
    parser.add_bpmn_files([str(p) for p in sorted(PROCESSES.glob("*.bpmn"))])
    spec = parser.get_spec(scenario.process)
    subs = parser.get_subprocess_specs(scenario.process)
    clock = FrozenClock(START)
    script_engine = ReplayScriptEngine(scenario.results, default_helpers(clock.now))

    t0 = time.perf_counter()
    for _ in range(n):  # one do_engine_steps per action is all these cases need (checked: they complete)
        wf = BpmnWorkflow(spec, subs, script_engine=script_engine)
        wf.task_tree.data.update(scenario.start)
        for task in wf.get_tasks(state=TaskState.READY):
            task.data.update(scenario.start)
        wf.do_engine_steps()
        for kind, name, data in scenario.actions:
            if kind == "task":
                task = next(t for t in wf.get_tasks(state=TaskState.READY, manual=True)
                            if t.task_spec.bpmn_id == name)
                task.data.update(data)
                task.run()
            else:
                wf.send_event(BpmnEvent(MessageEventDefinition(name), payload=data))
            wf.do_engine_steps()
        if not wf.is_completed():
            raise RuntimeError(f"{scenario.process} did not complete in memory")
    return n / (time.perf_counter() - t0)


def durable_scenario_once(url: str | None, scenario: Scenario, cases: int) -> float:
    engine = scenario_engine(url, scenario)
    warm = max(10, cases // 10)
    run_durable_scenario(engine, scenario, warm)  # warm-up: caches, connections
    rate = run_durable_scenario(engine, scenario, cases)
    check_completed(engine, warm + cases)
    engine.db.dispose()
    return rate


# ---------------------------------------------------------------------------- task list

def fill_cases(db: Database, n: int) -> None:
    """n stored cases, each with one open task spread over the posts (bulk insert, no engine)."""
    roles = ["window_clerk", "reviewer", "registrar", "certificate_desk"]
    now = datetime.now(UTC)
    with db.write() as s:
        version_id = s.query(ProcessVersion.id).first()[0]
    batch = 10_000
    for start in range(0, n, batch):
        rows = range(start, min(n, start + batch))
        with db.write() as s:
            s.execute(insert(Case), [{
                "id": 1_000_000 + i, "case_number": f"2025-{i:07d}", "process_id": "general_registration",
                "process_version_id": version_id, "status": "active", "open_incidents": 0, "buffered_messages": 0,
                "lock_version": 1, "started_by": "bench", "started_at": now - timedelta(minutes=i),
                "updated_at": now, "summary": {"applicant": f"申请人{i}"}, "state": b"{}",
            } for i in rows])
            s.execute(insert(HumanTask), [{
                "case_id": 1_000_000 + i, "task_guid": f"00000000-0000-4000-8000-{i:012d}", "bpmn_id": "review",
                "name": "审核", "lane": None, "role": roles[i % len(roles)], "form": None, "state": "open",
                "assignee": "bench_reviewer" if i % 97 == 0 else None,
                "created_at": now - timedelta(minutes=n - i),
            } for i in rows])
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def run_tasklist(engine: Engine, queries: int) -> tuple[float, float]:
    for _ in range(20):
        engine.task_list(REVIEWER)
    samples = []
    for _ in range(queries):
        t0 = time.perf_counter()
        rows = engine.task_list(REVIEWER)
        samples.append((time.perf_counter() - t0) * 1000)
        assert len(rows) == 50
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


# ---------------------------------------------------------------------------- main

def durable_simple_once(url: str | None, cases: int) -> float:
    db = fresh_database(url)
    engine = Engine(db)
    engine.deploy_paths([BPMN], "bench")
    run_durable(engine, max(10, cases // 10))  # warm-up: caches, connections
    rate = run_durable(engine, cases)
    db.dispose()
    return rate


def tasklist_figures(url: str | None, args: argparse.Namespace) -> tuple[float, float]:
    db = fresh_database(url)
    engine = Engine(db)
    engine.deploy_paths([BPMN], "bench")
    fill_cases(db, args.tasklist_cases)
    p50, p95 = run_tasklist(engine, args.queries)
    db.dispose()
    return p50, p95


Series = dict[str, list[float]]


def paired(targets: list[tuple[str, str | None]], runs: int, inmemory: Callable[[], float],
           durable: Callable[[str | None], float]) -> tuple[list[float], Series, Series]:
    """Each durable run right after an in-memory run of its own, and the ratio taken per pair:
    other work on the machine comes and goes, and a ratio of two medians measured minutes apart
    would compare different loads. Each run starts on a collected heap: workflows are reference
    cycles, and the garbage one run leaves would otherwise be collected during the next."""
    mem: list[float] = []
    rates: dict[str, list[float]] = {label: [] for label, _ in targets}
    ratios: dict[str, list[float]] = {label: [] for label, _ in targets}
    for _ in range(runs):
        for label, url in targets:
            gc.collect()
            m = inmemory()
            gc.collect()
            d = durable(url)
            mem.append(m)
            rates[label].append(d)
            ratios[label].append(d / m)
    return mem, rates, ratios


def _print(name: str, value: float, digits: int = 1) -> None:
    print(f"{name}: {value:.{digits}f}", flush=True)


def _targets(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    return [("sqlite", None)] + ([("postgresql", args.postgres)] if args.postgres else [])


def simple_figures(args: argparse.Namespace) -> None:
    mem, rates, ratios = paired(_targets(args), args.runs, lambda: run_inmemory(args.cases),
                                lambda url: durable_simple_once(url, args.cases))
    median = statistics.median
    _print("inmemory_cases_per_s", median(mem))
    _print("durable_cases_per_s", median(rates["sqlite"]))
    _print("durable_ratio", median(ratios["sqlite"]), 3)
    if args.tasklist_cases:
        p50, p95 = tasklist_figures(None, args)
        _print("tasklist_p50_ms", p50, 2)
        _print("tasklist_p95_ms", p95, 2)
    if args.postgres:
        _print("durable_cases_per_s_simple_postgresql", median(rates["postgresql"]))
        _print("durable_ratio_simple_postgresql", median(ratios["postgresql"]), 3)
        if args.tasklist_cases:
            p50, p95 = tasklist_figures(args.postgres, args)
            _print("tasklist_p50_ms_postgresql", p50, 2)
            _print("tasklist_p95_ms_postgresql", p95, 2)


def process_figures(args: argparse.Namespace) -> None:
    scenario = record_scenario(args.process)
    targets = _targets(args)
    mem, rates, ratios = paired(targets, args.runs, lambda: run_inmemory_scenario(scenario, args.cases),
                                lambda url: durable_scenario_once(url, scenario, args.cases))
    _print("inmemory_process_cases_per_s", statistics.median(mem))
    _print("steps_per_case", scenario.steps, 0)
    for label, _url in targets:
        _print(f"durable_cases_per_s_{label}", statistics.median(rates[label]))
        _print(f"durable_ratio_{label}", statistics.median(ratios[label]), 3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--process", default="secondhand_transfer",
                        help="process for the *_sqlite / *_postgresql figures (one `onewindow simulate` can build; "
                             "'none' skips them)")
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasklist-cases", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--postgres", default=os.environ.get("ONEWINDOW_BENCH_POSTGRES_URL"))
    parser.add_argument("--no-simple", dest="simple", action="store_false",
                        help="skip the simple process (general_registration) and the task list")
    args = parser.parse_args(argv)
    if args.process != "none":
        process_figures(args)
    if args.simple:
        simple_figures(args)


if __name__ == "__main__":
    main()
