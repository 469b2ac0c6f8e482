"""Building the configured application: database, department adapters, engine, worker.

One place, so the web app, the CLI and the worker all talk to the same departments
(`ONEWINDOW_ADAPTERS=sandbox|http`) and send the outbox with the same senders.
"""
from __future__ import annotations

from adapters.factory import departments
from domain import register
from domain.clock import SHANGHAI, Clock
from engine import Engine
from engine.worker import Worker
from handlers.outbox import senders
from storage.db import Database


def build_engine(database_url: str | None = None, clock: Clock | None = None) -> Engine:
    db = Database(database_url)
    return Engine(db, clock=clock, services=departments(db, clock))


def build_worker(engine: Engine, interval: float = 2.0) -> Worker:
    return Worker(engine, senders(engine.services), interval=interval,
                  periodic=[("register_upkeep", 600, lambda: register_upkeep(engine))])


def register_upkeep(engine: Engine) -> dict[str, int]:
    """Rights that end by themselves: objections not followed by a suit, seizures not renewed."""
    now = engine.clock.now()
    today = now.astimezone(SHANGHAI).date()
    with engine.db.write() as s:
        objections = register.lapse_objections(s, today, now=now)
        seizures = register.expire_seizures(s, today, now=now)
    return {"objections_lapsed": len(objections), "seizures_expired": len(seizures)}
