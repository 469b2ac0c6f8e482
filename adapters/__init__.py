"""Clients of the other departments' systems.

One package per department (tax, housing, court, notify) holds its interface (a Protocol and the
pydantic models it exchanges), a sandbox implementation that behaves like the real system and
keeps its own state (`sandbox.py`), and an HTTP client for real deployments (`http.py`).
`simulators/` serves the sandboxes over HTTP, with injectable faults, for tests and demos.
`ONEWINDOW_ADAPTERS=sandbox|http` chooses which one `departments()` builds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.court import CourtSystem
    from adapters.housing import HousingAuthority
    from adapters.notify import Notifier
    from adapters.tax import TaxAuthority


@dataclass
class Departments:
    tax: TaxAuthority
    housing: HousingAuthority
    court: CourtSystem
    notify: Notifier
