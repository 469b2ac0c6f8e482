"""HTTP benchmark: clerks completing tasks through gunicorn and the JSON API on PostgreSQL.

    .venv/bin/python bench/http.py [--seconds 20] [--runs 3] [--clients 32] [--workers 2] [--threads 8]
    .venv/bin/python bench/http.py --configs 2x8,4x4   # compare gunicorn settings (WORKERSxTHREADS)

Starts gunicorn (gunicorn.conf.py, webapp.wsgi:app) on a free loopback port against a database of
its own (`<bench database>_http`, dropped and made anew on each run: ONEWINDOW_BENCH_POSTGRES_URL
or --postgres names the server), deploys bench/http_chain.bpmn (four user tasks in a row, one per
post), creates one user per client, holding the four posts, with an API token each, starts enough
cases (some moved on to the later posts, so none waits for work at first), then runs `--clients`
threads for `--seconds`, each with its own keep-alive connection and token (http.client: the load
generator shares the two cores with the server, and httpx spends about three times its CPU per
request):

    GET /api/v1/tasks?role=P&limit=20  →  pick one at random  →  POST …/claim  →  POST …/complete

Each client works at one post P (client i at post i % 4) and moves to the next post when its list
comes back empty (counted as empty_task_lists): the list is the caller's claimed tasks plus that
post's unclaimed ones, two indexed queries, as for a clerk who holds one post.

A 409 on claim or complete is a deliberate conflict (another clerk took the task first) and is
counted as such; any other non-2xx answer or transport error is an error. A `--warmup` period
before the measured one is not counted. Prints one `name: value` line per figure:
completions_per_s, p50_ms / p99_ms (every API request), complete_p50_ms / complete_p99_ms,
conflicts, errors, and the CPU seconds the server processes and this client used. At the end the
number of completions the database recorded is compared with the number counted; exits 1 if they
differ or if any request erred.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# this file is called http.py: keep bench/ off the path, or `import http` (httpx does) would find it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import argparse
import http.client
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from sqlalchemy import func, select

from bench import databases
from engine import Actor
from storage.db import Database
from storage.migrate import upgrade
from storage.models import HumanTask
from webapp.accounts import AccountPolicy, Accounts
from webapp.wiring import build_engine

BPMN = HERE / "http_chain.bpmn"
PROCESS = "http_chain"
CHAIN = 4  # user tasks per case
ROLES = ("window_clerk", "reviewer", "registrar", "certificate_desk")
STARTER = Actor.of("bench_starter", "window_clerk")


# ---------------------------------------------------------------------------- set-up

def bench_database(server_url: str) -> str:
    """A fresh database `<name>_http` on the bench server (so bench/engine.py, which empties the bench
    database itself, can run beside this one); returns its URL."""
    return databases.recreate(server_url, "_http")


def prepare(url: str, clients: int, cases: int, ahead: int) -> list[str]:
    """Schema, the chain process, one user and token per client, `cases` cases; returns the tokens.

    Every user holds the four posts; client i starts working at post i % 4 (see Client.run). So that
    no post waits for work at the start,
    the first `ahead` cases are moved on to the last post, the next `ahead` to the third, and the
    next `ahead` to the second (completing the tasks before it in-process)."""
    db = Database(url)
    upgrade(db)
    db.dispose()
    engine = build_engine(url)
    engine.deploy([(BPMN.name, BPMN.read_bytes())], "bench")
    # the users log in with tokens only; a cheap hash keeps the set-up short
    accounts = Accounts(engine.db, policy=AccountPolicy(time_cost=1, memory_cost=8 * 1024, parallelism=1))
    tokens = []
    for i in range(clients):
        login = f"bench{i:02d}"
        accounts.create_user(login, f"压测{i:02d}", secrets.token_urlsafe(12), ROLES,
                             office="bench")
        tokens.append(accounts.issue_token(login, "bench/http.py").token)
    t0 = time.perf_counter()
    started = [engine.start_case(PROCESS, {"n": i}, STARTER).id for i in range(cases)]
    for steps, first in ((3, 0), (2, ahead), (1, 2 * ahead)):
        for case_id in started[first:first + ahead]:
            for _ in range(steps):
                task = engine.case_tasks(case_id)[0]
                engine.complete_task(task["id"], {"ok": True}, Actor.of("bench_setup", task["role"]))
    print(f"# set-up: {cases} cases started, {6 * ahead} tasks completed in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)
    engine.db.dispose()
    return tokens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(url: str, port: int, workers: int, threads: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ONEWINDOW_DATABASE_URL": url, "ONEWINDOW_SECRET_KEY": secrets.token_hex(32),
           "ONEWINDOW_WEB_BIND": f"127.0.0.1:{port}", "ONEWINDOW_WEB_WORKERS": str(workers),
           "ONEWINDOW_WEB_THREADS": str(threads), "ONEWINDOW_WEB_LOG_LEVEL": "warning"}
    env.pop("ONEWINDOW_WEB_ACCESS_LOG", None)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = log_path.open("wb")
    proc = subprocess.Popen([str(gunicorn), "-c", str(ROOT / "gunicorn.conf.py"), "webapp.wsgi:app"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"gunicorn did not answer /healthz within 60 s; see {log_path}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by `pid` and its children, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


# ---------------------------------------------------------------------------- the clients

@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # every request, ms
    complete_latencies: list[float] = field(default_factory=list)
    completions: int = 0
    conflicts: int = 0
    errors: int = 0
    empty: int = 0  # task lists that came back empty
    error_samples: list[str] = field(default_factory=list)


class Reply:
    __slots__ = ("status_code", "content")

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code, self.content = status_code, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class KeepAlive:
    """One keep-alive HTTP/1.1 connection carrying a client's token. A request that fails is not
    sent again (a POST might have been done); the next one opens a new connection."""

    def __init__(self, base: str, token: str, timeout: float = 30) -> None:
        url = urlsplit(base)
        self.host, self.port, self.timeout = url.hostname or "127.0.0.1", url.port or 80, timeout
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, params: dict[str, Any] | None = None, json_body: Any = None) -> Reply:
        if params:
            path = f"{path}?{urlencode(params)}"
        headers, body = self.headers, None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers = {**headers, "Content-Type": "application/json"}
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            return Reply(response.status, response.read())
        except (http.client.HTTPException, OSError):
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Client(threading.Thread):
    def __init__(self, base: str, token: str, start_at: float, measure_from: float, stop_at: float,
                 seed: int, list_limit: int) -> None:
        super().__init__(daemon=True)
        self.list_limit = list_limit
        self.post = seed % len(ROLES)
        self.http = KeepAlive(base, token)
        self.start_at, self.measure_from, self.stop_at = start_at, measure_from, stop_at
        self.random = random.Random(seed)
        self.tally = Tally()
        self.warm = Tally()

    def call(self, method: str, path: str, **kwargs: Any) -> Reply | None:
        tally = self.tally if time.monotonic() >= self.measure_from else self.warm
        t0 = time.perf_counter()
        try:
            response = self.http.request(method, path, **kwargs)
        except (http.client.HTTPException, OSError) as err:
            tally.errors += 1
            if len(tally.error_samples) < 5:
                tally.error_samples.append(f"{method} {path}: {type(err).__name__}: {err}")
            return None
        ms = (time.perf_counter() - t0) * 1000
        tally.latencies.append(ms)
        if path.endswith("/complete"):
            tally.complete_latencies.append(ms)
        if response.status_code == 409:
            tally.conflicts += 1
        elif response.status_code >= 300:
            tally.errors += 1
            if len(tally.error_samples) < 5:
                tally.error_samples.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
        return response

    def run(self) -> None:
        while time.monotonic() < self.start_at:
            time.sleep(0.001)
        while time.monotonic() < self.stop_at:
            listed = self.call("GET", "/api/v1/tasks", params={"limit": self.list_limit, "role": ROLES[self.post]})
            if listed is None or listed.status_code != 200:
                continue
            items = listed.json()["items"]
            if not items:
                # nothing at this post: move on to the next (a clerk covering for a colleague)
                (self.tally if time.monotonic() >= self.measure_from else self.warm).empty += 1
                self.post = (self.post + 1) % len(ROLES)
                continue
            task = self.random.choice(items)
            claimed = self.call("POST", f"/api/v1/tasks/{task['id']}/claim")
            if claimed is None or claimed.status_code != 200:
                continue
            done = self.call("POST", f"/api/v1/tasks/{task['id']}/complete", json_body={"data": {"ok": True}})
            if done is not None and done.status_code == 200:
                (self.tally if time.monotonic() >= self.measure_from else self.warm).completions += 1
        self.http.close()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# ---------------------------------------------------------------------------- main

def run(url: str, tokens: list[str], workers: int, threads: int, args: argparse.Namespace
        ) -> tuple[dict[str, object], int, list[str]]:
    """One measured run on a gunicorn of its own: (figures, completions counted, error samples)."""
    port = free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"onewindow-bench-http-{port}.log"
    proc = start_gunicorn(url, port, workers, threads, log_path)
    try:
        base = f"http://127.0.0.1:{port}"
        start_at = time.monotonic() + 0.5
        measure_from = start_at + args.warmup
        stop_at = measure_from + args.seconds
        clients = [Client(base, tokens[i], start_at, measure_from, stop_at, seed=i, list_limit=args.list_limit)
                   for i in range(args.clients)]
        for c in clients:
            c.start()
        while time.monotonic() < measure_from:
            time.sleep(0.01)
        server_cpu0, client_cpu0 = process_tree_cpu(proc.pid), time.process_time()
        wall0 = time.monotonic()
        for c in clients:
            c.join(args.seconds + args.warmup + 60)
        wall = min(time.monotonic(), stop_at) - wall0
        server_cpu, client_cpu = process_tree_cpu(proc.pid) - server_cpu0, time.process_time() - client_cpu0
    finally:
        stop(proc)
    tallies = [c.tally for c in clients]
    warm = [c.warm for c in clients]
    latencies = [ms for t in tallies for ms in t.latencies]
    completes = [ms for t in tallies for ms in t.complete_latencies]
    completions = sum(t.completions for t in tallies)
    figures: dict[str, object] = {
        "gunicorn_workers": workers,
        "gunicorn_threads": threads,
        "completions_per_s": round(completions / args.seconds, 1),
        "requests_per_s": round(len(latencies) / args.seconds, 1),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "complete_p50_ms": round(percentile(completes, 50), 1),
        "complete_p99_ms": round(percentile(completes, 99), 1),
        "conflicts": sum(t.conflicts for t in tallies),
        "errors": sum(t.errors for t in tallies + warm),
        "empty_task_lists": sum(t.empty for t in tallies),
        "server_cpu_s_per_s": round(server_cpu / wall, 2),
        "client_cpu_s_per_s": round(client_cpu / wall, 2),
    }
    samples = [s for t in tallies + warm for s in t.error_samples]
    return figures, completions + sum(t.completions for t in warm), samples


def median_figures(runs: list[dict[str, object]]) -> dict[str, object]:
    """Each figure's median over the runs."""
    return {k: statistics.median([r[k] for r in runs]) for k in runs[0]}  # type: ignore[type-var]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured duration of a run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds run first and not counted")
    parser.add_argument("--runs", type=int, default=1, help="runs per configuration (medians are printed)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="gunicorn worker processes (default: one per core, as gunicorn.conf.py)")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker (default 8, as "
                        "gunicorn.conf.py)")
    parser.add_argument("--configs", default=None,
                        help="several gunicorn configurations to compare, WORKERSxTHREADS,…: 2x8,4x4")
    parser.add_argument("--cases", type=int, default=None, help="cases started before the runs (default: enough)")
    parser.add_argument("--ahead", type=int, default=100, help="cases moved on to each later post before the runs")
    parser.add_argument("--list-limit", type=int, default=20, help="tasks asked for per GET /tasks")
    parser.add_argument("--postgres", default=os.environ.get("ONEWINDOW_BENCH_POSTGRES_URL"),
                        help="the PostgreSQL server (default ONEWINDOW_BENCH_POSTGRES_URL)")
    args = parser.parse_args()
    if not args.postgres:
        parser.error("needs PostgreSQL: --postgres URL or ONEWINDOW_BENCH_POSTGRES_URL "
                     '(eval "$(scripts/pg env)" sets it)')
    if args.configs:
        configs = [tuple(int(n) for n in c.lower().split("x")) for c in args.configs.split(",")]
    else:
        configs = [(args.workers, args.threads)]
    total = (args.seconds + args.warmup) * args.runs * len(configs)
    # the first post is fed by nobody: room for 320 completions/s in all, a quarter of them there
    cases = args.cases or int(total * 320 / CHAIN) + 3 * args.ahead
    print(f"load_average_before: {os.getloadavg()[0]:.2f}")
    url = bench_database(args.postgres)
    tokens = prepare(url, args.clients, cases, args.ahead)
    counted, failed = 0, False
    print(f"clients: {args.clients}")
    print(f"seconds: {args.seconds:g}")
    for workers, threads in configs:
        runs = []
        for i in range(args.runs):
            figures, n, samples = run(url, tokens, workers, threads, args)
            counted += n
            runs.append(figures)
            if args.runs > 1:
                print(f"# run {i + 1}: " + ", ".join(f"{k} {v}" for k, v in figures.items()), file=sys.stderr)
            for sample in samples[:5]:
                print(f"# error: {sample}", file=sys.stderr)
            failed |= bool(figures["errors"])
        for name, value in median_figures(runs).items():
            print(f"{name}: {value}")
    db = Database(url)
    with db.read() as s:
        recorded = s.scalar(select(func.count()).select_from(HumanTask)
                           .where(HumanTask.state == "completed", HumanTask.closed_by != "bench_setup")) or 0
    db.dispose()
    print(f"db_completions_match: {recorded == counted}")
    print(f"load_average_after: {os.getloadavg()[0]:.2f}")
    if recorded != counted:
        print(f"# the database recorded {recorded} completions, the clients counted {counted}", file=sys.stderr)
    return 1 if failed or recorded != counted else 0


if __name__ == "__main__":
    sys.exit(main())
