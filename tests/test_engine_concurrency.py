"""Two clerks finishing parallel branches of one case at the same moment: one wins, the other
is told the case changed, and after a refresh both pieces of work are in the case."""
from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest

from engine import Actor, Conflict, Engine
from storage.db import Database
from tests.conftest import bpmn, open_task

A = Actor.of("reviewer_a", "reviewer")
B = Actor.of("reviewer_b", "reviewer")


def setup_case(engine: Engine) -> tuple[int, int, int, int]:
    engine.deploy(bpmn("two_reviews.bpmn"), "designer")
    case = engine.start_case("two_reviews", {}, A)
    a = open_task(engine, case.id, "review_a")["id"]
    b = open_task(engine, case.id, "review_b")["id"]
    return case.id, a, b, engine.get_case(case.id)["lock_version"]


def complete(engine: Engine, task_id: int, data: dict, actor: Actor, version: int) -> str:
    try:
        engine.complete_task(task_id, data, actor, expected_version=version)
        return "ok"
    except Conflict:
        return "conflict"


def finish_and_check(engine: Engine, case_id: int, results: dict[str, str], tasks: dict[str, int]) -> None:
    assert sorted(results.values()) == ["conflict", "ok"], results
    loser = next(k for k, v in results.items() if v == "conflict")
    # the loser refreshes and submits again: nothing was lost
    version = engine.get_case(case_id)["lock_version"]
    assert complete(engine, tasks[loser], {f"opinion_{loser}": f"{loser} 同意"}, A if loser == "a" else B,
                    version) == "ok"
    case = engine.get_case(case_id)
    assert case["status"] == "completed"
    data = engine.case_data(case_id)
    assert data["opinion_a"] == "a 同意" and data["opinion_b"] == "b 同意"
    completed = [e for e in engine.history(case_id) if e["kind"] == "task_completed"]
    assert len(completed) == 2


def test_two_threads_complete_parallel_tasks(engine: Engine) -> None:
    case_id, a, b, version = setup_case(engine)
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def run(key: str, task_id: int, actor: Actor) -> None:
        barrier.wait()
        results[key] = complete(engine, task_id, {f"opinion_{key}": f"{key} 同意"}, actor, version)

    threads = [threading.Thread(target=run, args=("a", a, A)), threading.Thread(target=run, args=("b", b, B))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    finish_and_check(engine, case_id, results, {"a": a, "b": b})


def test_two_threads_complete_the_same_task(engine: Engine) -> None:
    case_id, a, _b, version = setup_case(engine)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def run(actor: Actor) -> None:
        barrier.wait()
        results.append(complete(engine, a, {"who": actor.name}, actor, version))

    threads = [threading.Thread(target=run, args=(actor,)) for actor in (A, B)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["conflict", "ok"]
    rows = [t for t in engine.case_tasks(case_id, open_only=False) if t["bpmn_id"] == "review_a"]
    assert len(rows) == 1 and rows[0]["state"] == "completed"


def _process_complete(url: str, registry_names: Any, task_id: int, key: str, version: int,
                      start: Any, out: Any) -> None:
    engine = Engine(Database(url))
    start.wait(30)
    actor = Actor.of(f"reviewer_{key}", "reviewer")
    out.put((key, complete(engine, task_id, {f"opinion_{key}": f"{key} 同意"}, actor, version)))


def test_two_processes_complete_parallel_tasks(engine: Engine, db: Database) -> None:
    case_id, a, b, version = setup_case(engine)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    out = ctx.Queue()
    procs = [ctx.Process(target=_process_complete, args=(db.url, None, task, key, version, start, out))
             for key, task in (("a", a), ("b", b))]
    for p in procs:
        p.start()
    start.set()
    results = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    finish_and_check(engine, case_id, results, {"a": a, "b": b})


@pytest.mark.parametrize("n", [8])
def test_many_cases_started_at_once_get_distinct_numbers(engine: Engine, n: int) -> None:
    engine.deploy(bpmn("two_reviews.bpmn"), "designer")
    numbers: list[str] = []
    barrier = threading.Barrier(n)

    def run() -> None:
        barrier.wait()
        numbers.append(engine.start_case("two_reviews", {}, A).case_number)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(numbers) == [f"2026-{i:06d}" for i in range(1, n + 1)]


def claim_at_once(engine: Engine, task_id: int, clerks: list[Actor]) -> dict[str, str]:
    """Each clerk claims the task at the same moment: clerk -> the holder they were given, or the
    conflict they were told."""
    barrier = threading.Barrier(len(clerks))
    results: dict[str, str] = {}

    def run(actor: Actor) -> None:
        barrier.wait()
        try:
            results[actor.name] = engine.claim_task(task_id, actor)["assignee"]
        except Conflict as err:
            results[actor.name] = f"conflict: {err}"

    threads = [threading.Thread(target=run, args=(c,)) for c in clerks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_clerks_claiming_one_task_at_once_get_it_exactly_once(engine: Engine) -> None:
    """Four reviewers press 认领 on the same task at the same moment, over and over: each time one
    holds it, the others are told who does, and the history has one claim."""
    engine.deploy(bpmn("two_reviews.bpmn"), "designer")
    clerks = [Actor.of(f"reviewer_{i}", "reviewer") for i in range(4)]
    for _round in range(6):
        case = engine.start_case("two_reviews", {}, A)
        results = claim_at_once(engine, open_task(engine, case.id, "review_a")["id"], clerks)
        holder = open_task(engine, case.id, "review_a")["assignee"]
        assert holder in results and results[holder] == holder, results
        others = [v for k, v in results.items() if k != holder]
        assert len(others) == len(clerks) - 1
        assert all(v.startswith("conflict") and holder in v for v in others), results
        claims = [e for e in engine.history(case.id) if e["kind"] == "task_claimed"]
        assert [e["actor"] for e in claims] == [holder]
