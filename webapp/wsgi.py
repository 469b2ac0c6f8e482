"""The production entry point: `gunicorn -c gunicorn.conf.py webapp.wsgi:app`.

`app` is built the way `onewindow serve` builds it — `create_app()` with no overrides, so every
setting comes from the ONEWINDOW_* environment (webapp.config, webapp.wiring) — but without the
worker thread: in production timers, retries, the outbox, deadline lights and court orders are
`onewindow worker` processes of their own (see the README, "Running with PostgreSQL and several
workers"). `onewindow serve` stays the development server.

Forking. gunicorn.conf.py preloads this module in the master (`preload_app`), so the app, the
parsed process specs and the imported libraries are built once and shared copy-on-write by the
web workers. Building the app opens database connections (the sandbox departments check their
tables, for one); a connection must never be used by two processes, so the master closes its
pools before every fork (`release_connections(close=True)`) and each worker forgets whatever it
may still have inherited (`close=False`: it drops the pooled connections without touching the
parent's sockets), then opens its own on first use. Without preloading each worker builds its own
app after the fork and the hooks have nothing to do.
"""
from __future__ import annotations

from typing import Any

from flask import Flask

from webapp import ENGINE_EXTENSION, create_app


def databases(flask_app: Flask) -> list[Any]:
    """Every storage.db.Database the app holds: the registry's and the sandbox departments' (which
    may be the same one, or one of their own)."""
    engine = flask_app.extensions[ENGINE_EXTENSION]
    found: dict[int, Any] = {id(engine.db): engine.db}
    services = getattr(engine, "services", None)
    for name in ("tax", "housing", "court", "notify"):
        db = getattr(getattr(services, name, None), "db", None)
        if db is not None and hasattr(db, "engine"):
            found.setdefault(id(db), db)
    return list(found.values())


def release_connections(flask_app: Flask, close: bool) -> None:
    """Empty every connection pool of the app. `close=True` in the process that opened them (the
    gunicorn master, before forking); `close=False` in a forked child, which must not close the
    parent's connections — it only forgets them (SQLAlchemy's `Engine.dispose(close=False)`)."""
    for db in databases(flask_app):
        engines = {id(e): e for e in (db.engine, getattr(db, "read_engine", db.engine))}
        for sa_engine in engines.values():
            sa_engine.dispose(close=close)


app = create_app()
