"""Deadlines 限时办结: the time-limit table, each case's clock, its light, stage times, the one-hour rate.

The table (processes/time_limits.json, seed 003 附件2 §五) gives every business kind a promised
limit: a number of Chinese working days, or "immediate" 即时办理, counted here in minutes
(`immediate_minutes`, default 60: the one-hour target). A case's clock starts at acceptance 受理
and copies the limit, so a later change of the table never moves a case already accepted.

Counting
- Working-day limits: due = `add_workdays(acceptance day, n)`, at the end of that day (the day
  of acceptance is not counted, 民法典 第二百零一条). Remaining = working days after today up to
  the due day; overdue (red) from the first calendar day after the due day.
- Minute limits: due = acceptance moment + n minutes; remaining in minutes; overdue after due.
- The clock stops (seed 003 §五 (一)–(四)) for a reason from the table. On resume the due date moves
  by the working time that passed: working-day limits by `workdays_between(paused, resumed)`
  working days (the same counting as elapsed time, so the remaining days at resume equal those at
  the pause), minute limits by the minutes paused.
- The clock ends when the certificate stage ends (§五 counts to 登簿; what follows — waiting for
  the applicant to collect — is not the office's time) or when the case completes or is cancelled.

The light
- green; yellow when the remaining share of the limit is at or below `yellow_share()` (default
  0.3, `ONEWINDOW_DEADLINE_YELLOW_SHARE`); red when overdue. A paused clock keeps the light it has.
- `CaseClock.light` is the light last *published* to the case: `refresh_lights` (the worker's job,
  every minute) computes the live light and, when it becomes more severe, sends the case
  `deadline_yellow` / `deadline_red` (once per case and light: the message key) and then stores it.
  A light that becomes less severe (a resume moved the due date) is stored without a message.
- A task of a one-hour kind has its own light from its stage's budget (受理/审批/出证 20 minutes
  each, seed 001): red when open longer than the budget, yellow when the same remaining share is
  left (i.e. past 70 % by default), shown as the worse of that and the case's light; other tasks
  show the case's light.

Every function takes the time from its caller (the engine's injectable clock), never the wall clock,
and writes only through the session it is given.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
from collections import defaultdict, namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from threading import Lock
from typing import Any

from sqlalchemy import BigInteger, Connection, String, any_, bindparam, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from domain import calendar
from domain.clock import SHANGHAI
from domain.errors import BusinessError
from storage.db import Database, Prepared
from storage.models import Case, CaseClock, CaseClockPause, CaseStageTime, HumanTask

__all__ = [
    "EVENTS",
    "LIGHTS",
    "TABLE_PATH",
    "BusinessKind",
    "Limit",
    "PauseReason",
    "Remaining",
    "Stage",
    "TimeLimitTable",
    "case_deadline",
    "clock_data",
    "close_finished",
    "compute_due",
    "current_light",
    "get_clock",
    "immediate_minutes",
    "light_at",
    "load_table",
    "one_hour_rate",
    "open_task_lights",
    "pause_clock",
    "record_stage",
    "refresh_lights",
    "remaining",
    "resume_clock",
    "stage_statistics",
    "start_clock",
    "task_lights",
    "yellow_share",
]

log = logging.getLogger(__name__)

TABLE_PATH = Path(__file__).resolve().parents[1] / "processes" / "time_limits.json"
"""The office's table; `ONEWINDOW_TIME_LIMITS` names another file."""

LIGHTS = ("green", "yellow", "red")
EVENTS = ("start", "end")
_SEVERITY = {"green": 0, "yellow": 1, "red": 2}
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
_ACTIVE = ("active", "suspended")
_ENDED = ("completed", "cancelled")


# =============================================================================== the table


@dataclass(frozen=True)
class Limit:
    """A promised limit as a clock counts it."""

    kind: str  # workdays | minutes
    value: int

    def to_data(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value}


@dataclass(frozen=True)
class BusinessKind:
    """One business kind 办理事项: a row of the table, or a kind combined from rows."""

    code: str
    name: str
    row: int | None  # 序号 in the table; None for a combined kind
    from_rows: tuple[int, ...]  # the rows a combined kind is derived from
    legal_workdays: int
    promised: Mapping[str, Any]  # {"workdays": n} or {"immediate": True}, as in the file
    one_hour: bool
    legal_text: str
    note: str | None = None

    @property
    def immediate(self) -> bool:
        return bool(self.promised.get("immediate"))


@dataclass(frozen=True)
class PauseReason:
    """A situation in which the clock stops (不列入承诺办理时限的情形)."""

    code: str
    clause: str
    name: str
    text: str


@dataclass(frozen=True)
class Stage:
    code: str
    name: str
    budget_minutes: int


@dataclass(frozen=True)
class TimeLimitTable:
    rows: tuple[BusinessKind, ...]
    combined: tuple[BusinessKind, ...]
    pause_reasons: Mapping[str, PauseReason]
    stages: Mapping[str, Stage]
    stage_roles: Mapping[str, str]  # lane role -> stage, for task lights of one-hour kinds
    immediate_minutes: int
    yellow_share: float
    source: str = ""

    @property
    def kinds(self) -> dict[str, BusinessKind]:
        return {k.code: k for k in (*self.rows, *self.combined)}

    def kind(self, code: str) -> BusinessKind:
        found = self.kinds.get(code)
        if found is None:
            raise BusinessError("UNKNOWN_BUSINESS",
                                f"办理事项「{code}」不在办理时限表中（可用：{', '.join(self.kinds)}）", business=code)
        return found

    def limit_for(self, code: str) -> Limit:
        kind = self.kind(code)
        if kind.immediate:
            return Limit("minutes", immediate_minutes(self))
        return Limit("workdays", int(kind.promised["workdays"]))

    def pause_reason(self, code: str) -> PauseReason:
        found = self.pause_reasons.get(code)
        if found is None:
            raise BusinessError("UNKNOWN_PAUSE_REASON",
                                f"「{code}」不是时限中止的情形（可用：{', '.join(self.pause_reasons)}）", reason=code)
        return found

    def stage(self, code: str) -> Stage:
        found = self.stages.get(code)
        if found is None:
            raise BusinessError("UNKNOWN_STAGE", f"「{code}」不是办理环节（可用：{', '.join(self.stages)}）",
                                stage=code)
        return found

    def to_data(self) -> dict[str, Any]:
        """For the public guide page: every kind with its limits, and what stops the clock."""
        def kind_data(k: BusinessKind) -> dict[str, Any]:
            return {"code": k.code, "name": k.name, "row": k.row, "from_rows": list(k.from_rows),
                    "legal_workdays": k.legal_workdays, "legal_text": k.legal_text, "promised": dict(k.promised),
                    "limit": self.limit_for(k.code).to_data(), "one_hour": k.one_hour, "note": k.note}

        return {
            "rows": [kind_data(k) for k in self.rows],
            "combined": [kind_data(k) for k in self.combined],
            "pause_reasons": [vars(r) for r in self.pause_reasons.values()],
            "stages": [vars(s) for s in self.stages.values()],
            "immediate_minutes": immediate_minutes(self),
            "yellow_share": yellow_share(self),
        }


def parse_table(data: Mapping[str, Any], where: str = "time_limits.json") -> TimeLimitTable:
    """Check the table as a whole and build it; every problem is reported at once (ValueError)."""
    problems: list[str] = []

    def kind_of(entry: Mapping[str, Any], label: str, row: int | None,
                from_rows: tuple[int, ...]) -> BusinessKind | None:
        code, name, promised = entry.get("code"), entry.get("name"), entry.get("promised")
        bad = len(problems)
        if not isinstance(code, str) or not _CODE.match(code):
            problems.append(f"{label}: code {code!r} is not snake_case")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{label}: name is missing")
        legal = entry.get("legal_workdays")
        if isinstance(legal, bool) or not isinstance(legal, int) or legal <= 0:
            problems.append(f"{label}: legal_workdays must be a positive whole number, got {legal!r}")
        if not isinstance(promised, Mapping) or set(promised) not in ({"workdays"}, {"immediate"}):
            problems.append(f"{label}: promised must be {{\"workdays\": n}} or {{\"immediate\": true}}, "
                            f"got {promised!r}")
        elif "workdays" in promised and (isinstance(promised["workdays"], bool)
                                         or not isinstance(promised["workdays"], int) or promised["workdays"] <= 0):
            problems.append(f"{label}: promised workdays must be a positive whole number")
        elif "immediate" in promised and promised["immediate"] is not True:
            problems.append(f"{label}: promised immediate must be true")
        if not isinstance(entry.get("one_hour", False), bool):
            problems.append(f"{label}: one_hour must be true or false")
        if len(problems) > bad:
            return None
        return BusinessKind(code=code, name=name, row=row, from_rows=from_rows, legal_workdays=legal,
                            promised=dict(promised), one_hour=bool(entry.get("one_hour", False)),
                            legal_text=str(entry.get("legal_text", legal)), note=entry.get("note"))

    rows: list[BusinessKind] = []
    for i, entry in enumerate(data.get("rows") or []):
        number = entry.get("row")
        kind = kind_of(entry, f"rows[{i}] (row {number})", number, ())
        if kind is not None:
            rows.append(kind)
    numbers = [k.row for k in rows]
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"rows must be numbered 1..n in order, got {numbers}")
    by_row = {k.row: k for k in rows}
    combined: list[BusinessKind] = []
    for i, entry in enumerate(data.get("combined") or []):
        from_rows = tuple(entry.get("from_rows") or ())
        label = f"combined[{i}] ({entry.get('code')})"
        missing = [r for r in from_rows if r not in by_row]
        if not from_rows or missing:
            problems.append(f"{label}: from_rows must name rows of the table, got {list(from_rows)}")
            continue
        kind = kind_of(entry, label, None, from_rows)
        if kind is None:
            continue
        sources = [by_row[r] for r in from_rows]
        if all(not s.immediate for s in sources) and not kind.immediate:
            longest = max(s.promised["workdays"] for s in sources)
            if kind.promised["workdays"] != longest:
                problems.append(f"{label}: promised {kind.promised['workdays']} working days, but the longest of "
                                f"rows {list(from_rows)} is {longest}")
        elif kind.immediate != all(s.immediate for s in sources):
            problems.append(f"{label}: promised does not match rows {list(from_rows)}")
        combined.append(kind)
    codes = [k.code for k in (*rows, *combined)]
    twice = sorted({c for c in codes if codes.count(c) > 1})
    if twice:
        problems.append(f"codes used twice: {', '.join(twice)}")
    reasons: dict[str, PauseReason] = {}
    for i, entry in enumerate(data.get("pause_reasons") or []):
        code = entry.get("code")
        if not isinstance(code, str) or not _CODE.match(code) or code in reasons:
            problems.append(f"pause_reasons[{i}]: code {code!r} is not snake_case or is used twice")
            continue
        reasons[code] = PauseReason(code, str(entry.get("clause", "")), str(entry.get("name", code)),
                                    str(entry.get("text", "")))
    stages: dict[str, Stage] = {}
    for i, entry in enumerate(data.get("stages") or []):
        budget = entry.get("budget_minutes")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
            problems.append(f"stages[{i}]: budget_minutes must be a positive whole number")
            continue
        stages[str(entry.get("code"))] = Stage(str(entry.get("code")), str(entry.get("name", "")), budget)
    roles = dict(data.get("stage_roles") or {})
    unknown = sorted(set(roles.values()) - set(stages))
    if unknown:
        problems.append(f"stage_roles name unknown stages: {', '.join(unknown)}")
    minutes = data.get("immediate_minutes", 60)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
        problems.append(f"immediate_minutes must be a positive whole number, got {minutes!r}")
    share = data.get("yellow_share", 0.3)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
        problems.append(f"yellow_share must be a number between 0 and 1, got {share!r}")
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))
    return TimeLimitTable(tuple(rows), tuple(combined), reasons, stages, roles, minutes, float(share),
                          str(data.get("source", "")))


_cache: dict[tuple[str, int], TimeLimitTable] = {}
_cache_lock = Lock()


@functools.lru_cache(maxsize=64)
def _resolved(path: str) -> str:
    return str(Path(path).resolve())


def load_table(path: str | Path | None = None) -> TimeLimitTable:
    """The time-limit table (default: `ONEWINDOW_TIME_LIMITS` or processes/time_limits.json).

    Cached per file and modification time, so an office's edit is seen without a restart.
    """
    target = _resolved(str(path or os.environ.get("ONEWINDOW_TIME_LIMITS") or TABLE_PATH))
    key = (target, os.stat(target).st_mtime_ns)
    table = _cache.get(key)
    if table is None:
        with _cache_lock:
            table = _cache.get(key)
            if table is None:
                table = parse_table(json.loads(Path(target).read_text(encoding="utf-8")), where=target)
                _cache[key] = table
    return table


def _env_number(name: str, default: float, *, whole: bool = False) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a {'whole ' if whole else ''}number") from None
    return value


def yellow_share(table: TimeLimitTable | None = None) -> float:
    """The remaining share of a limit at or below which a light is yellow (default 0.3)."""
    default = (table or load_table()).yellow_share
    value = _env_number("ONEWINDOW_DEADLINE_YELLOW_SHARE", default)
    if not 0 < value < 1:
        raise ValueError(f"ONEWINDOW_DEADLINE_YELLOW_SHARE must be between 0 and 1, got {value}")
    return value


def immediate_minutes(table: TimeLimitTable | None = None) -> int:
    """Minutes an immediate 即时办理 kind has (default 60: the one-hour target)."""
    default = (table or load_table()).immediate_minutes
    value = int(_env_number("ONEWINDOW_DEADLINE_IMMEDIATE_MINUTES", default, whole=True))
    if value <= 0:
        raise ValueError(f"ONEWINDOW_DEADLINE_IMMEDIATE_MINUTES must be positive, got {value}")
    return value


# =============================================================================== arithmetic


def _local(moment: datetime) -> datetime:
    return moment.astimezone(SHANGHAI)


def local_iso(moment: datetime | None) -> str | None:
    """An aware time as ISO text in Asia/Shanghai (what case data and pages show)."""
    return _local(moment).isoformat() if moment is not None else None


def _end_of_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), SHANGHAI)


def compute_due(limit: Limit, accepted_at: datetime) -> datetime:
    """When a limit counted from `accepted_at` runs out (see the module's "Counting")."""
    if limit.kind == "workdays":
        return _end_of_day(calendar.add_workdays(_local(accepted_at).date(), limit.value))
    if limit.kind == "minutes":
        return accepted_at + timedelta(minutes=limit.value)
    raise ValueError(f"unknown limit kind {limit.kind!r}")


@dataclass(frozen=True)
class Remaining:
    kind: str  # workdays | minutes
    value: int | float  # negative: overdue by
    share: float  # of the limit (negative when overdue)
    overdue: bool

    def to_data(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value}


def _moment(clock: CaseClock, now: datetime) -> datetime:
    """The time a clock stands at: its end, the start of its pause, or now."""
    if clock.completed_at is not None:
        return clock.completed_at
    if clock.paused_since is not None:
        return clock.paused_since
    return now


def remaining(clock: CaseClock, now: datetime) -> Remaining:
    """Time left of the limit: whole working days after today up to the due day, or minutes."""
    at = _moment(clock, now)
    if clock.limit_kind == "workdays":
        today, due_day = _local(at).date(), _local(clock.due_at).date()
        days = calendar.workdays_between(today, due_day)
        return Remaining("workdays", days, days / clock.limit_value, today > due_day)
    minutes = (clock.due_at - at).total_seconds() / 60
    return Remaining("minutes", round(minutes, 1), minutes / clock.limit_value, at > clock.due_at)


def _light(left: Remaining, share: float) -> str:
    if left.overdue:
        return "red"
    return "yellow" if left.share <= share else "green"


def light_at(clock: CaseClock, now: datetime, share: float | None = None) -> str:
    """The light computed from the due date at `now` (a paused or ended clock: at its pause or end)."""
    return _light(remaining(clock, now), yellow_share() if share is None else share)


def current_light(clock: CaseClock, now: datetime, share: float | None = None) -> str:
    """The light to show: a paused or finished clock keeps the light it has; a running one is live."""
    if clock.paused_since is not None or clock.completed_at is not None:
        return clock.light
    return light_at(clock, now, share)


def _worse(a: str, b: str) -> str:
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


def _overlap_seconds(start: datetime, end: datetime, pauses: Iterable[CaseClockPause], now: datetime) -> float:
    total = 0.0
    for p in pauses:
        lo = max(start, p.started_at)
        hi = min(end, p.ended_at or now)
        if hi > lo:
            total += (hi - lo).total_seconds()
    return total


def _net_minutes(start: datetime, end: datetime, pauses: Iterable[CaseClockPause], now: datetime) -> float:
    """Minutes from start to end without the time the clock stood still."""
    return max(0.0, ((end - start).total_seconds() - _overlap_seconds(start, end, pauses, now)) / 60)


def _minutes_decimal(minutes: float) -> Decimal:
    return Decimal(str(minutes)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# =============================================================================== the clock of a case


def get_clock(session: Session, case_id: int) -> CaseClock | None:
    return session.get(CaseClock, case_id)


def _require_clock(session: Session, case_id: int) -> CaseClock:
    clock = session.get(CaseClock, case_id)
    if clock is None:
        raise BusinessError("NO_CLOCK", "本案件尚未受理计时（请先调用 deadline.start）")
    return clock


def start_clock(session: Session, case_id: int, case_number: str, business: str, now: datetime,
                table: TimeLimitTable | None = None) -> CaseClock:
    """Start the case's clock at acceptance. One clock per case: starting again returns the same."""
    existing = session.get(CaseClock, case_id)
    if existing is not None:
        return existing
    table = table or load_table()
    kind = table.kind(business)
    limit = table.limit_for(business)
    clock = CaseClock(
        case_id=case_id, case_number=case_number, business=business, limit_kind=limit.kind,
        limit_value=limit.value, one_hour=kind.one_hour, accepted_at=now, due_at=compute_due(limit, now),
        paused_seconds=0, paused_workdays=0, light="green", light_changed_at=now,
    )
    session.add(clock)
    session.flush()
    return clock


def pause_clock(session: Session, case_id: int, reason: str, now: datetime,
                table: TimeLimitTable | None = None) -> CaseClock:
    """Stop the clock for a reason of seed 003 §五. Pausing a paused clock keeps the pause it has."""
    (table or load_table()).pause_reason(reason)
    clock = _require_clock(session, case_id)
    if clock.completed_at is not None:
        raise BusinessError("CLOCK_COMPLETED", "本案件的办理时限已结束计时，不能中止")
    if clock.paused_since is None:
        clock.paused_since = now
        clock.pause_reason = reason
        session.add(CaseClockPause(case_id=case_id, reason=reason, started_at=now))
        session.flush()
    return clock


def _end_pause(session: Session, clock: CaseClock, now: datetime) -> None:
    since = clock.paused_since
    if since is None:
        return
    end = max(now, since)
    if clock.limit_kind == "workdays":
        shift = max(0, calendar.workdays_between(since, end))
        if shift:
            clock.due_at = _end_of_day(calendar.add_workdays(_local(clock.due_at).date(), shift))
    else:
        shift = 0
        clock.due_at = clock.due_at + (end - since)
    clock.paused_seconds = (clock.paused_seconds or 0) + int((end - since).total_seconds())
    clock.paused_workdays = (clock.paused_workdays or 0) + shift
    pause = session.scalars(select(CaseClockPause).where(
        CaseClockPause.case_id == clock.case_id, CaseClockPause.ended_at.is_(None))
        .order_by(CaseClockPause.started_at.desc(), CaseClockPause.id.desc())).first()
    if pause is not None:
        pause.ended_at = end
        pause.workdays = shift if clock.limit_kind == "workdays" else None
    clock.paused_since = None
    clock.pause_reason = None


def resume_clock(session: Session, case_id: int, now: datetime) -> CaseClock:
    """Let the clock run again; the due date moves by the working time it stood still. A running
    clock is left as it is."""
    clock = _require_clock(session, case_id)
    if clock.paused_since is not None and clock.completed_at is None:
        _end_pause(session, clock, now)
        session.flush()
    return clock


def _complete(session: Session, clock: CaseClock, at: datetime, ended_by: str) -> None:
    """End the clock: an open pause ends with it; the light becomes the light it ended with."""
    _end_pause(session, clock, at)
    clock.completed_at = at
    clock.ended_by = ended_by
    final = light_at(clock, at)
    if final != clock.light:
        clock.light = final
        clock.light_changed_at = at


def clock_data(clock: CaseClock, now: datetime) -> dict[str, Any]:
    """Everything a case page or a report shows about a clock, JSON-ready (times in Asia/Shanghai)."""
    left = remaining(clock, now)
    return {
        "business": clock.business,
        "limit": {"kind": clock.limit_kind, "value": clock.limit_value},
        "one_hour": clock.one_hour,
        "accepted_at": local_iso(clock.accepted_at),
        "due_at": local_iso(clock.due_at),
        "paused": clock.paused_since is not None,
        "pause_reason": clock.pause_reason,
        "paused_since": local_iso(clock.paused_since),
        "paused_workdays": clock.paused_workdays,
        "paused_minutes": round((clock.paused_seconds or 0) / 60, 1),
        "light": current_light(clock, now),
        "published_light": clock.light,
        "remaining": left.to_data(),
        "completed_at": local_iso(clock.completed_at),
        "ended_by": clock.ended_by,
        "within_limit": (clock.completed_at <= clock.due_at if clock.limit_kind == "minutes"
                         else _local(clock.completed_at).date() <= _local(clock.due_at).date())
        if clock.completed_at is not None else None,
    }


def case_deadline(session: Session, case_id: int, now: datetime) -> dict[str, Any] | None:
    """`clock_data` of a case, or None if its clock has not started."""
    clock = session.get(CaseClock, case_id)
    return clock_data(clock, now) if clock is not None else None


# =============================================================================== stages


def record_stage(session: Session, case_id: int, stage: str, event: str, now: datetime,
                 table: TimeLimitTable | None = None) -> CaseStageTime:
    """Record a stage's start or end (受理 acceptance, 审批 review, 出证 certificate).

    Starting a stage already open returns it. Ending a stage that was not started starts it where
    the case's last stage ended (else at acceptance, else now): diagrams may mark only the ends of
    consecutive stages. `minutes` excludes time the clock stood still within the stage. The end of
    the certificate stage ends the case's clock (§五 counts to registration 登簿).
    """
    table = table or load_table()
    table.stage(stage)
    if event not in EVENTS:
        raise BusinessError("UNKNOWN_EVENT", f"环节事件「{event}」应为 start 或 end", event=event)
    row = session.scalars(select(CaseStageTime).where(
        CaseStageTime.case_id == case_id, CaseStageTime.stage == stage, CaseStageTime.ended_at.is_(None))
        .order_by(CaseStageTime.started_at.desc(), CaseStageTime.id.desc())).first()
    if event == "start":
        if row is None:
            row = CaseStageTime(case_id=case_id, stage=stage, started_at=now)
            session.add(row)
            session.flush()
        return row
    clock = session.get(CaseClock, case_id)
    if row is None:
        last_end = session.scalar(select(CaseStageTime.ended_at).where(
            CaseStageTime.case_id == case_id, CaseStageTime.ended_at.is_not(None))
            .order_by(CaseStageTime.ended_at.desc()).limit(1))
        started = last_end or (clock.accepted_at if clock is not None else None) or now
        row = CaseStageTime(case_id=case_id, stage=stage, started_at=min(started, now))
        session.add(row)
    pauses = _pauses_of(session, [case_id]).get(case_id, [])
    row.ended_at = now
    row.minutes = _minutes_decimal(_net_minutes(row.started_at, now, pauses, now))
    if stage == "certificate" and clock is not None and clock.completed_at is None:
        _complete(session, clock, now, "certificate")
    session.flush()
    return row


def _pauses_of(session: Session, case_ids: Iterable[int]) -> dict[int, list[CaseClockPause]]:
    ids = list(set(case_ids))
    found: dict[int, list[CaseClockPause]] = defaultdict(list)
    for chunk in _chunks(ids):
        for p in session.scalars(select(CaseClockPause).where(CaseClockPause.case_id.in_(chunk))
                                 .order_by(CaseClockPause.started_at)):
            found[p.case_id].append(p)
    return found


def _chunks(ids: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


# =============================================================================== task lights


def _field(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, Mapping) else getattr(item, name)


_CLOCK = CaseClock.__table__
_PAUSE = CaseClockPause.__table__
_ClockRow = namedtuple("_ClockRow", [c.name for c in _CLOCK.c])  # type: ignore[misc]
_PauseRow = namedtuple("_PauseRow", [c.name for c in _PAUSE.c])  # type: ignore[misc]


def _clocks_with_pauses(dialect: str) -> Any:
    """The clocks of the cases in the list `b_ids`, each with its pauses (none: one row of NULLs),
    as one statement whatever the list's length (so it is compiled and prepared once): an array on
    PostgreSQL, a JSON array on SQLite."""
    if dialect == "postgresql":
        match = _CLOCK.c.case_id == any_(bindparam("b_ids", type_=ARRAY(BigInteger)))
    else:
        match = _CLOCK.c.case_id.in_(select(literal_column("value")).select_from(
            func.json_each(bindparam("b_ids", type_=String))))
    return (select(*_CLOCK.c, *_PAUSE.c).select_from(_CLOCK.outerjoin(_PAUSE, _PAUSE.c.case_id == _CLOCK.c.case_id))
            .where(match).order_by(_CLOCK.c.case_id, _PAUSE.c.started_at))


_P_CLOCKS = Prepared(_clocks_with_pauses)
_CLOCK_WIDTH = len(_CLOCK.c)
_CLOCK_CASE = list(_CLOCK.c).index(_CLOCK.c.case_id)
_PAUSE_ID = _CLOCK_WIDTH + list(_PAUSE.c).index(_PAUSE.c.id)


def _ids_param(conn: Connection, ids: list[int]) -> Any:
    return ids if conn.dialect.name == "postgresql" else json.dumps(ids)


def task_lights(session: Session | Connection, tasks: Iterable[Any], now: datetime,
                table: TimeLimitTable | None = None) -> dict[int, str | None]:
    """The light of each task (HumanTask rows or the engine's task dicts: id, case_id, role, created_at).

    One-hour kinds: the task's stage budget (by its lane's role, `stage_roles`) — red when open
    longer than the budget, yellow when the remaining share is at or below `yellow_share()` — and
    never better than the case's light. Other tasks: the case's light. None: the case has no clock.
    """
    table = table or load_table()
    share = yellow_share(table)
    items = list(tasks)
    case_ids = list({_field(t, "case_id") for t in items})
    # plain rows, not ORM objects, by one prepared statement (a task list asks this on every
    # page): rows read by attribute name as the models are
    conn = session.connection() if isinstance(session, Session) else session
    clocks: dict[int, Any] = {}
    pauses: dict[int, list[Any]] = defaultdict(list)
    if case_ids:
        for row in _P_CLOCKS.all(conn, {"b_ids": _ids_param(conn, case_ids)}):
            clock = clocks.get(row[_CLOCK_CASE])
            if clock is None:
                clock = clocks[row[_CLOCK_CASE]] = _ClockRow._make(row[:_CLOCK_WIDTH])
            if row[_PAUSE_ID] is not None:  # the pause's id: NULL when the clock never stood still
                pauses[clock.case_id].append(_PauseRow._make(row[_CLOCK_WIDTH:]))
    out: dict[int, str | None] = {}
    for t in items:
        clock = clocks.get(_field(t, "case_id"))
        if clock is None:
            out[_field(t, "id")] = None
            continue
        case_light = current_light(clock, now, share)
        stage = table.stages.get(table.stage_roles.get(_field(t, "role") or "", ""))
        if not clock.one_hour or stage is None or clock.completed_at is not None:
            out[_field(t, "id")] = case_light
            continue
        closed = t.get("closed_at") if isinstance(t, Mapping) else getattr(t, "closed_at", None)
        end = closed or now
        used = _net_minutes(_field(t, "created_at"), end, pauses.get(clock.case_id, []), now)
        left = Remaining("minutes", stage.budget_minutes - used, (stage.budget_minutes - used) / stage.budget_minutes,
                         used > stage.budget_minutes)
        out[_field(t, "id")] = _worse(_light(left, share), case_light)
    return out


def open_task_lights(session: Session, case_id: int, now: datetime) -> dict[int, str | None]:
    """`task_lights` of a case's open tasks, by human_task id."""
    tasks = session.scalars(select(HumanTask).where(HumanTask.case_id == case_id, HumanTask.state == "open")).all()
    return task_lights(session, tasks, now)


# =============================================================================== the worker's job


Send = Callable[[int, str, str, dict[str, Any]], bool]
"""(case_id, case_number, message name, payload) -> True if newly delivered or buffered, False if
the case no longer takes messages. Must be idempotent per (case, light): the engine's message key."""


def close_finished(db: Database, now: datetime) -> int:
    """End the clocks of cases that completed or were cancelled; returns how many."""
    with db.write() as s:
        q = (select(CaseClock, Case.status, Case.ended_at).join(Case, Case.id == CaseClock.case_id)
             .where(CaseClock.completed_at.is_(None), Case.status.in_(_ENDED)))
        if not db.is_sqlite:
            q = q.with_for_update(skip_locked=True, of=CaseClock)
        rows = s.execute(q).all()
        for clock, status, ended_at in rows:
            _complete(s, clock, ended_at or now, status)
        return len(rows)


def refresh_lights(db: Database, now: datetime, send: Send, share: float | None = None) -> dict[str, int]:
    """Recompute the lights of running clocks; tell a case when its light turns yellow or red.

    Safe with several workers at once: each message carries the key `{case_number}:{light}`, so a
    second worker's send is a duplicate; the stored light changes only from the value this worker
    read (compare-and-set), and only after the message was handed over, so a worker dying in
    between leaves the light unchanged and the next run sends again (a duplicate, so still once).
    A clock that skips yellow (red at once: a worker down for days, a 60-minute limit) gets only
    `deadline_red`; a light that gets better (a resume moved the due date) is stored silently.
    """
    share = yellow_share() if share is None else share
    closed = close_finished(db, now)
    with db.read() as s:
        clocks = s.scalars(select(CaseClock).join(Case, Case.id == CaseClock.case_id).where(
            CaseClock.completed_at.is_(None), CaseClock.paused_since.is_(None), Case.status.in_(_ACTIVE))).all()
    counts = {"checked": len(clocks), "closed": closed, "yellow": 0, "red": 0, "changed": 0, "failed": 0}
    for clock in clocks:
        light = light_at(clock, now, share)
        if light == clock.light:
            continue
        if _SEVERITY[light] > _SEVERITY[clock.light]:
            left = remaining(clock, now)
            payload = {"light": light, "due_at": local_iso(clock.due_at), "remaining": left.to_data()}
            try:
                fresh = send(clock.case_id, clock.case_number, f"deadline_{light}", payload)
            except Exception:  # noqa: BLE001 — one case must not stop the others; tried again next run
                log.exception("deadline: could not tell case %s its light is %s", clock.case_number, light)
                counts["failed"] += 1
                continue
            if fresh:
                counts[light] += 1
        with db.write() as s:
            result = s.execute(update(CaseClock).where(
                CaseClock.case_id == clock.case_id, CaseClock.light == clock.light,
                CaseClock.completed_at.is_(None), CaseClock.paused_since.is_(None),
            ).values(light=light, light_changed_at=now))
            counts["changed"] += result.rowcount
    return counts


# =============================================================================== statistics


def _p90(values: Sequence[float]) -> float | None:
    """The 90th percentile by the nearest-rank method (a value that occurred)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def one_hour_rate(session: Session, start: datetime, end: datetime,
                  table: TimeLimitTable | None = None) -> dict[str, Any]:
    """一小时办结率 over clocks of one-hour kinds that ended in [start, end) (cancelled cases left out).

    A case's time runs from its acceptance (the acceptance stage's start if recorded earlier than the
    clock's start) to its certificate (the certificate stage's end, else the clock's end), without
    the time its clock stood still; within one hour when at most `immediate_minutes` (60).
    """
    table = table or load_table()
    target = immediate_minutes(table)
    clocks = session.scalars(select(CaseClock).where(
        CaseClock.one_hour.is_(True), CaseClock.completed_at >= start, CaseClock.completed_at < end,
        CaseClock.ended_by.in_(("certificate", "completed")))).all()
    ids = [c.case_id for c in clocks]
    firsts: dict[int, datetime] = {}
    lasts: dict[int, datetime] = {}
    for chunk in _chunks(ids):
        for row in session.scalars(select(CaseStageTime).where(CaseStageTime.case_id.in_(chunk))):
            if row.stage == "acceptance":
                firsts[row.case_id] = min(firsts.get(row.case_id, row.started_at), row.started_at)
            if row.stage == "certificate" and row.ended_at is not None:
                lasts[row.case_id] = max(lasts.get(row.case_id, row.ended_at), row.ended_at)
    pauses = _pauses_of(session, ids)
    cases = []
    for c in clocks:
        t0 = min(c.accepted_at, firsts.get(c.case_id, c.accepted_at))
        t1 = lasts.get(c.case_id, c.completed_at)
        minutes = round(_net_minutes(t0, t1, pauses.get(c.case_id, []), t1), 2)
        cases.append({"case_number": c.case_number, "business": c.business, "minutes": minutes,
                      "within": minutes <= target})
    within = sum(1 for c in cases if c["within"])
    return {"target_minutes": target, "cases": len(cases), "within": within,
            "rate": within / len(cases) if cases else None, "detail": cases}


def stage_statistics(session: Session, start: datetime, end: datetime, one_hour_only: bool = False,
                     table: TimeLimitTable | None = None) -> dict[str, dict[str, Any]]:
    """Per stage: cases, mean and p90 minutes, share within the stage budget, over stages that ended
    in [start, end). A stage done twice in one case (sent back) counts once with both times added."""
    table = table or load_table()
    q = select(CaseStageTime).where(CaseStageTime.ended_at >= start, CaseStageTime.ended_at < end)
    if one_hour_only:
        q = q.join(CaseClock, CaseClock.case_id == CaseStageTime.case_id).where(CaseClock.one_hour.is_(True))
    per_case: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for row in session.scalars(q):
        per_case[row.stage][row.case_id] += float(row.minutes or 0)
    out: dict[str, dict[str, Any]] = {}
    for code, stage in table.stages.items():
        values = list(per_case.get(code, {}).values())
        out[code] = {
            "name": stage.name, "budget_minutes": stage.budget_minutes, "cases": len(values),
            "mean": round(sum(values) / len(values), 2) if values else None,
            "p90": round(_p90(values), 2) if values else None,
            "within_budget_share": (sum(1 for v in values if v <= stage.budget_minutes) / len(values))
            if values else None,
        }
    return out
