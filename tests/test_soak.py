"""The soak run in small (bench/soak.py has the big one): a few hundred cases through the department
simulators with 10 % of their requests failing — 503s, hangs past the client's timeout, answers
lost after the work was done — while worker processes are killed with SIGKILL and replaced.

Afterwards every case is completed, waiting for a person, waiting for a timer or has an open
incident (none lost or silently stuck); no case was charged tax twice; certificate numbers are
unique and gapless; no notification arrived twice; and the tables reconcile with the audit log.
PostgreSQL only: several worker processes on one SQLite file is not a supported arrangement.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import SoakConfig, run_soak
from storage.db import Database

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]

CASES = 150


def test_a_small_soak_loses_nothing_and_charges_nothing_twice(pg: Database, tmp_path: Path) -> None:
    url = pg.engine.url.render_as_string(hide_password=False)
    # bounded: cases stop being started after 75 s (a loaded machine starts fewer), then up to 60 s to settle
    config = SoakConfig(cases=CASES, workers=2, kills=3, kill_every=5, fault_rate=0.1, drivers=3,
                        minutes=1.25, settle=60, log_dir=tmp_path)
    result = run_soak(url, config, say=lambda _line: None)
    f = result.figures
    summary = "\n".join(f"{k}: {v}" for k, v in f.items()) + "\n" + "\n".join(result.problems)
    assert result.ok, f"{summary}\nlogs in {tmp_path}"
    assert f["cases"] >= 100, summary  # (all 150 on a machine not busy with other work)
    assert f["completed"] + f["waiting_person"] + f["waiting_timer"] + f["incidents"] == f["cases"], summary
    for name in ("lost", "tax_double_charges", "tax_orphans", "certificate_gaps", "duplicates", "overdue_jobs",
                 "outbox_pending", "audit_mismatches", "counter_errors"):
        assert f[name] == 0, f"{name}\n{summary}"
    # the run did what it claims: faults were injected (answers lost too), workers died mid-run
    assert f["workers_killed"] >= 2 and f["faults_injected"] > 50 and f["answers_dropped"] > 5, summary
    assert f["service_retries"] > 0 and f["payments"] > 0 and f["certificates"] > 0, summary
    # with the clerks answering everything, the cases end: few wait, none for long
    assert f["completed"] >= f["cases"] * 0.9, summary
