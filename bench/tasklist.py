"""The clerks' task list with 10^6 stored cases on PostgreSQL: how long one page of /tasks/ takes.

    .venv/bin/python bench/tasklist.py [--cases 1000000] [--pages 600] [--database-url URL] [--reuse]

Fills a fresh database with stored cases (bench/stored_cases.py: ~3% active, their tasks open over
the five posts, a third claimed), then opens the task list as clerks do — my tasks and my posts'
unclaimed ones, one post, mine only, a search (a case number, the beginning of a party's ID number,
an applicant's name) — as a window clerk, a reviewer, a registrar, a certificate desk clerk and a
supervisor (who also holds review and window posts).

Figures (milliseconds; medians and 95th percentiles over the pages):
- tasklist_p50_ms, tasklist_p95_ms: what webapp/views/tasks.py `index()` asks of the database for
  one page — Engine.task_list, the lights (domain.deadlines.task_lights), the counts per post and of
  my tasks, the business names — timed by running the view itself with its template left out;
  pages without a search. Target: p95 <= 10 ms.
- tasklist_search_p50_ms, tasklist_search_p95_ms: the same, with a search (`q=`).
- tasklist_page_p50_ms, tasklist_page_p95_ms: the whole page over HTTP (Flask's test client):
  session, view, template.

The database: `<name>_engine`, made afresh beside the database of --database-url, by default
beside `onewindow_bench_tasklist` (created if missing) on ONEWINDOW_BENCH_POSTGRES_URL's server
(`eval "$(scripts/pg env)"` starts a private one). It is left in place afterwards, for EXPLAIN and
for `--reuse`, which measures again on it without loading. The load alone (store_s) takes a few
minutes on two busy cores.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
# bench/ itself off the path (its http.py would shadow the standard library's), the project on it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from flask import Flask  # noqa: E402
from flask_login import login_user  # noqa: E402

import webapp.views.tasks as tasks_view  # noqa: E402
from bench.stored_cases import (  # noqa: E402
    bench_database_url,
    bench_engine,
    clerk_logins,
    count_cases,
    database_url_arg,
    open_case_numbers,
    reuse_engine,
    store_cases,
)
from engine import Engine  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.accounts import AccountPolicy, Accounts, User  # noqa: E402

# login -> the posts it holds
USERS = {
    clerk_logins("window_clerk")[0]: ("window_clerk",),
    clerk_logins("reviewer")[0]: ("reviewer",),
    clerk_logins("registrar")[0]: ("registrar",),
    clerk_logins("certificate_desk")[0]: ("certificate_desk",),
    clerk_logins("supervisor")[0]: ("supervisor", "reviewer", "window_clerk"),
}


def make_users(accounts: Accounts) -> dict[str, User]:
    users = {}
    for login, roles in USERS.items():
        users[login] = accounts.by_login(login) or accounts.create_user(login, f"{login}（压测）",
                                                                        "bench-password-2026", roles)
    return users


def search_texts(engine: Engine, numbers: list[str], rng: random.Random, count: int = 200) -> list[str]:
    """What clerks type to find a case with an open task: its number, the beginning of a party's ID
    number, an applicant's name."""
    out = []
    for number in rng.sample(numbers, min(count, len(numbers))):
        summary = engine.find_case(number)["summary"]
        pick = rng.random()
        if pick < 0.4 or not summary.get("id_number"):
            out.append(number)
        elif pick < 0.7:
            out.append(summary["id_number"][:12])
        else:
            out.append(summary.get("applicant") or number)
    return out


def queries(users: dict[str, User], searches: list[str], rng: random.Random, pages: int
            ) -> list[tuple[User, str, bool]]:
    """(user, query string, is a search) for `pages` page views: the clerks' everyday mix."""
    out = []
    logins = list(users)
    for k in range(pages):
        user = users[logins[k % len(logins)]]
        roles = USERS[user.login]
        pick = rng.random()
        if pick < 0.5:
            q, search = "", False
        elif pick < 0.7:
            q, search = f"role={rng.choice(roles)}", False
        elif pick < 0.8:
            q, search = "mine=1", False
        else:
            q, search = f"q={quote(rng.choice(searches))}", True
        out.append((user, q, search))
    return out


def page_data_timer(app: Flask) -> Callable[[User, str], tuple[float, int]]:
    """Runs the task list view for a user and query, with the template left out: (ms, rows)."""
    shown: dict[str, Any] = {}

    def no_template(_name: str, **context: Any) -> str:
        shown.update(context)
        return ""

    def run(user: User, query: str) -> tuple[float, int]:
        with app.test_request_context(f"/tasks/?{query}"), mock.patch.object(tasks_view, "render_template",
                                                                              no_template):
            login_user(user)
            t0 = time.perf_counter()
            tasks_view.index()
            ms = (time.perf_counter() - t0) * 1000
        return ms, len(shown["tasks"])

    return run


def page_timer(app: Flask, users: dict[str, User]) -> Callable[[User, str], tuple[float, int]]:
    """GET /tasks/ through the test client, logged in as the user: (ms, status)."""
    clients = {}
    for login, user in users.items():
        client = clients[login] = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"], session["_fresh"] = user.get_id(), True

    def run(user: User, query: str) -> tuple[float, int]:
        t0 = time.perf_counter()
        response = clients[user.login].get(f"/tasks/?{query}")
        ms = (time.perf_counter() - t0) * 1000
        return ms, response.status_code

    return run


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=600, help="page views timed (each figure)")
    parser.add_argument("--active-share", type=float, default=0.03)
    parser.add_argument("--reuse", action="store_true",
                        help="measure again on the database an earlier run filled (no load)")
    database_url_arg(parser)
    args = parser.parse_args()

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    url = bench_database_url(args.database_url, "onewindow_bench_tasklist")
    if args.reuse:
        engine = reuse_engine(url)
        numbers, cases, seconds = open_case_numbers(engine), count_cases(engine), 0.0
    else:
        engine = bench_engine(url)
        stored = store_cases(engine, args.cases, active_share=args.active_share, log=say)
        numbers, cases, seconds = stored.open_case_numbers, args.cases, stored.seconds
    users = make_users(Accounts(engine.db, engine.clock))
    app = create_app({"ENGINE": engine, "TESTING": True, "ACCOUNT_POLICY": AccountPolicy()})
    rng = random.Random(6)
    plan = queries(users, search_texts(engine, numbers, rng), rng, args.pages)

    data = page_data_timer(app)
    for user, q, _search in plan[:50]:  # warm-up: connections, caches, the planner's statistics
        data(user, q)
    plain, search, shown = [], [], 0
    for user, q, is_search in plan:
        ms, rows = data(user, q)
        (search if is_search else plain).append(ms)
        shown += rows
    page = page_timer(app, users)
    for user, q, _search in plan[:20]:
        page(user, q)
    whole = []
    for user, q, _search in plan:
        ms, status = page(user, q)
        assert status == 200, f"/tasks/?{q} as {user.login}: HTTP {status}"
        whole.append(ms)
    engine.db.dispose()

    say(f"{len(plan)} pages showed {shown / len(plan):.1f} tasks on average")
    print(f"stored_cases: {cases}")
    if not args.reuse:
        print(f"store_s: {seconds:.1f}")
    for name, samples in (("tasklist", plain), ("tasklist_search", search), ("tasklist_page", whole)):
        p50, p95 = percentiles(samples)
        print(f"{name}_p50_ms: {p50:.2f}")
        print(f"{name}_p95_ms: {p95:.2f}")


if __name__ == "__main__":
    main()
