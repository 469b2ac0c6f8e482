"""Building the configured application: database, department adapters, engine, worker.

One place, so the web app, the CLI and the worker all talk to the same departments
(`ONEWINDOW_ADAPTERS=sandbox|http`) and send the outbox with the same senders.
"""
from __future__ import annotations

from adapters.factory import departments
from domain.clock import Clock
from engine import Engine
from engine.worker import Worker
from handlers.outbox import senders
from storage.db import Database


def build_engine(database_url: str | None = None, clock: Clock | None = None) -> Engine:
    db = Database(database_url)
    return Engine(db, clock=clock, services=departments(db, clock))


def build_worker(engine: Engine, interval: float = 2.0) -> Worker:
    return Worker(engine, senders(engine.services), interval=interval)
