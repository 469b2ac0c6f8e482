"""Years of stored cases, fast: the rows of a busy registry office, written straight into the tables.

`store_cases(engine, n)` writes n cases as the engine would have left them — `cases`, `human_task`,
`case_clock`, `case_clock_pause`, `case_stage_time`, `case_event` and the case-number counters —
with PostgreSQL COPY (binary; SQLite: executemany, for tests), without running the engine. The
benchmarks then start and step cases of their own through the engine on top of them. Calling it
again adds n more (ids, case numbers and counters go on from what is there).

Shapes, chosen to look like one office's history (see `MIX`, `PATHS`):
- about 700 applications a calendar day up to the engine clock's now, oldest first (1e6 cases: about
  four years); case numbers `YYYY-NNNNNN` per year, and the counters moved past them;
- a mix of business kinds over the deployed processes (二手房转移 30%, 抵押 25%, 抵押注销 18% …);
- almost every case ended (completed; 3% cancelled) with its human tasks closed by named clerks
  (`clerk_logins`); the most recent ones (`active_share`, default 3%) still active, plus a few older
  stragglers, each with its next task open for its post — a third of them claimed by a clerk — and
  now and then a supervisor's urge task 督办; some active cases wait on the applicant or a
  department (tax, materials) with no task open;
- a deadline clock for every accepted case of a kind in processes/time_limits.json (due dates on the
  working-day calendar), an unpaid-tax pause for transfers, stage times for one-hour kinds;
- the audit events of each case: started, every completed task, ended.

Not written: the register (units, rights), timers, the outbox, incidents. A bulk case's serialized
workflow `state` is a small placeholder, so bulk cases can be listed, counted and shown, but not
stepped: the benchmarks step cases they start for real.

On PostgreSQL, loads of `REBUILD_FROM` cases or more drop the loaded tables' secondary indexes,
unique constraints and foreign keys first and build them again at the end (then VACUUM ANALYZE, as
autovacuum would), which is several times faster than keeping them up row by row; and the chunks
are generated and copied by `jobs` processes at once, each chunk in its own transaction (its
cases before their rows). The schema ends as it began.
"""
from __future__ import annotations

import bisect
import gc
import json
import math
import multiprocessing
import os
import random
import time
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import JSON, Table, func, select, text
from sqlalchemy.engine import make_url

from adapters.factory import sandbox_database, sandbox_departments
from adapters.sandbox_seed import make_id_number
from adapters.sandbox_store import SANDBOX_METADATA
from bench.engine import ROOT, fresh_database
from domain import case_summary, deadlines
from domain.clock import SHANGHAI, FrozenClock
from engine import Engine, EngineSettings
from handlers.registry import default_registry
from storage.db import Database, normalise_url
from storage.models import (
    Case,
    CaseClock,
    CaseClockPause,
    CaseEvent,
    CaseSearchKey,
    CaseStageTime,
    Counter,
    HumanTask,
)
from webapp.simulate import BANK, DEVELOPER, OLD_BANK

# business kind -> share of the office's applications (normalised)
MIX: dict[str, float] = {
    "secondhand_transfer": 0.30, "mortgage": 0.25, "mortgage_cancellation": 0.18, "transfer_with_mortgage": 0.10,
    "presale_notice": 0.07, "general_registration": 0.06, "seizure": 0.025, "release": 0.015,
}
# the user tasks a case of each kind passes, in order: (process that holds the task, bpmn id)
_ISSUE = ("issue_and_archive", "hand_over")
PATHS: dict[str, tuple[tuple[str, str], ...]] = {
    "secondhand_transfer": (("secondhand_transfer", "accept"), ("secondhand_transfer", "review"), _ISSUE),
    "transfer_with_mortgage": (("transfer_with_mortgage", "accept"), ("transfer_with_mortgage", "review"), _ISSUE),
    "mortgage": (("mortgage", "accept"), ("mortgage", "review"), _ISSUE),
    "presale_notice": (("presale_notice", "accept"), ("presale_notice", "review"), _ISSUE),
    "mortgage_cancellation": (("mortgage_cancellation", "accept"), ("mortgage_cancellation", "review")),
    "general_registration": (("general_registration", "accept"), ("general_registration", "review"),
                             ("general_registration", "register")),
    # court orders are recorded without a clerk; an active one may wait on the registrar's exception task
    "seizure": (),
    "release": (),
}
EXCEPTION_TASK = {"seizure": ("seizure", "resolve"), "release": ("release", "resolve")}
LANES = {"window_clerk": "窗口受理", "reviewer": "审核", "registrar": "登簿", "certificate_desk": "发证",
         "supervisor": "主管"}
# clerks per post: logins `<prefix>_01` …
CLERKS = {"window_clerk": ("window", 12), "reviewer": ("reviewer", 8), "registrar": ("registrar", 4),
          "certificate_desk": ("desk", 4), "supervisor": ("supervisor", 2)}
INTAKE_PER_DAY = 700
REBUILD_FROM = 50_000
BATCH = 20_000
PLACEHOLDER_STATE = b'{"bulk": "stored_cases"}'
# ids reserved per case in each table (a chunk's rows take ids from its own range: chunks are independent)
RESERVE = {"cases": 1, "human_task": 5, "case_clock_pause": 1, "case_stage_time": 3, "case_event": 7,
           "case_search_key": 64}
# when benchmarks' clocks stand: a Monday morning (the calendar and time-limit table know the year)
BENCH_NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)

ANSWERS = {
    "accept": {"materials_complete": True}, "review": {"approved": True, "opinion": "材料齐全，符合登记条件，同意登记"},
    "register": {}, "hand_over": {"handed_over_to": "申请人本人"}, "resolve": {},
    "urge_yellow": {"urge_opinion": "请抓紧办理"}, "urge_red": {"urge_opinion": "已超期，请立即办结并说明原因"},
}
URGE_NAMES = {"urge_yellow": "黄灯督办", "urge_red": "红灯督办"}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "秀英", "华",
         "建国", "子涵", "欣怡", "浩然", "雨桐", "梓轩", "思远", "嘉怡", "晨曦", "一鸣")
DISTRICTS = (("330102", "上城区"), ("330105", "拱墅区"), ("330106", "西湖区"), ("330108", "滨江区"),
             ("330109", "萧山区"), ("330110", "余杭区"))
STREETS = ("文三路", "学院路", "天目山路", "莫干山路", "江南大道", "钱江路", "古墩路", "丰潭路", "东新路", "滨盛路")
REASONS = {"cancelled": "申请人撤回申请", "suspended": "等待法院回函"}
COURTS = ("杭州市西湖区人民法院", "杭州市上城区人民法院", "杭州市中级人民法院")

TABLES: dict[str, Table] = {t.name: t for t in (Case.__table__, HumanTask.__table__, CaseClock.__table__,
                                                CaseClockPause.__table__, CaseStageTime.__table__,
                                                CaseEvent.__table__, CaseSearchKey.__table__)}  # type: ignore[misc]
COLUMNS = {
    "cases": ("id", "case_number", "process_id", "process_version_id", "status", "open_incidents",
              "buffered_messages", "lock_version", "started_by", "started_at", "updated_at", "ended_at",
              "status_reason", "summary", "state"),
    "human_task": ("id", "case_id", "task_guid", "bpmn_id", "name", "lane", "role", "form", "state", "assignee",
                   "created_at", "claimed_at", "closed_at", "closed_by"),
    "case_clock": ("case_id", "case_number", "business", "limit_kind", "limit_value", "one_hour", "accepted_at",
                   "due_at", "paused_since", "pause_reason", "paused_seconds", "paused_workdays", "light",
                   "light_changed_at", "completed_at", "ended_by"),
    "case_clock_pause": ("id", "case_id", "reason", "started_at", "ended_at", "workdays"),
    "case_stage_time": ("id", "case_id", "stage", "started_at", "ended_at", "minutes"),
    "case_event": ("id", "case_id", "at", "actor", "kind", "task_guid", "bpmn_id", "detail"),
    "case_search_key": ("id", "case_id", "key"),
}


def clerk_logins(role: str) -> list[str]:
    prefix, count = CLERKS[role]
    return [f"{prefix}_{k:02d}" for k in range(1, count + 1)]


@dataclass
class Stored:
    """What `store_cases` wrote, for the benchmarks' and tests' expectations."""

    cases: int = 0
    first_id: int = 0
    active: int = 0
    open_tasks: int = 0
    unclaimed: Tally[str] = field(default_factory=Tally)  # post -> open unclaimed tasks
    claimed: Tally[str] = field(default_factory=Tally)  # assignee -> open tasks
    open_case_numbers: list[str] = field(default_factory=list)  # cases with an open task
    rows: Tally[str] = field(default_factory=Tally)  # table -> rows written
    seconds: float = 0.0

    def add(self, part: Stored) -> None:
        self.active += part.active
        self.open_tasks += part.open_tasks
        self.unclaimed.update(part.unclaimed)
        self.claimed.update(part.claimed)
        self.open_case_numbers += part.open_case_numbers
        self.rows.update(part.rows)


# ---------------------------------------------------------------------------- databases for benchmarks

def database_url_arg(parser: Any) -> None:
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL database on the server to use: the benchmark works in a database "
                             "`<name>_engine` made afresh beside it; default: `onewindow_bench_<benchmark>` on "
                             "ONEWINDOW_BENCH_POSTGRES_URL's server")


def bench_database_url(url: str | None, name: str) -> str:
    """`url` if given; else the database `name` (created if missing) on ONEWINDOW_BENCH_POSTGRES_URL's server,
    so that benchmarks run side by side do not empty each other's database."""
    if url:
        return url
    server = os.environ.get("ONEWINDOW_BENCH_POSTGRES_URL")
    if not server:
        raise SystemExit("set ONEWINDOW_BENCH_POSTGRES_URL (eval \"$(scripts/pg env)\") or pass --database-url")
    admin = Database(server, pool_size=1)
    try:
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}) is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        return admin.engine.url.set(database=name).render_as_string(hide_password=False)
    finally:
        admin.dispose()


def bench_engine(url: str | None, now: datetime = BENCH_NOW, sandboxes: bool = False) -> Engine:
    """An engine with processes/ deployed and its clock standing at `now`, on a fresh database:
    `<database>_engine` beside the PostgreSQL database `url` (bench/engine.py `fresh_database`), or a new
    SQLite file if `url` is None; with the departments' sandboxes if `sandboxes`."""
    db = fresh_database(url)
    clock = FrozenClock(now)
    services = None
    if sandboxes:
        services = sandbox_departments(sandbox_database(db), clock)
        # ensure_tables remembers databases by URL, and this URL may name a database made afresh
        SANDBOX_METADATA.create_all(sandbox_database(db).engine, checkfirst=True)
    engine = Engine(db, default_registry(), clock, EngineSettings(step_time_limit=30.0), services=services)
    engine.deploy_paths([ROOT / "processes"], "bench")
    return engine


def reuse_engine(url: str, now: datetime = BENCH_NOW) -> Engine:
    """An engine on the `<database>_engine` an earlier `bench_engine(url)` made and filled, as it is
    (for measuring again without loading again)."""
    base = make_url(normalise_url(url))
    db = Database(base.set(database=f"{base.database}_engine").render_as_string(hide_password=False), pool_size=10)
    return Engine(db, default_registry(), FrozenClock(now), EngineSettings(step_time_limit=30.0))


def count_cases(engine: Engine) -> int:
    with engine.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Case)) or 0)


def open_case_numbers(engine: Engine, limit: int = 5000) -> list[str]:
    """Numbers of cases with an open task, oldest first."""
    with engine.db.read() as s:
        return list(s.scalars(select(Case.case_number).where(Case.id.in_(
            select(HumanTask.case_id).where(HumanTask.state == "open"))).order_by(Case.id).limit(limit)))


# ---------------------------------------------------------------------------- what each case looks like

@dataclass(frozen=True)
class _Kind:
    process_id: str
    version_id: int
    version: int
    tasks: tuple[tuple[str, str, str], ...]  # (bpmn id, name, post) of PATHS
    exception: tuple[str, str, str] | None
    urges: bool  # the diagram has supervisor urge tasks
    limit: deadlines.Limit | None
    one_hour: bool
    business: str


def _kinds(engine: Engine) -> tuple[tuple[_Kind, ...], tuple[float, ...]]:
    latest: dict[str, dict[str, Any]] = {}
    for v in engine.versions():
        if v["process_id"] not in latest or v["version"] > latest[v["process_id"]]["version"]:
            latest[v["process_id"]] = v
    missing = [p for p in MIX if p not in latest]
    if missing:
        raise RuntimeError(f"deploy processes/ first (engine.deploy_paths): {', '.join(missing)} not deployed")
    table = deadlines.load_table()
    kinds, cumulative, acc, total = [], [], 0.0, sum(MIX.values())
    for process_id, share in MIX.items():
        v = latest[process_id]
        info = engine.version_info(v["id"])

        def task(key: tuple[str, str], info: Any = info) -> tuple[str, str, str]:
            role = info.roles.get(key)
            if role is None:
                raise RuntimeError(f"{key[0]}: no user task {key[1]!r} in the deployed diagram; update bench PATHS")
            return key[1], info.names.get(key) or key[1], role

        limit = table.limit_for(process_id) if process_id in table.kinds else None
        exception = EXCEPTION_TASK.get(process_id)
        kinds.append(_Kind(process_id, v["id"], v["version"], tuple(task(k) for k in PATHS[process_id]),
                           task(exception) if exception else None,
                           (process_id, "urge_red") in info.roles, limit,
                           limit is not None and table.kind(process_id).one_hour, v["name"] or process_id))
        acc += share / total
        cumulative.append(acc)
    cumulative[-1] = 1.0
    return tuple(kinds), tuple(cumulative)


@lru_cache(maxsize=8192)
def _due_day(limit: deadlines.Limit, day: date) -> datetime:
    return deadlines.compute_due(limit, datetime.combine(day, datetime.min.time(), SHANGHAI))


def _due(limit: deadlines.Limit, accepted_at: datetime) -> datetime:
    if limit.kind == "workdays":
        return _due_day(limit, accepted_at.astimezone(SHANGHAI).date())
    return deadlines.compute_due(limit, accepted_at)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


_CENT = Decimal("0.01")
_ANSWER_JSON = {k: _dumps({"data": v}) for k, v in ANSWERS.items()}


def _case_data(process_id: str, j: int, rng: random.Random) -> dict[str, Any]:
    """Case data of a kind as the processes and departments leave it: parties, unit, address."""
    region, district = DISTRICTS[j % len(DISTRICTS)]
    unit = (f"{region}{rng.randrange(1, 999):03d}{rng.randrange(1, 999):03d}GB{rng.randrange(1, 99999):05d}"
            f"F{rng.randrange(1, 40):04d}{rng.randrange(1, 3000):04d}")
    address = (f"杭州市{district}{STREETS[j % len(STREETS)]}{rng.randrange(1, 400)}号{rng.randrange(1, 30)}幢"
               f"{rng.randrange(1, 33)}0{rng.randrange(1, 5)}室")

    def person() -> dict[str, str]:
        born = date(1955 + rng.randrange(45), 1 + rng.randrange(12), 1 + rng.randrange(28))
        return {"name": rng.choice(SURNAMES) + rng.choice(GIVEN), "id_type": "居民身份证",
                "id_number": make_id_number(region, born, 1 + rng.randrange(998))}

    if process_id in ("seizure", "release"):
        verb = "执保" if process_id == "seizure" else "执恢"
        return {"court": COURTS[j % len(COURTS)], "unit_number": unit, "document_no": f"(2026)浙0106{verb}{j + 1}号"}
    if process_id in ("secondhand_transfer", "transfer_with_mortgage"):
        buyers = [person() for _ in range(1 + (rng.random() < 0.4))]
        data: dict[str, Any] = {"contract": {"unit_number": unit, "address": address, "sellers": [person()],
                                             "buyers": buyers}}
        if process_id == "transfer_with_mortgage":
            data["mortgagee"] = BANK
        return data
    if process_id == "presale_notice":
        return {"contract": {"unit_number": unit, "address": address, "buyers": [person()], "developer": DEVELOPER}}
    if process_id == "mortgage":
        return {"unit_number": unit, "address": address, "mortgagors": [person()], "mortgagee": BANK}
    if process_id == "mortgage_cancellation":
        return {"unit_number": unit, "address": address, "mortgagee": OLD_BANK, "owner": person()}
    applicant = person()
    return {"applicant": applicant["name"], "id_number": applicant["id_number"], "unit_number": unit,
            "address": address}


_Pool = tuple[tuple[str, tuple[str, ...]], ...]  # (summary JSON, search keys but the case number)


def _summaries(kinds: Sequence[_Kind], size: int, rng: random.Random) -> dict[str, _Pool]:
    """Per business kind, `size` believable case summaries (domain.case_summary of case data) with their search
    keys but the case number, to draw from."""
    out = {}
    for kind in kinds:
        pool = []
        for j in range(size):
            summary = case_summary.summarize(_case_data(kind.process_id, j, rng))
            pool.append((_dumps(summary), tuple(case_summary.search_keys("", summary))))
        out[kind.process_id] = tuple(pool)
    return out


@dataclass(frozen=True)
class _Plan:
    """Everything a chunk of cases needs, so chunks can be made anywhere and in any order."""

    n: int
    seed: int
    events: bool
    kinds: tuple[_Kind, ...]
    cumulative: tuple[float, ...]
    summaries: dict[str, _Pool]
    now: datetime
    start: datetime
    step: timedelta
    recent_from: int  # cases from this index on are the recent ones, mostly still active
    last_ids: dict[str, int]  # the largest id in each table before the load
    years: tuple[tuple[int, int, int], ...]  # (first case index, year, that year's counter before the load)
    yellow_share: float


def _plan(engine: Engine, n: int, active_share: float, seed: int, events: bool) -> _Plan:
    kinds, cumulative = _kinds(engine)
    now = engine.clock.now()
    span = timedelta(days=max(3.0, n / INTAKE_PER_DAY))
    start, step = now - span, span / max(n, 1)
    with engine.db.read() as s:
        last_ids = {t: int(s.scalar(select(func.coalesce(func.max(TABLES[t].c.id), 0))) or 0) for t in RESERVE}
        counters = {c.name: c.value for c in s.scalars(select(Counter).where(Counter.name.like("case:%")))}
    first_year = start.astimezone(SHANGHAI).year
    years = [(0, first_year, counters.get(f"case:{first_year}", 0))]
    for year in range(first_year + 1, now.astimezone(SHANGHAI).year + 1):
        first = min(n, max(0, math.ceil((datetime(year, 1, 1, tzinfo=SHANGHAI) - start) / step)))
        years.append((first, year, counters.get(f"case:{year}", 0)))
    return _Plan(n, seed, events, kinds, cumulative, _summaries(kinds, min(4096, max(n, 16)), random.Random(seed)),
                 now, start, step, n - max(1, round(n * active_share / 0.8)), last_ids, tuple(years),
                 deadlines.yellow_share())


class _Chunk:
    """The rows of cases lo..hi-1, as tuples in COLUMNS order, and what they hold (`stored`)."""

    def __init__(self, plan: _Plan, lo: int, hi: int) -> None:
        self.plan, self.lo, self.hi = plan, lo, hi
        self.rng = random.Random(f"{plan.seed}:{lo}")
        self.ids = {t: plan.last_ids[t] + lo * per_case for t, per_case in RESERVE.items()}
        self.rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in COLUMNS}
        self.stored = Stored()
        self.clerks = {role: clerk_logins(role) for role in CLERKS}
        gc.disable()  # millions of young tuples that all live on: the collector would scan them again and again
        try:
            for i in range(lo, hi):
                self._case(i)
        finally:
            gc.enable()
        for table, rows in self.rows.items():
            self.stored.rows[table] = len(rows)

    def _id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    def _guid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def _pick(self, items: Sequence[Any]) -> Any:
        return items[int(self.rng.random() * len(items))]

    def _number(self, i: int) -> str:
        first, year, before = self.plan.years[bisect.bisect_right(self.plan.years, (i, 10**6, 0)) - 1]
        return f"{year}-{before + i - first + 1:06d}"

    def _status(self, i: int) -> str:
        r = self.rng.random()
        if i >= self.plan.recent_from:
            return "active" if r < 0.8 else ("cancelled" if r < 0.81 else "completed")
        if r < 0.001:
            return "active"
        if r < 0.002:
            return "suspended"
        return "cancelled" if r < 0.03 else "completed"

    def _task(self, case_id: int, task: tuple[str, str, str], state: str, created: datetime,
              closed: datetime | None = None, by: str | None = None, assignee: str | None = None,
              claimed: datetime | None = None, guid: str | None = None) -> None:
        bpmn_id, name, role = task
        self.rows["human_task"].append((self._id("human_task"), case_id, guid or self._guid(), bpmn_id, name,
                                        LANES[role], role, None, state, assignee, created, claimed, closed, by))

    def _open(self, case_id: int, task: tuple[str, str, str], created: datetime, number: str,
              claim: bool = False) -> None:
        now, role = self.plan.now, task[2]
        created = min(created, now - timedelta(minutes=1))
        assignee = claimed = None
        if claim and self.rng.random() < 0.35:
            assignee = self._pick(self.clerks[role])
            claimed = min(created + timedelta(minutes=self.rng.uniform(0.5, 5)), now)
        self._task(case_id, task, "open", created, assignee=assignee, claimed=claimed)
        s = self.stored
        s.open_tasks += 1
        if assignee is None:
            s.unclaimed[role] += 1
        else:
            s.claimed[assignee] += 1
        s.open_case_numbers.append(number)

    def _case(self, i: int) -> None:
        rng, plan = self.rng, self.plan
        now = plan.now
        kind = plan.kinds[bisect.bisect_left(plan.cumulative, rng.random())]
        case_id = self._id("cases")
        started = plan.start + plan.step * i
        number = self._number(i)
        status = self._status(i)
        running = status in ("active", "suspended")
        path = kind.tasks
        # the position of the task the case stands at (open, or cancelled with the case); len(path): none
        stop = len(path)
        if path and (running and rng.random() < 0.88 or status == "cancelled"):
            stop = int(rng.random() * len(path))
        t = started
        done: list[tuple[str, str, str, datetime]] = []  # completed tasks: guid, bpmn id, by, at
        accepted_at = None if path else started
        review_end = cert_end = None
        for task in path[:stop]:
            bpmn_id, _name, role = task
            if bpmn_id == "hand_over":  # the applicant comes for the certificate
                minutes = rng.uniform(60 * 20, 60 * 24 * 5)
            else:
                minutes = rng.uniform(3, 25) if kind.one_hour else rng.uniform(5, 60 * 24 * 2)
            closed = t + timedelta(minutes=minutes)
            guid, by = self._guid(), self._pick(self.clerks[role])
            self._task(case_id, task, "completed", t, closed, by, guid=guid)
            done.append((guid, bpmn_id, by, closed))
            if bpmn_id == "accept":
                accepted_at = closed
            elif bpmn_id == "review":
                review_end = closed
            elif bpmn_id == "register":
                cert_end = closed
            t = closed
        if stop < len(path):
            if running:
                self._open(case_id, path[stop], t, number, claim=True)
            else:
                self._task(case_id, path[stop], "cancelled", t, t + timedelta(hours=2))
        elif running and kind.exception and rng.random() < 0.5:  # a court order the register refused
            self._open(case_id, kind.exception, started + timedelta(minutes=1), number)
        if cert_end is None and review_end is not None:
            cert_end = review_end + timedelta(minutes=rng.uniform(2, 15))  # 登簿、缮证 follow the review
        ended_at = None
        if status == "completed":
            ended_at = min(max(t, cert_end or t) + timedelta(minutes=1), now)
        elif status == "cancelled":
            ended_at = min(t + timedelta(hours=2), now)
        light = self._clock(kind, case_id, number, status, accepted_at, review_end, cert_end, ended_at)
        if kind.urges and light in ("yellow", "red") and rng.random() < 0.3:
            urge_id = "urge_red" if light == "red" else "urge_yellow"
            urge = (urge_id, URGE_NAMES[urge_id], "supervisor")
            created = (accepted_at or started) + timedelta(days=3)
            if running:
                self._open(case_id, urge, created, number)
            elif ended_at is not None and created < ended_at:
                closed = min(created + timedelta(hours=1), ended_at)
                guid, by = self._guid(), self._pick(self.clerks["supervisor"])
                self._task(case_id, urge, "completed", created, closed, by, guid=guid)
                done.append((guid, urge[0], by, closed))
        if running:
            self.stored.active += 1
        starter = self.clerks["window_clerk"][i % len(self.clerks["window_clerk"])] if path else "court_link"
        updated = max([started, *(d[3] for d in done), *([ended_at] if ended_at else [])])
        summary, keys = self._pick(plan.summaries[kind.process_id])
        self.rows["cases"].append((case_id, number, kind.process_id, kind.version_id, status, 0, 0,
                                   len(done) + (status != "active"), starter, started, updated, ended_at,
                                   REASONS.get(status), summary, PLACEHOLDER_STATE))
        search = self.rows["case_search_key"]
        search.append((self._id("case_search_key"), case_id, number))
        for key in keys:
            search.append((self._id("case_search_key"), case_id, key))
        if plan.events:
            ev = self.rows["case_event"]
            ev.append((self._id("case_event"), case_id, started, starter, "case_started", None, None,
                       f'{{"process_id": "{kind.process_id}", "version": {kind.version}}}'))
            for guid, bpmn_id, by, at in sorted(done, key=lambda d: d[3]):
                ev.append((self._id("case_event"), case_id, at, by, "task_completed", guid, bpmn_id,
                           _ANSWER_JSON[bpmn_id]))
            if ended_at is not None:
                ev.append((self._id("case_event"), case_id, ended_at, "system" if status == "completed" else starter,
                           f"case_{status}", None, None,
                           '{"reason": "申请人撤回申请"}' if status == "cancelled" else "{}"))

    def _clock(self, kind: _Kind, case_id: int, number: str, status: str, accepted_at: datetime | None,
               review_end: datetime | None, cert_end: datetime | None, ended_at: datetime | None) -> str | None:
        """The case's deadline clock (and its pause and stage times); returns its light."""
        if kind.limit is None or accepted_at is None:
            return None
        rng, now = self.rng, self.plan.now
        running = status in ("active", "suspended")
        due = _due(kind.limit, accepted_at)
        completed_at = ended_by = paused_since = pause_reason = None
        if cert_end is not None and cert_end <= now:
            completed_at, ended_by = cert_end, "certificate"
        elif ended_at is not None:
            completed_at, ended_by = ended_at, "completed" if status == "completed" else "cancelled"
        paused_seconds = 0
        if kind.process_id in ("secondhand_transfer", "transfer_with_mortgage"):  # the applicant pays the tax
            begin = accepted_at + timedelta(seconds=5)
            end: datetime | None = min(begin + timedelta(minutes=rng.uniform(5, 60 * 6)), completed_at or now)
            if completed_at is None and running and rng.random() < 0.3:
                end, paused_since, pause_reason = None, begin, "unpaid_tax"
            else:
                paused_seconds = int((end - begin).total_seconds())
            self.rows["case_clock_pause"].append((self._id("case_clock_pause"), case_id, "unpaid_tax", begin, end,
                                                  None if end is None else 0))
        at = completed_at or paused_since or now
        if kind.limit.kind == "minutes":
            overdue = at > due
            left = (due - at).total_seconds() / 60 / kind.limit.value
        else:
            overdue = at.astimezone(SHANGHAI).date() > due.astimezone(SHANGHAI).date()
            left = (due - at).total_seconds() / 86400 / (kind.limit.value * 7 / 5)
        light = "red" if overdue else ("yellow" if left <= self.plan.yellow_share else "green")
        self.rows["case_clock"].append((case_id, number, kind.process_id, kind.limit.kind, kind.limit.value,
                                        kind.one_hour, accepted_at, due, paused_since, pause_reason, paused_seconds,
                                        0, light, accepted_at, completed_at, ended_by))
        if kind.one_hour:
            stages: list[tuple[str, datetime, datetime | None]] = [
                ("acceptance", accepted_at - timedelta(minutes=rng.uniform(3, 20)), accepted_at)]
            if review_end is not None:
                stages.append(("review", accepted_at, review_end))
                if cert_end is not None and cert_end <= now:
                    stages.append(("certificate", review_end, cert_end))
                elif running:
                    stages.append(("certificate", review_end, None))
            elif running:
                stages.append(("review", accepted_at, None))
            for stage, begin, end in stages:
                paused = paused_seconds if stage == "review" else 0
                minutes = None if end is None else _CENT * int(max(0.0, ((end - begin).total_seconds() - paused) / 0.6))
                self.rows["case_stage_time"].append((self._id("case_stage_time"), case_id, stage, begin, end, minutes))
        return light


# ---------------------------------------------------------------------------- writing

def store_cases(engine: Engine, n: int, *, active_share: float = 0.03, seed: int = 2026, events: bool = True,
                jobs: int | None = None, rebuild_indexes: bool | None = None, batch: int = BATCH,
                log: Callable[[str], None] | None = None) -> Stored:
    """Write n more cases up to the engine clock's now (processes/ must be deployed); see the module."""
    say = log or (lambda _line: None)
    began = time.perf_counter()
    plan = _plan(engine, n, active_share, seed, events)
    stored = Stored(cases=n, first_id=plan.last_ids["cases"] + 1)
    ranges = [(lo, min(n, lo + batch)) for lo in range(0, n, batch)]
    if engine.db.is_sqlite:
        for lo, hi in ranges:
            stored.add(_insert(engine, _Chunk(plan, lo, hi)))
    else:
        rebuild = n >= REBUILD_FROM if rebuild_indexes is None else rebuild_indexes
        _load_postgres(engine, plan, ranges, stored, rebuild, jobs or min(2, os.cpu_count() or 1), say)
    with engine.db.write() as s:  # the case numbers the engine hands out next go on after these
        for k, (first, year, before) in enumerate(plan.years):
            last = plan.years[k + 1][0] if k + 1 < len(plan.years) else n
            if last > first:
                row = s.get(Counter, f"case:{year}")
                if row is None:
                    s.add(Counter(name=f"case:{year}", value=before + last - first))
                else:
                    row.value = before + last - first
    stored.seconds = time.perf_counter() - began
    say(f"stored {n} cases ({stored.active} active, {stored.open_tasks} open tasks) in {stored.seconds:.1f} s")
    return stored


def _insert(engine: Engine, chunk: _Chunk) -> Stored:
    """SQLite: the chunk's rows with executemany (the JSON columns given as Python values)."""
    with engine.db.write() as s:
        for name, rows in chunk.rows.items():
            if not rows:
                continue
            table, cols = TABLES[name], COLUMNS[name]
            as_json = [isinstance(table.c[c].type, JSON) for c in cols]
            s.execute(table.insert(), [{c: (json.loads(v) if j else v) for c, j, v in zip(cols, as_json, row,
                                                                                        strict=True)}
                                       for row in rows])
    return chunk.stored


def _copy(conn: psycopg.Connection[Any], types: dict[str, list[str]], chunk: _Chunk) -> Stored:
    """PostgreSQL: the chunk's rows with binary COPY, in one transaction (cases before their rows)."""
    with conn.cursor() as cur:
        for name, rows in chunk.rows.items():
            if rows:
                with cur.copy(f"COPY {name} ({', '.join(COLUMNS[name])}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(types[name])
                    for row in rows:
                        copy.write_row(row)
    conn.commit()
    return chunk.stored


_WORKER: dict[str, Any] = {}


def _worker_start(url: str, plan: _Plan, types: dict[str, list[str]]) -> None:
    _WORKER.update(conn=psycopg.connect(url), plan=plan, types=types)


def _worker_chunk(bounds: tuple[int, int]) -> Stored:
    return _copy(_WORKER["conn"], _WORKER["types"], _Chunk(_WORKER["plan"], *bounds))


def _load_postgres(engine: Engine, plan: _Plan, ranges: list[tuple[int, int]], stored: Stored, rebuild: bool,
                   jobs: int, say: Callable[[str], None]) -> None:
    began = time.perf_counter()
    url = engine.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        types = {}
        for name, cols in COLUMNS.items():
            found = dict(conn.execute("SELECT attname, atttypid::regtype::text FROM pg_attribute "
                                      "WHERE attrelid = %s::regclass AND attnum > 0", (name,)).fetchall())
            # json travels as its text (json's binary form is the text): the values are JSON already
            types[name] = ["text" if found[c] == "json" else found[c] for c in cols]
        saved = _drop_indexes(conn) if rebuild else []
        conn.commit()
        try:
            if jobs > 1 and len(ranges) > 1:
                with multiprocessing.get_context("fork").Pool(jobs, _worker_start, (url, plan, types)) as pool:
                    for k, part in enumerate(pool.imap_unordered(_worker_chunk, ranges), 1):
                        stored.add(part)
                        if k % 10 == 0:
                            say(f"  {k} of {len(ranges)} chunks written")
            else:
                for lo, hi in ranges:
                    stored.add(_copy(conn, types, _Chunk(plan, lo, hi)))
        finally:
            conn.rollback()
            if saved:
                say(f"  rows written at {time.perf_counter() - began:.1f} s; building {len(saved)} indexes "
                    "and constraints again")
                for ddl in saved:
                    conn.execute(ddl)
                conn.commit()
        for name in RESERVE:
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                         f"(SELECT coalesce(max(id), 1) FROM {name}))")
        conn.commit()
        say(f"  indexes ready at {time.perf_counter() - began:.1f} s")
        conn.autocommit = True
        conn.execute(f"{'VACUUM ' if rebuild else ''}ANALYZE {', '.join(TABLES)}")


def _drop_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop the loaded tables' secondary indexes, unique constraints and foreign keys; returns the DDL
    that makes them again (indexes and unique constraints first, then the foreign keys)."""
    names = list(TABLES)
    constraints = conn.execute(
        "SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid), contype FROM pg_constraint "
        "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('u', 'f') ORDER BY contype DESC, conname",
        (names,)).fetchall()
    indexes = conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
        "AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname "
        "AND c.contype IN ('p', 'u')) ORDER BY i.indexname", (names,)).fetchall()
    for name, table, _ddl, _type in sorted(constraints, key=lambda c: c[3] != "f"):  # foreign keys first
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ddl in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    return [ddl for _name, ddl in indexes] + [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}'
                                              for name, table, ddl, _type in constraints]
