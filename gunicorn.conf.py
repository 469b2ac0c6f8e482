"""gunicorn settings for OneWindow's web application (production):

    .venv/bin/gunicorn -c gunicorn.conf.py webapp.wsgi:app

Every value can be set by an environment variable below, and gunicorn's own command-line flags
(`-w 8`, `-b 0.0.0.0:8000`, …) or GUNICORN_CMD_ARGS override this file. The application itself
reads the ONEWINDOW_* variables (database, secret key, adapters …) as `onewindow serve` does.

- ONEWINDOW_WEB_BIND (127.0.0.1:8000): where to listen (several: separated by spaces); behind a
  TLS proxy keep it on loopback.
- ONEWINDOW_WEB_WORKERS (one per CPU core): web worker processes — the GIL means processes use
  the cores; threads overlap the waits for the database. Fewer processes also keep more steps on
  the engine's per-process cache of hot cases (bench/http.py: 2 × 8 did more per CPU second than
  4 × 4 or 3 × 8 on 2 cores, with a lower p99).
- ONEWINDOW_WEB_THREADS (8): request threads per worker process (gthread). The database pools
  of each worker keep threads + 1 connections (ONEWINDOW_DB_POOL_SIZE, unless set).
- ONEWINDOW_WEB_TIMEOUT (60): seconds a worker may be silent before it is killed and replaced (a
  step is limited to 10 s; a large deployment upload is the slowest request).
- ONEWINDOW_WEB_PRELOAD (1): build the app once in the master and fork it (shared memory, one
  start-up); 0: each worker builds its own after the fork.
- ONEWINDOW_WEB_ACCESS_LOG (none): `-` for stdout, or a file. ONEWINDOW_WEB_LOG_LEVEL (info).
- ONEWINDOW_WEB_CONTROL_SOCKET (none): gunicorn ≥ 25's control socket for `gunicornc`; off unless
  set, because its default path is one per user and two instances on a machine would share it.

Fork safety: the database pools. The master closes its connections before each fork and every
worker forgets inherited ones after it (webapp.wsgi.release_connections), so no connection is
ever shared by two processes. Database connections per machine are about
workers × threads × 2 (a read pool and a write pool per process) at full load: keep that under
PostgreSQL's max_connections with the worker processes and the other machines added.

Timers, retries, the outbox, deadline lights and court orders are not run here: start one or more
`onewindow worker` processes beside gunicorn.
"""
from __future__ import annotations

import multiprocessing
import os
import sys


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


bind = os.environ.get("ONEWINDOW_WEB_BIND", "127.0.0.1:8000").split()
workers = _int("ONEWINDOW_WEB_WORKERS", multiprocessing.cpu_count())
worker_class = "gthread"
threads = _int("ONEWINDOW_WEB_THREADS", 8)
# a database pool per thread: a smaller pool would open and close a connection per request beyond it
os.environ.setdefault("ONEWINDOW_DB_POOL_SIZE", str(threads + 1))
timeout = _int("ONEWINDOW_WEB_TIMEOUT", 60)
graceful_timeout = 30
keepalive = 5
preload_app = os.environ.get("ONEWINDOW_WEB_PRELOAD", "1").strip().lower() not in ("0", "false", "no", "off")
accesslog = os.environ.get("ONEWINDOW_WEB_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("ONEWINDOW_WEB_LOG_LEVEL", "info")
proc_name = "onewindow-web"
if os.environ.get("ONEWINDOW_WEB_CONTROL_SOCKET"):
    control_socket = os.environ["ONEWINDOW_WEB_CONTROL_SOCKET"]
else:
    control_socket_disable = True


def on_starting(server):  # type: ignore[no-untyped-def]
    """In the master, once, before any worker: what each worker would otherwise race to create —
    the compiled translations and (without ONEWINDOW_SECRET_KEY) the development secret key, which
    every worker must share or a login made on one worker would be refused by the next. (With
    preload_app the app was built already, and did both.)"""
    from pathlib import Path

    if _preloaded() is not None:
        return

    from webapp.config import dev_secret_key
    from webapp.i18n import compile_catalogues

    compile_catalogues()
    if not os.environ.get("ONEWINDOW_SECRET_KEY"):
        dev_secret_key(Path(os.environ.get("ONEWINDOW_VAR_DIR") or "var"))


def _preloaded():  # type: ignore[no-untyped-def]
    module = sys.modules.get("webapp.wsgi")
    return module if module is not None and hasattr(module, "app") else None


def pre_fork(server, worker):  # type: ignore[no-untyped-def]
    module = _preloaded()
    if module is not None:
        module.release_connections(module.app, close=True)


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    module = _preloaded()
    if module is not None:
        module.release_connections(module.app, close=False)
