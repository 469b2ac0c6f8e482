"""Building the configured application: database, department adapters, engine, worker.

One place, so the web app, the CLI and the worker all talk to the same departments
(`ONEWINDOW_ADAPTERS=sandbox|http`) and send the outbox with the same senders.
"""
from __future__ import annotations

from typing import Any

from adapters.factory import departments
from domain import deadlines, register
from domain.clock import SHANGHAI, Clock
from engine import Engine
from engine.errors import CaseNotActive
from engine.runtime import SYSTEM
from engine.worker import Worker
from handlers.outbox import senders
from storage.db import Database


def build_engine(database_url: str | None = None, clock: Clock | None = None) -> Engine:
    db = Database(database_url)
    return Engine(db, clock=clock, services=departments(db, clock))


def build_worker(engine: Engine, interval: float = 2.0) -> Worker:
    return Worker(engine, senders(engine.services), interval=interval,
                  periodic=[("register_upkeep", 600, lambda: register_upkeep(engine)),
                            ("deadline_lights", 60, lambda: deadline_upkeep(engine))])


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
