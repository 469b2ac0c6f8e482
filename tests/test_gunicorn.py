"""The production entry point keeps working: gunicorn with gunicorn.conf.py and webapp.wsgi:app,
two preloaded worker processes (so the fork hooks run), on SQLite and on PostgreSQL; an API token
logs in, processes are listed, parallel requests reach both workers' own database pools, and
SIGTERM stops it cleanly."""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from engine import Engine
from storage.db import Database
from tests.conftest import bpmn
from webapp.accounts import AccountPolicy, Accounts

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_serves_the_api_with_two_workers(db: Database, registry, clock, tmp_path: Path) -> None:
    Engine(db, registry, clock).deploy(bpmn("two_reviews.bpmn"), "designer")
    accounts = Accounts(db, policy=AccountPolicy(time_cost=1, memory_cost=8 * 1024, parallelism=1))
    accounts.create_user("ops.li", "李运维", secrets.token_urlsafe(12), ["admin"])
    token = accounts.issue_token("ops.li", "gunicorn test").token

    port = free_port()
    env = {**os.environ, "ONEWINDOW_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
           "ONEWINDOW_SECRET_KEY": secrets.token_hex(32), "ONEWINDOW_VAR_DIR": str(tmp_path / "var"),
           "ONEWINDOW_WEB_BIND": f"127.0.0.1:{port}", "ONEWINDOW_WEB_WORKERS": "2", "ONEWINDOW_WEB_THREADS": "2",
           "ONEWINDOW_WEB_PRELOAD": "1", "ONEWINDOW_WEB_ACCESS_LOG": "-"}
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py"), "webapp.wsgi:app"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer within 30 s:\n" + log_path.read_text()
            time.sleep(0.1)

        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            me = client.get("/api/v1/me")
            assert me.status_code == 200 and me.json()["login"] == "ops.li"
            assert me.json()["authenticated_by"] == "token"
            listed = client.get("/api/v1/processes")
            assert listed.status_code == 200
            assert [p["process_id"] for p in listed.json()["items"]] == ["two_reviews"]
        assert httpx.get(f"{base}/api/v1/processes", timeout=10).status_code == 401

        def call(_: int) -> int:  # new connections, so both workers get some
            return httpx.get(f"{base}/api/v1/processes", headers=headers, timeout=10).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(call, range(40))) == {200}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    log = log_path.read_text()
    assert code == 0, log
    assert "Traceback" not in log and "Shutting down" in log, log
    assert log.count("Booting worker") >= 2, log
