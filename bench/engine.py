"""Engine benchmark: durable cases per second against bare in-memory SpiffWorkflow, and the task list.

    .venv/bin/python bench/engine.py [--cases 300] [--runs 3] [--tasklist-cases 100000] [--postgres URL]

Prints one `name: value` line per figure (medians over --runs). The reference process is
processes/general_registration.bpmn: a parallel split with a service task, three user tasks.
PostgreSQL figures are printed too when --postgres or ONEWINDOW_BENCH_POSTGRES_URL is given.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from SpiffWorkflow.bpmn import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment  # noqa: E402
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from domain import calendar  # noqa: E402
from engine import Actor, Engine  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Case, HumanTask, ProcessVersion  # noqa: E402

BPMN = ROOT / "processes" / "general_registration.bpmn"
CLERK = Actor.of("bench_clerk", "window_clerk")
REVIEWER = Actor.of("bench_reviewer", "reviewer")
REGISTRAR = Actor.of("bench_registrar", "registrar")
DATA = {"applicant": "张伟", "id_number": "330106199001011234", "promised_workdays": 5}


# ---------------------------------------------------------------------------- durable

def fresh_database(url: str | None) -> Database:
    if url is None:
        path = Path(tempfile.mkdtemp(prefix="onewindow-bench-")) / "bench.sqlite3"
        db = Database(f"sqlite:///{path}")
        upgrade(db)
        return db
    db = Database(url, pool_size=10)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade(db)
    return db


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


# ---------------------------------------------------------------------------- in memory

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

def bench_database(label: str, url: str | None, args: argparse.Namespace) -> dict[str, float]:
    figures: dict[str, list[float]] = {"durable": []}
    for _ in range(args.runs):
        db = fresh_database(url)
        engine = Engine(db)
        engine.deploy_paths([BPMN], "bench")
        run_durable(engine, max(10, args.cases // 10))  # warm-up: caches, connections
        figures["durable"].append(run_durable(engine, args.cases))
        db.dispose()
    out = {f"durable_cases_per_s{label}": statistics.median(figures["durable"])}
    if args.tasklist_cases:
        db = fresh_database(url)
        engine = Engine(db)
        engine.deploy_paths([BPMN], "bench")
        fill_cases(db, args.tasklist_cases)
        p50, p95 = run_tasklist(engine, args.queries)
        out[f"tasklist_p50_ms{label}"] = p50
        out[f"tasklist_p95_ms{label}"] = p95
        db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasklist-cases", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--postgres", default=os.environ.get("ONEWINDOW_BENCH_POSTGRES_URL"))
    args = parser.parse_args()

    inmemory = statistics.median(run_inmemory(args.cases) for _ in range(args.runs))
    results = bench_database("", None, args)
    print(f"inmemory_cases_per_s: {inmemory:.1f}")
    print(f"durable_cases_per_s: {results['durable_cases_per_s']:.1f}")
    print(f"durable_ratio: {results['durable_cases_per_s'] / inmemory:.3f}")
    for key in ("tasklist_p50_ms", "tasklist_p95_ms"):
        if key in results:
            print(f"{key}: {results[key]:.2f}")
    if args.postgres:
        pg = bench_database("_postgresql", args.postgres, args)
        print(f"durable_cases_per_s_postgresql: {pg['durable_cases_per_s_postgresql']:.1f}")
        print(f"durable_ratio_postgresql: {pg['durable_cases_per_s_postgresql'] / inmemory:.3f}")
        for key in ("tasklist_p50_ms_postgresql", "tasklist_p95_ms_postgresql"):
            if key in pg:
                print(f"{key}: {pg[key]:.2f}")


if __name__ == "__main__":
    main()
