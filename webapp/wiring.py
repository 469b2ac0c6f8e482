"""Building the configured application: database, department adapters, engine, worker.

One place, so the web app, the CLI and the worker all talk to the same departments
(`ONEWINDOW_ADAPTERS=sandbox|http`) and send the outbox with the same senders.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, select, text

from adapters.court import CourtOrder
from adapters.factory import departments
from domain import deadlines, register
from domain.clock import SHANGHAI, Clock
from engine import Engine, EngineSettings
from engine.errors import CaseNotActive
from engine.runtime import SYSTEM, Actor
from engine.worker import Worker
from handlers.outbox import senders
from storage.counters import next_counter
from storage.db import Database
from storage.models import Counter

log = logging.getLogger("onewindow.wiring")


# EngineSettings a deployment may change from the environment: variable -> (field, type)
SETTINGS_VARIABLES: dict[str, tuple[str, type]] = {
    "ONEWINDOW_STEP_TIME_LIMIT": ("step_time_limit", float),  # seconds of script and handler time per step
    "ONEWINDOW_DEFAULT_RETRIES": ("default_retries", int),  # service retries when the diagram names none
    "ONEWINDOW_RETRY_DELAY": ("retry_delay", float),  # seconds before the first retry
    "ONEWINDOW_RETRY_BACKOFF_BASE": ("retry_backoff_base", int),
    "ONEWINDOW_RETRY_MAX_DELAY": ("retry_max_delay", float),
    "ONEWINDOW_JOB_LOCK_SECONDS": ("job_lock_seconds", float),  # a dead worker's claimed jobs return after this
    "ONEWINDOW_OUTBOX_ATTEMPTS": ("outbox_attempts", int),  # sends of a message before an incident
    "ONEWINDOW_OUTBOX_RETRY_DELAY": ("outbox_retry_delay", float),  # seconds before the first resend
    "ONEWINDOW_OUTBOX_MAX_DELAY": ("outbox_max_delay", float),
}


def engine_settings(env: Mapping[str, str] = os.environ) -> EngineSettings:
    """EngineSettings with what ONEWINDOW_STEP_TIME_LIMIT, …_RETRY_DELAY, …_JOB_LOCK_SECONDS etc. say
    (unset: the engine's defaults). Every process of an office (web, workers) should see the same."""
    known = {f.name for f in dataclasses.fields(EngineSettings)}
    changes: dict[str, Any] = {}
    for variable, (name, kind) in SETTINGS_VARIABLES.items():
        raw = (env.get(variable) or "").strip()
        if not raw or name not in known:
            continue
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"{variable}={raw!r}: give a {'whole ' if kind is int else ''}number") from None
        if value < 0 or (value == 0 and name != "default_retries"):
            raise ValueError(f"{variable}={raw!r}: give a number above 0")
        changes[name] = value
    return dataclasses.replace(EngineSettings(), **changes)


def pool_size(env: Mapping[str, str] = os.environ) -> int:
    """Connections each pool (reads, writes) of a process keeps open: ONEWINDOW_DB_POOL_SIZE, 5 by
    default. A pool smaller than the threads that use it at once opens and closes a connection for
    every request beyond it (a new PostgreSQL backend each time); gunicorn.conf.py sets it to its
    threads per worker."""
    raw = (env.get("ONEWINDOW_DB_POOL_SIZE") or "").strip()
    if not raw:
        return 5
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"ONEWINDOW_DB_POOL_SIZE={raw!r}: give a whole number above 0")
    return int(raw)


def build_engine(database_url: str | None = None, clock: Clock | None = None,
                 settings: EngineSettings | None = None) -> Engine:
    db = Database(database_url, pool_size=pool_size())
    return Engine(db, clock=clock, settings=settings or engine_settings(), services=departments(db, clock))


def build_worker(engine: Engine, interval: float = 2.0) -> Worker:
    return Worker(engine, senders(engine.services), interval=interval,
                  periodic=[("register_upkeep", 600, lambda: register_upkeep(engine)),
                            ("deadline_lights", 60, lambda: deadline_upkeep(engine)),
                            ("court_orders", 30, lambda: poll_court_orders(engine))])


def register_upkeep(engine: Engine) -> dict[str, int]:
    """Rights that end by themselves: objections not followed by a suit, seizures not renewed."""
    now = engine.clock.now()
    today = now.astimezone(SHANGHAI).date()
    with engine.db.write() as s:
        objections = register.lapse_objections(s, today, now=now)
        seizures = register.expire_seizures(s, today, now=now)
    return {"objections_lapsed": len(objections), "seizures_expired": len(seizures)}


def deadline_upkeep(engine: Engine) -> dict[str, int]:
    """Deadline lights 限时办结: end the clocks of finished cases, recompute the others' lights, and
    send a case `deadline_yellow` / `deadline_red` when its light turns so — once per case and light
    (the message key), buffered if the process has no catcher. Safe on several workers at once."""

    def send(case_id: int, case_number: str, name: str, payload: dict[str, Any]) -> bool:
        light = payload["light"]
        try:
            result = engine.send_message(case_id, name, payload, SYSTEM, key=f"{case_number}:{light}")
        except CaseNotActive:
            return False  # ended meanwhile: its clock is closed on the next run
        return not result["duplicate"]

    engine._ensure_calendar()  # the office's holiday overrides, as timers use them
    return deadlines.refresh_lights(engine.db, engine.clock.now(), send)


# ------------------------------------------------------------------------------------------------
# 府院联办: court orders become seizure and release cases at once

COURT_LINK = Actor("court_link", frozenset({"registrar"}))  # who starts the cases: the link to the courts
COURT_ORDER_PREFIX = "court_order:"
COURT_POLL_LOCK = 734_113_001  # PostgreSQL advisory lock key: one poller at a time across workers


def poll_court_orders(engine: Engine, limit: int = 100) -> dict[str, int]:
    """Fetch the courts' orders issued since the last one seen and start a `seizure` or `release`
    case for each (the processes register it at once).

    Each order seen is remembered durably as a row `court_order:<order id>` of the counter table,
    taken before its case starts (`next_counter` gives 1 to the first taker only, so no order ever
    starts two cases); the largest such name is where the next poll continues — the courts number
    orders FYyyyy-nnnnnn with one running counter, so names sort in issue order. On PostgreSQL a
    session advisory lock lets one worker poll at a time (the others skip this round); a case that
    fails to start gives its order back and stops the round, so it is tried again next time and no
    later order moves the cursor past it. Renewal orders (续封) have no process yet: they are
    recorded as seen and logged.
    """
    counts = {"started": 0, "skipped": 0}
    court = getattr(engine.services, "court", None)
    if court is None:
        return counts
    lock = None
    if not engine.db.is_sqlite:
        lock = engine.db.engine.connect()
        if not lock.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": COURT_POLL_LOCK}).scalar():
            lock.close()
            return counts
    try:
        while True:
            with engine.db.read() as s:
                last = s.scalar(select(func.max(Counter.name)).where(Counter.name.like(f"{COURT_ORDER_PREFIX}%")))
            orders = court.fetch_orders(last[len(COURT_ORDER_PREFIX):] if last else None, limit)
            for order in orders:
                _start_for_order(engine, order, counts)
            if len(orders) < limit:
                return counts
    finally:
        if lock is not None:
            lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": COURT_POLL_LOCK})
            lock.close()


def _start_for_order(engine: Engine, order: CourtOrder, counts: dict[str, int]) -> None:
    name = f"{COURT_ORDER_PREFIX}{order.order_id}"
    with engine.db.write() as s:
        if next_counter(s, name) != 1:
            return  # already taken
    if order.kind not in ("seizure", "release"):
        log.warning("court order %s (%s) has no process; recorded as seen", order.order_id, order.kind)
        counts["skipped"] += 1
        return
    data: dict[str, Any] = {"order_id": order.order_id, "court": order.court, "document_no": order.document_no,
                            "unit_number": order.unit_number, "court_contact": ""}
    if order.kind == "seizure":
        data.update(starts_on=order.starts_on.isoformat() if order.starts_on else None,
                    ends_on=order.ends_on.isoformat() if order.ends_on else None)
    else:
        data["released_document_no"] = order.released_document_no
    try:
        engine.start_case(order.kind, data, COURT_LINK, summary={
            "court": order.court, "document_no": order.document_no, "unit_number": order.unit_number})
    except Exception:
        with engine.db.write() as s:  # give the order back: the next poll tries it again
            s.execute(delete(Counter).where(Counter.name == name))
        raise
    counts["started"] += 1
