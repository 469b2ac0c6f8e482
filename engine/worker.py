"""The background worker: wakes due timers, retries service calls, delivers the outbox.

The database is the source of truth for what is due (timer_job, outbox); APScheduler only
decides *when to look*, every `interval` seconds. Each row is claimed before it is worked
(`FOR UPDATE SKIP LOCKED` on PostgreSQL), so any number of workers on any number of machines
can run side by side and every job still fires once.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from domain.errors import TransientError
from engine import sandbox
from engine.runtime import Engine, JobRun

log = logging.getLogger("onewindow.worker")

Sender = Callable[[dict[str, Any], str], None]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class MemoryLimitError(ValueError):
    """The address-space limit asked for cannot be set (too small, or not supported here)."""


def address_space_bytes() -> int:
    """The process's virtual size now (Linux: /proc/self/statm); 0 where it cannot be read."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


MIN_HEADROOM_MB = 256
RELEASE_AFTER_MB = 64  # a pass that grew the worker by more gives freed memory back (malloc_trim)


def limit_memory(mb: int) -> int:
    """Cap this process's address space at `mb` MB (RLIMIT_AS), the backstop behind the script
    sandbox's memory check: an allocation the sandbox's ticks cannot see (one C call building a
    huge object) then fails with MemoryError — an incident on its case — instead of growing the
    worker until the kernel's OOM killer ends it, or a neighbour. Returns the limit in bytes.

    The limit counts virtual memory, which is more than the resident size (thread stacks, shared
    libraries, malloc arenas): it must leave MIN_HEADROOM_MB above what the worker maps already.
    glibc's per-thread malloc arenas (64 MB of address space each) are capped at two so threads do
    not eat the allowance.
    """
    import resource

    if mb <= 0:
        raise MemoryLimitError(f"--memory-limit {mb}: give a number of megabytes above 0")
    limit = mb * 2 ** 20
    now = address_space_bytes()
    if now and limit < now + MIN_HEADROOM_MB * 2 ** 20:
        need = (now >> 20) + MIN_HEADROOM_MB
        raise MemoryLimitError(f"--memory-limit {mb} MB is too small: this worker already maps {now >> 20} MB of "
                               f"address space; give at least {need} MB (1024 or more is usual)")
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY and limit > hard:
        raise MemoryLimitError(f"--memory-limit {mb} MB is above this process's hard limit of {hard >> 20} MB")
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError) as err:
        raise MemoryLimitError(f"--memory-limit {mb} MB cannot be set: {err}") from None
    log.info("address space limited to %d MB (RLIMIT_AS)", mb)
    return limit


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
        """Work every due job now (until none is left), then the outbox; one pass of the worker.

        A pass that left the process much bigger (a script stopped by MemoryError under
        `--memory-limit`, say) hands the freed memory back to the operating system at its end.
        """
        before = sandbox.resident_bytes()
        try:
            return self._run_due()
        finally:
            if sandbox.resident_bytes() - before > RELEASE_AFTER_MB * 2 ** 20:
                sandbox.release_memory()

    def _run_due(self) -> JobRun:
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
            scheduler.add_job(self._safe(fn, job_id), id=job_id, trigger="interval", seconds=seconds, max_instances=1,
                              coalesce=True)

    @staticmethod
    def _safe(fn: Callable[[], Any], name: str | None = None) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except TransientError as err:  # a department down (the court-order poll): one line, not a traceback
                log.warning("%s: %s; will try again at the next interval", name or fn.__name__, err)
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
