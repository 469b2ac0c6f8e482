"""The background worker: wakes due timers, retries service calls, delivers the outbox.

The database is the source of truth for what is due (timer_job, outbox); APScheduler only
decides *when to look*, every `interval` seconds. Each row is claimed before it is worked
(`FOR UPDATE SKIP LOCKED` on PostgreSQL), so any number of workers on any number of machines
can run side by side and every job still fires once.
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from engine.runtime import Engine, JobRun

log = logging.getLogger("onewindow.worker")

Sender = Callable[[dict[str, Any], str], None]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    def __init__(self, engine: Engine, senders: dict[str, Sender] | None = None, *, name: str | None = None,
                 interval: float = 2.0, periodic: list[tuple[str, float, Callable[[], Any]]] | None = None) -> None:
        self.engine = engine
        self.senders = senders or {}
        # other upkeep (the register's lapses): (id, every seconds, function); each must be safe to
        # run on several workers at once
        self.periodic = periodic or []
        self.name = name or worker_name()
        self.interval = interval
        self._scheduler: BackgroundScheduler | BlockingScheduler | None = None

    def run_due(self) -> JobRun:
        """Work every due job now (until none is left), then the outbox; one pass of the worker."""
        total = JobRun()
        while True:
            run = self.engine.run_due_jobs(self.name)
            total.fired += run.fired
            total.failed += run.failed
            total.skipped += run.skipped
            total.errors.extend(run.errors)
            if run.fired + run.failed + run.skipped < self.engine.settings.job_batch:
                break
        for err in total.errors:
            log.error("%s", err)
        return total

    def deliver_outbox(self) -> JobRun:
        run = self.engine.deliver_outbox(self.senders, self.name)
        for err in run.errors:
            log.warning("%s", err)
        return run

    def run_periodic(self) -> dict[str, Any]:
        """Run every periodic job once now (for `onewindow worker --once`)."""
        return {job_id: fn() for job_id, _seconds, fn in self.periodic}

    def _add_jobs(self, scheduler: BackgroundScheduler | BlockingScheduler) -> None:
        common = {"trigger": "interval", "seconds": self.interval, "max_instances": 1, "coalesce": True}
        scheduler.add_job(self._safe(self.run_due), id="due_jobs", **common)
        scheduler.add_job(self._safe(self.deliver_outbox), id="outbox", **common)
        for job_id, seconds, fn in self.periodic:
            scheduler.add_job(self._safe(fn), id=job_id, trigger="interval", seconds=seconds, max_instances=1,
                              coalesce=True)

    @staticmethod
    def _safe(fn: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except Exception:  # noqa: BLE001 — a database hiccup must not kill the worker
                log.exception("worker pass failed; will try again at the next interval")

        run.__name__ = fn.__name__
        return run

    def run_forever(self) -> None:
        scheduler = BlockingScheduler(timezone="Asia/Shanghai")
        self._add_jobs(scheduler)
        self._scheduler = scheduler
        log.info("worker %s polling every %.1f s", self.name, self.interval)
        scheduler.start()

    def start_background(self) -> None:
        scheduler = BackgroundScheduler(timezone="Asia/Shanghai", daemon=True)
        self._add_jobs(scheduler)
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
