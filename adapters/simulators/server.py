"""Run simulators on loopback, each in a thread with werkzeug's threaded server.

    with start_simulators(db, faults=FaultConfig(latency_ms=50)) as sims:
        tax = HttpTax(sims.urls["tax"])
        ...

`serve_apps` serves ready-made Flask apps (tests pass apps around sandboxes they seed
themselves); `start_simulators` builds the sandboxes on a database first. Port 0 picks a free
port. `stop()` wakes requests hanging in an injected timeout, shuts the servers down and waits
for their threads.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from adapters.factory import ensure_sandbox_tables
from adapters.simulators.app import DEPARTMENTS, create_app, faults_of
from adapters.simulators.faults import FaultConfig, FaultInjector
from domain.clock import Clock
from storage.db import Database

LOOPBACK = "127.0.0.1"
DEFAULT_PORTS = {"tax": 8101, "housing": 8102, "court": 8103, "notify": 8104}
URL_VARIABLES = {"tax": "ONEWINDOW_TAX_URL", "housing": "ONEWINDOW_HOUSING_URL",
                 "court": "ONEWINDOW_COURT_URL", "notify": "ONEWINDOW_NOTIFY_URL"}

log = logging.getLogger("adapters.simulators")


@dataclass
class RunningSimulators:
    """Simulators serving in background threads: their base URLs, apps, and the way to stop them."""

    urls: dict[str, str]
    apps: dict[str, Flask]
    _servers: list[BaseWSGIServer] = field(default_factory=list, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)

    def faults(self, department: str) -> FaultInjector:
        return faults_of(self.apps[department])

    def service(self, department: str) -> Any:
        return self.apps[department].extensions["simulator"]["service"]

    def exports(self) -> list[str]:
        """Shell lines that point OneWindow's HTTP adapters at these simulators."""
        lines = ["export ONEWINDOW_ADAPTERS=http"]
        lines += [f"export {URL_VARIABLES[d]}={url}" for d, url in self.urls.items() if d in URL_VARIABLES]
        return lines

    def stop(self) -> None:
        for app in self.apps.values():
            faults_of(app).stopping.set()
        stoppers = [threading.Thread(target=server.shutdown) for server in self._servers]  # all at once
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join(timeout=5)
        for server in self._servers:
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> RunningSimulators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_apps(apps: Mapping[str, Flask], ports: Mapping[str, int] | None = None,
               host: str = LOOPBACK) -> RunningSimulators:
    """Serve each app on host:port (port 0 or missing: a free one) in a daemon thread."""
    running = RunningSimulators(urls={}, apps=dict(apps))
    try:
        for name, app in apps.items():
            server = make_server(host, (ports or {}).get(name, 0), app, threaded=True)
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"simulator-{name}", daemon=True)
            thread.start()
            running._servers.append(server)
            running._threads.append(thread)
            running.urls[name] = f"http://{host}:{server.server_port}"
            log.info("%s simulator on %s", name, running.urls[name])
    except BaseException:
        running.stop()
        raise
    return running


def build_service(department: str, db: Database, clock: Clock | None = None) -> Any:
    """The sandbox implementation of one department on `db`."""
    ensure_sandbox_tables(db)
    if department == "tax":
        from adapters.tax.sandbox import SandboxTax

        return SandboxTax(db, clock)
    if department == "housing":
        from adapters.housing.sandbox import SandboxHousing

        return SandboxHousing(db, clock)
    if department == "court":
        from adapters.court.sandbox import SandboxCourt

        return SandboxCourt(db, clock)
    if department == "notify":
        from adapters.notify.sandbox import SandboxNotifier

        return SandboxNotifier(db, clock)
    raise ValueError(f"unknown department {department!r}; choose from {', '.join(DEPARTMENTS)}")


def start_simulators(db: Database, clock: Clock | None = None, departments: Iterable[str] = DEPARTMENTS,
                     faults: FaultConfig | Mapping[str, FaultConfig] | None = None,
                     ports: Mapping[str, int] | None = None, host: str = LOOPBACK) -> RunningSimulators:
    """Sandboxes on `db`, each served by a simulator with its faults (one config for all, or per department)."""
    apps = {}
    for department in departments:
        config = faults.get(department) if isinstance(faults, Mapping) else faults
        apps[department] = create_app(department, build_service(department, db, clock), config)
    return serve_apps(apps, ports, host)
