"""Scripts that try to exhaust memory or CPU end as incidents naming the limit; the process survives,
gives the memory back, and other cases (and other branches of the same case) keep running.

tests/test_sandbox.py covers single huge operations refused by size guards; here the attacks are
many small allocations adding up within the time limit (caught by the memory check at the
deadline ticks), C code calling back per item (`map`, `sorted(key=…)`), and work hidden in one C
call (`pow` with a modulus, rendering an aliased structure). The last part runs the attacks inside
real `onewindow worker` processes, with the worker's RLIMIT_AS backstop (`--memory-limit`).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from domain.clock import Clock
from engine import Engine, EngineSettings, sandbox
from storage.db import Database
from storage.models import Case
from tests.conftest import CLERK, open_task
from tests.diagrams import chain, definitions, script_task, user_task

ROOT = Path(__file__).resolve().parent.parent
STEP_LIMIT = 2.0
MEMORY_MB = 64  # the scripts' memory allowance in these tests (the default is 256)
MB = 2 ** 20


def parallel(script: str) -> bytes:
    """start → split → (script `calc` → end_a) ‖ (user task `review` → end_b): a branch that must go on."""
    return definitions("\n".join([
        '<bpmn:startEvent id="start"/>',
        '<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="split"/>',
        '<bpmn:parallelGateway id="split"/>',
        '<bpmn:sequenceFlow id="f1" sourceRef="split" targetRef="calc"/>',
        '<bpmn:sequenceFlow id="f2" sourceRef="split" targetRef="review"/>',
        script_task(script),
        user_task(),
        '<bpmn:sequenceFlow id="f3" sourceRef="calc" targetRef="end_a"/>',
        '<bpmn:sequenceFlow id="f4" sourceRef="review" targetRef="end_b"/>',
        '<bpmn:endEvent id="end_a"/>',
        '<bpmn:endEvent id="end_b"/>',
    ]), "attack")


@pytest.fixture
def engine(tmp_path: Path, sqlite_template: Path, registry, clock, monkeypatch) -> Engine:
    """On SQLite only: the database plays no part in these limits (the worker test below uses both)."""
    path = tmp_path / "case.sqlite3"
    shutil.copy(sqlite_template, path)
    monkeypatch.setattr(sandbox, "MAX_SCRIPT_MEMORY_MB", MEMORY_MB)
    db = Database(f"sqlite:///{path}")
    yield Engine(db, registry, clock, EngineSettings(step_time_limit=STEP_LIMIT))
    db.dispose()


def run_attack(engine: Engine, script: str, data: dict | None = None) -> tuple[dict, float, int]:
    """Deploy the attack beside a user task, start a case; (its incident, seconds taken, RSS growth)."""
    engine.deploy([("attack.bpmn", parallel(script))], "designer")
    sandbox.release_memory()
    before = sandbox.resident_bytes()
    started = time.monotonic()
    case = engine.start_case("attack", data or {}, CLERK)
    elapsed = time.monotonic() - started
    sandbox.release_memory()
    grown = sandbox.resident_bytes() - before
    incidents = engine.incidents(case_id=case.id)
    assert len(incidents) == 1, incidents
    incident = incidents[0]
    assert incident["bpmn_id"] == "calc"
    # the other branch went on: its task is open, the case is active, not stuck or failed
    assert open_task(engine, case.id, "review")
    assert engine.get_case(case.id)["status"] == "active"
    return incident, elapsed, grown


def assert_others_run(engine: Engine) -> None:
    engine.deploy([("ok.bpmn", definitions(chain(script_task("fee = sum(range(100))"), user_task()), "ok"))],
                  "designer")
    fine = engine.start_case("ok", {}, CLERK)
    assert engine.incidents(case_id=fine.id) == []
    assert engine.case_data(fine.id)["fee"] == 4950
    assert open_task(engine, fine.id, "review")


# ---------------------------------------------------------------------------- memory

MEMORY_ATTACKS = [
    pytest.param("x = []\nfor i in range(10 ** 6):\n    x.append([0] * 1000)", id="append-lists"),
    pytest.param("x = [[j for j in range(1000)] for i in range(10 ** 6)]", id="nested-comprehension"),
    pytest.param("x = {i: str(i) * 100 for i in range(10 ** 6)}", id="dict-comprehension"),
    pytest.param("x = []\nfor i in range(10 ** 6):\n    x.append('x' * 100000 + str(i))", id="kept-strings"),
    pytest.param("x = list(map(list, [range(10 ** 6)] * 1000))", id="map-in-c"),
    pytest.param("x = [range(10 ** 6)] * 1000\nx.sort(key=list)", id="sort-key-in-c"),
    pytest.param("x = []\nwhile len(x) >= 0:\n    try:\n        x.append([0] * 100000)\n    except Exception:\n"
                 "        pass", id="swallowing-the-error"),
]


@pytest.mark.parametrize("script", MEMORY_ATTACKS)
def test_memory_growth_ends_in_an_incident_naming_the_limit(engine, script):
    incident, elapsed, grown = run_attack(engine, script)
    assert incident["kind"] == "script_error"
    assert "脚本内存超过上限 64 MB" in incident["message"], incident["message"]
    assert elapsed < STEP_LIMIT + 1  # stopped by the memory check, long before the time limit
    assert grown < MEMORY_MB * MB / 2, f"{grown / MB:.0f} MB not given back"
    assert_others_run(engine)


def test_task_data_grown_in_place_is_not_saved_with_the_case(engine):
    """A list from the case data that the script grew is part of the task's data: without a limit
    it would be written to the database as hundreds of megabytes of JSON."""
    incident, _elapsed, grown = run_attack(engine, "while True:\n    items.append([0] * 1000)\n    if len(items) < 0:\n"
                                                   "        break", {"items": [], "owner": "张三"})
    assert "脚本内存超过上限" in incident["message"]
    assert grown < MEMORY_MB * MB / 2
    case_id = incident["case_id"]
    with engine.db.read() as s:
        assert len(s.get(Case, case_id).state) < 1 * MB
    data = engine.case_data(case_id)
    assert data["owner"] == "张三"
    assert data["items"] == sandbox.OVERSIZED


@pytest.mark.parametrize("script, words", [
    pytest.param("x = list(range(10 ** 8))", "range of 100000000 items is too large", id="list-range"),
    pytest.param("x = {i: str(i) for i in range(10 ** 7)}", "range of 10000000 items is too large", id="big-dict"),
    pytest.param("s = 'x'\nfor i in range(100):\n    s = s + s", "too large", id="string-doubling"),
    pytest.param("x = bytearray(10 ** 10)", "name 'bytearray' is not defined", id="bytearray"),
    pytest.param("a = list(range(1000))\nx = str([a] * 10 ** 6)", "str() of a list holding more than",
                 id="str-of-aliased-list"),
    pytest.param("a = list(range(1000))\nx = f'{[a] * 10 ** 6}'", "f-string field of a list", id="fstring-of-aliases"),
    pytest.param("a = list(range(1000))\nprint([a] * 10 ** 6)", "print() of a list", id="print-of-aliases"),
])
def test_single_huge_allocations_are_refused_before_they_happen(engine, script, words):
    incident, elapsed, grown = run_attack(engine, script)
    assert incident["kind"] == "script_error" and words in incident["message"], incident["message"]
    assert elapsed < 1.5 and grown < 16 * MB


# ---------------------------------------------------------------------------- CPU

@pytest.mark.parametrize("script", [
    pytest.param("n = 1\nwhile n > 0:\n    n = n + 1", id="tight-loop"),
    pytest.param("x = 0\nfor i in range(10 ** 6):\n    x = x + sum(range(10 ** 6))", id="range-sums"),
    pytest.param("x = list(map(sum, [range(10 ** 6)] * 10 ** 6))", id="map-calls-in-c"),
    pytest.param("x = sorted([range(10 ** 6)] * 10 ** 6, key=sum)", id="sorted-key-in-c"),
    pytest.param("x = max([range(10 ** 6)] * 10 ** 6, key=sum)", id="max-key-in-c"),
    pytest.param("def f(k):\n    return 1 if k == 0 else f(k - 1) + f(k - 1)\nx = f(60)", id="exponential-recursion"),
])
def test_cpu_burners_end_at_the_time_limit(engine, script):
    incident, elapsed, _grown = run_attack(engine, script)
    assert incident["kind"] == "timeout" and "limit of 2 s" in incident["message"], incident
    assert STEP_LIMIT <= elapsed < STEP_LIMIT + 1.5
    assert_others_run(engine)


@pytest.mark.parametrize("script, words", [
    pytest.param("x = sum(range(10 ** 12))", "range of 1000000000000 items is too large", id="huge-range-sum"),
    pytest.param("x = sorted(range(10 ** 8))", "range of 100000000 items is too large", id="sorted-range"),
    pytest.param("def f(k):\n    return f(k + 1)\nx = f(0)", "maximum recursion depth", id="deep-recursion"),
    pytest.param("x = pow(3, (1 << 99999) - 1, (1 << 99999) + 1)", "too much work", id="modular-pow"),
    # no regular expressions: `re` cannot be imported and no helper or method reaches it
    pytest.param("x = re.match('(a+)+$', 'a' * 40 + 'b')", "name 're' is not defined", id="regex"),
])
def test_cpu_work_in_one_call_is_refused_or_fails_fast(engine, script, words):
    incident, elapsed, _grown = run_attack(engine, script)
    assert incident["kind"] == "script_error" and words in incident["message"], incident["message"]
    assert elapsed < 1.5


def test_no_regular_expressions_are_reachable():
    assert sandbox.lint("import re") and sandbox.lint("from re import match")
    env = sandbox.SandboxEnvironment(sandbox.default_helpers(Clock().now))
    modules = [k for k, v in {**env._base["__builtins__"], **env._base}.items() if type(v).__name__ == "module"]
    assert modules == ["math"]
    math = env._base["__builtins__"]["math"]
    assert not any(hasattr(v, "match") or hasattr(v, "compile") for v in vars(math).values())


def test_ordinary_scripts_keep_working_with_the_guards():
    env = sandbox.SandboxEnvironment(sandbox.default_helpers(Clock().now))
    data: dict = {"names": ["王", "李", "张"], "areas": [89.5, 10.25]}
    with sandbox.step_deadline(5):
        env.execute(
            "a = str(12) + repr('x')\nb = isinstance('s', str) and isinstance(a, str) and not isinstance(1, str)\n"
            "c = sorted(names, key=len, reverse=True)\nd = list(map(str, [1, 2]))\ne = list(filter(None, [0, 1, 2]))\n"
            "f = max(areas, key=abs) + min(1, 2)\ng = f'{areas}|{names[0]!r}|{1.5:.2f}'\nh = '%s-%d' % ('x', 3)\n"
            "i = str.upper('q')\nj = sorted([3, 1, 2])\nk = [3, 1, 2]\nk.sort(key=abs)\nm = pow(3, 100, 7)\n"
            "n = str()\no = str(b'ab', 'ascii')\n",
            data,
        )
    assert {k: data[k] for k in "abcdefghijkmno"} == {
        "a": "12'x'", "b": True, "c": ["王", "李", "张"], "d": ["1", "2"], "e": [1, 2], "f": 89.5 + 1,
        "g": "[89.5, 10.25]|'王'|1.50", "h": "x-3", "i": "Q", "j": [1, 2, 3], "k": [1, 2, 3], "m": pow(3, 100, 7),
        "n": "", "o": "ab"}


# ---------------------------------------------------------------------------- in worker processes

TIMER_ATTACK = """
<bpmn:startEvent id="start"/>
<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="wait"/>
<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition>
<bpmn:timeDuration>"PT0.5S"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
<bpmn:sequenceFlow id="f1" sourceRef="wait" targetRef="calc"/>
{script}
<bpmn:sequenceFlow id="f2" sourceRef="calc" targetRef="review"/>
{review}
<bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="end"/>
<bpmn:endEvent id="end"/>
"""
WORKER_ATTACKS = {
    "append": "x = []\nwhile len(x) >= 0:\n    x.append([0] * 100000)",
    "dict": "x = {i: str(i) * 1000 for i in range(10 ** 6)}",
    "map_sum": "x = list(map(sum, [range(10 ** 6)] * 10 ** 6))",
    "loop": "n = 1\nwhile n > 0:\n    n = n + 1",
    "ok": "fee = sum(range(100))",
}


def deploy_timed(engine: Engine) -> None:
    files = [(f"{name}.bpmn", definitions(TIMER_ATTACK.format(script=script_task(script), review=user_task()), name))
             for name, script in WORKER_ATTACKS.items()]
    engine.deploy(files, "designer")


def start_worker(url: str, log: Path, *, script_mb: int, memory_limit: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ONEWINDOW_DATABASE_URL": url, "ONEWINDOW_ADAPTERS": "sandbox",
           "ONEWINDOW_STEP_TIME_LIMIT": str(STEP_LIMIT), "ONEWINDOW_SCRIPT_MEMORY_MB": str(script_mb)}
    return subprocess.Popen([sys.executable, "-m", "webapp.cli", "-v", "worker", "--interval", "0.2",
                             "--memory-limit", str(memory_limit)],
                            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def wait_until(predicate, seconds: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the worker died (exit {proc.returncode}):\n{log.read_text()[-3000:]}"
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s; worker log:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def settled(engine: Engine, case_id: int) -> bool:
    return bool(engine.incidents(case_id=case_id) or engine.case_tasks(case_id))


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("sandbox_check", [
    pytest.param(True, id="sandbox-memory-check"),
    pytest.param(False, id="rlimit-backstop-only"),
])
def test_attacks_in_a_worker_process_leave_it_running_and_small(db: Database, tmp_path: Path, sandbox_check: bool):
    """The worker fires each case's timer and runs its script. With the sandbox's memory check the
    allocation attacks stop at 64 MB; without it (ONEWINDOW_SCRIPT_MEMORY_MB=0) the worker's
    RLIMIT_AS ends them with MemoryError. Either way: incidents, a live worker, memory given back,
    and ordinary cases fired by the same worker afterwards."""
    url = db.engine.url.render_as_string(hide_password=False)
    engine = Engine(db, clock=Clock(), settings=EngineSettings(step_time_limit=STEP_LIMIT))
    deploy_timed(engine)
    log = tmp_path / "worker.log"
    proc = start_worker(url, log, script_mb=MEMORY_MB if sandbox_check else 0, memory_limit=600)
    try:
        warm = engine.start_case("ok", {}, CLERK)  # the worker's baseline: after it has done real work
        wait_until(lambda: settled(engine, warm.id), 30, proc, log)
        time.sleep(0.5)
        baseline = rss_of(proc.pid)
        attacks = {name: engine.start_case(name, {}, CLERK).id for name in ("append", "dict", "map_sum", "loop")}
        for case_id in attacks.values():
            wait_until(lambda c=case_id: settled(engine, c), 60, proc, log)
        after = [engine.start_case("ok", {}, CLERK).id for _ in range(3)]
        for case_id in after:
            wait_until(lambda c=case_id: settled(engine, c), 30, proc, log)
        time.sleep(0.5)
        grown = rss_of(proc.pid) - baseline
        assert proc.poll() is None
    finally:
        stop(proc)
    messages = {name: [i["message"] for i in engine.incidents(case_id=c)] for name, c in attacks.items()}
    for name in ("append", "dict"):
        assert len(messages[name]) == 1, messages
        expected = "脚本内存超过上限 64 MB" if sandbox_check else "MemoryError"
        assert expected in messages[name][0], messages
    for name in ("map_sum", "loop"):
        assert len(messages[name]) == 1 and "limit of 2 s" in messages[name][0], messages
    for case_id in after:  # the same worker went on to fire ordinary cases
        assert engine.incidents(case_id=case_id) == [] and open_task(engine, case_id, "review")
    assert grown < 64 * MB, f"the worker kept {grown / MB:.0f} MB after the attacks"


def test_memory_limit_below_what_the_worker_maps_is_refused(tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ONEWINDOW_DATABASE_URL": f"sqlite:///{tmp_path / 'w.sqlite3'}"}
    done = subprocess.run([sys.executable, "-m", "webapp.cli", "worker", "--once", "--memory-limit", "64"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "--memory-limit 64 MB is too small" in done.stderr and "give at least" in done.stderr
