"""What an engine step costs as the office's history grows: 10^3, 10^5 and 10^6 cases stored.

    .venv/bin/python bench/growth.py [--sizes 1000,100000,1000000] [--cases 40] [--database-url URL] [--sqlite]

For each size: a fresh database filled with that many stored cases (bench/stored_cases.py), then
--cases second-hand transfers (processes/secondhand_transfer.bpmn, with its callee
issue_and_archive) started and worked for real through the engine, with the application's
operators against the departments' sandboxes: the world built the way `onewindow simulate` builds
it, automated clerks (`webapp.simulate.clerk_answer`) and the applicant paying the tax. Each
`Engine.complete_task` (acceptance, review, hand-over: a durable step — lock, load, run, save the
case, its task index, audit rows, deadline clock, stage times) is timed; a few cases first warm up.

Figures (milliseconds): step_ms_1e3, step_ms_1e5, step_ms_1e6 (medians), step_p95_ms_<size>,
start_ms_<size> (median of start_case); with --sqlite the same on SQLite files, suffixed `_sqlite`
(its bulk load is executemany: slower). PostgreSQL: a database `<name>_engine` made afresh for each
size beside the database of --database-url, by default beside `onewindow_bench_growth` on
ONEWINDOW_BENCH_POSTGRES_URL's server (`eval "$(scripts/pg env)"`).
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# bench/ itself off the path (its http.py would shadow the standard library's), the project on it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from bench.stored_cases import bench_database_url, bench_engine, database_url_arg, store_cases  # noqa: E402
from engine import Engine  # noqa: E402
from webapp.simulate import CLERKS, ROUND, WorldBuilder, _pay_if_assessed, clerk_answer, world_for  # noqa: E402

PROCESS = "secondhand_transfer"
WARM_UP = 5


def timed(samples: list[float], call: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            samples.append((time.perf_counter() - t0) * 1000)

    return run


def work_cases(engine: Engine, starts: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Start cases with these data and work them to the end; (ms of each start, ms of each task completion)."""
    start_ms: list[float] = []
    step_ms: list[float] = []
    start, complete = timed(start_ms, engine.start_case), timed(step_ms, engine.complete_task)
    case_ids = [start(PROCESS, data, CLERKS).id for data in starts]
    paid: set[int] = set()
    for _round in range(50):
        active = [c for c in case_ids if engine.get_case(c)["status"] == "active"]
        if not active:
            return start_ms, step_ms
        for case_id in active:
            for task in engine.case_tasks(case_id):
                answer = clerk_answer(task["process_id"], task["bpmn_id"])
                if answer is None:
                    raise RuntimeError(f"no automated answer for task {task['bpmn_id']} of case {case_id}")
                complete(task["id"], answer, CLERKS)
            if case_id not in paid and not engine.case_tasks(case_id):
                _pay_if_assessed(engine, case_id, paid)
        engine.clock.advance(ROUND)
        engine.run_due_jobs("bench")
    raise RuntimeError(f"cases did not complete: {[engine.get_case(c)['status'] for c in case_ids]}; "
                       f"incidents: {engine.incidents()[:3]}")


def label(n: int) -> str:
    exponent = round(math.log10(n)) if n > 0 else 0
    return f"1e{exponent}" if 10 ** exponent == n else str(n)


def measure(url: str | None, size: int, cases: int, say: Callable[[str], None]) -> dict[str, float]:
    engine = bench_engine(url, sandboxes=True)
    store_cases(engine, size, log=say)
    starts = world_for(PROCESS, WorldBuilder(engine, engine.clock.now()), WARM_UP + cases).starts
    work_cases(engine, starts[:WARM_UP])
    start_ms, step_ms = work_cases(engine, starts[WARM_UP:])
    engine.db.dispose()
    step_ms.sort()
    return {"step_ms": statistics.median(step_ms), "step_p95_ms": step_ms[max(0, int(len(step_ms) * 0.95) - 1)],
            "start_ms": statistics.median(start_ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,100000,1000000", help="stored cases, comma-separated")
    parser.add_argument("--cases", type=int, default=40, help="cases worked through the engine per size")
    parser.add_argument("--sqlite", action="store_true", help="also on SQLite files")
    database_url_arg(parser)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    targets: list[tuple[str, str | None]] = [("", bench_database_url(args.database_url, "onewindow_bench_growth"))]
    if args.sqlite:
        targets.append(("_sqlite", None))
    for suffix, url in targets:
        for size in sizes:
            figures = measure(url, size, args.cases, say)
            for name, value in figures.items():
                print(f"{name}_{label(size)}{suffix}: {value:.2f}", flush=True)


if __name__ == "__main__":
    main()
