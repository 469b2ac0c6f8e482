"""Which department adapters the application uses: `departments(db, clock, env)`.

| variable                 | default   | meaning                                                        |
|--------------------------|-----------|----------------------------------------------------------------|
| `ONEWINDOW_ADAPTERS`     | `sandbox` | `sandbox`: in-process; `http`: real services over HTTP        |
| `ONEWINDOW_SANDBOX_DATABASE_URL` | see below | where the in-process sandboxes keep their records     |
| `ONEWINDOW_TAX_URL`      | —         | base URL of the tax authority (required for `http`)           |
| `ONEWINDOW_HOUSING_URL`  | —         | base URL of the housing authority (required for `http`)       |
| `ONEWINDOW_COURT_URL`    | —         | base URL of the court system (required for `http`)            |
| `ONEWINDOW_NOTIFY_URL`   | —         | base URL of the notification gateway (required for `http`)    |
| `ONEWINDOW_HTTP_*`, `ONEWINDOW_<DEPT>_HTTP_*` | see `adapters.http_base` | timeouts, tries, back-off, time budget |

`onewindow simulators` serves the sandboxes over HTTP locally and prints the lines to export.

The in-process sandboxes stand in for other departments' systems and keep their records apart:
on SQLite in a file of their own beside the application's (`var/x.sqlite3` → `var/x.sandbox.sqlite3`)
— the application calls them while its step holds SQLite's one write lock, so sharing the file would
deadlock — and on PostgreSQL in the application's database, in their own `sandbox_*` tables.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from adapters import Departments
from adapters.http_base import HttpSettings
from domain.clock import Clock
from storage.db import Database

MODES = ("sandbox", "http")
URL_VARIABLES = {"tax": "ONEWINDOW_TAX_URL", "housing": "ONEWINDOW_HOUSING_URL",
                 "court": "ONEWINDOW_COURT_URL", "notify": "ONEWINDOW_NOTIFY_URL"}
_WHAT = {"tax": "the tax authority", "housing": "the housing authority", "court": "the court system",
         "notify": "the notification gateway"}


class AdapterConfigError(ValueError):
    """The environment does not say how to reach the departments."""


def departments(db: Database, clock: Clock | None = None, env: Mapping[str, str] = os.environ) -> Departments:
    """The four departments' adapters, as `ONEWINDOW_ADAPTERS` chooses."""
    mode = (env.get("ONEWINDOW_ADAPTERS") or "sandbox").strip().lower()
    if mode == "sandbox":
        url = env.get("ONEWINDOW_SANDBOX_DATABASE_URL")
        return sandbox_departments(Database(url) if url else sandbox_database(db), clock)
    if mode == "http":
        return http_departments(env)
    raise AdapterConfigError(f"ONEWINDOW_ADAPTERS={mode!r}: choose 'sandbox' (in-process, the default) or 'http'")


def sandbox_database(db: Database) -> Database:
    """Where the in-process sandboxes keep their records, given the application's database."""
    if not db.is_sqlite:
        return db
    path = db.url.split("///", 1)[1] if "///" in db.url else ""
    if not path or path == ":memory:":
        raise AdapterConfigError("an in-memory SQLite database cannot have sandbox departments beside it; "
                                 "set ONEWINDOW_SANDBOX_DATABASE_URL")
    stem, dot, suffix = path.rpartition(".")
    return Database(f"sqlite:///{stem}.sandbox.{suffix}" if dot else f"sqlite:///{path}.sandbox")


def sandbox_departments(db: Database, clock: Clock | None = None) -> Departments:
    """The sandboxes on `db` (use `sandbox_database(app_db)` for the application's arrangement)."""
    from adapters.court.sandbox import SandboxCourt
    from adapters.housing.sandbox import SandboxHousing
    from adapters.notify.sandbox import SandboxNotifier
    from adapters.tax.sandbox import SandboxTax

    ensure_sandbox_tables(db)
    return Departments(tax=SandboxTax(db, clock), housing=SandboxHousing(db, clock), court=SandboxCourt(db, clock),
                       notify=SandboxNotifier(db, clock))


def http_departments(env: Mapping[str, str] = os.environ) -> Departments:
    from adapters.court.http import HttpCourt
    from adapters.housing.http import HttpHousing
    from adapters.notify.http import HttpNotifier
    from adapters.tax.http import HttpTax

    urls: dict[str, str] = {}
    problems = []
    for department, variable in URL_VARIABLES.items():
        url = (env.get(variable) or "").strip()
        if not url:
            problems.append(f"{variable} (the base URL of {_WHAT[department]}, e.g. http://127.0.0.1:81xx) is not set")
        elif not url.startswith(("http://", "https://")):
            problems.append(f"{variable}={url!r} is not an http:// or https:// URL")
        urls[department] = url
    if problems:
        raise AdapterConfigError("ONEWINDOW_ADAPTERS=http, but " + "; ".join(problems)
                                 + ". `onewindow simulators` prints the lines for local simulators.")
    try:
        settings = {d: HttpSettings.from_env(env, d) for d in URL_VARIABLES}
    except ValueError as err:
        raise AdapterConfigError(str(err)) from None
    return Departments(
        tax=HttpTax(urls["tax"], settings["tax"]),
        housing=HttpHousing(urls["housing"], settings["housing"]),
        court=HttpCourt(urls["court"], settings["court"]),
        notify=HttpNotifier(urls["notify"], settings["notify"]),
    )


def ensure_sandbox_tables(db: Database) -> None:
    """Create every sandbox's tables in `db` (all four modules imported, so all are registered)."""
    import adapters.court.sandbox
    import adapters.housing.sandbox
    import adapters.notify.sandbox
    import adapters.tax.sandbox  # noqa: F401 — imported for the tables they register
    from adapters.sandbox_store import ensure_tables

    ensure_tables(db)
