"""The `onewindow` command as an admin uses it."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from storage.db import Database
from webapp.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli_env(db: Database, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("ONEWINDOW_DATABASE_URL", db.url.replace("postgresql+psycopg://", "postgresql://"))
    return CliRunner()


def test_deploy_versions_start_and_worker(cli_env: CliRunner, tmp_path: Path) -> None:
    result = cli_env.invoke(main, ["deploy", str(ROOT / "processes"), "--by", "designer_he", "--comment", "首版"])
    assert result.exit_code == 0, result.output
    assert "general_registration v1 (new version" in result.output
    again = cli_env.invoke(main, ["deploy", str(ROOT / "processes")])
    assert "general_registration v1 (unchanged" in again.output
    started = cli_env.invoke(main, ["start", "general_registration", "--data", '{"promised_workdays": 5}'])
    assert started.exit_code == 0 and "case 2026-" in started.output
    listed = cli_env.invoke(main, ["versions"])
    line = next(line for line in listed.output.splitlines() if line.startswith("general_registration"))
    assert line.split()[1:3] == ["1", "1"]  # version 1, one running case
    assert "designer_he" in line and "首版" in line
    worker = cli_env.invoke(main, ["worker", "--once"])
    assert worker.exit_code == 0 and "fired 0" in worker.output


def test_rejected_deployment_exits_2_and_lists_every_problem(cli_env: CliRunner, tmp_path: Path) -> None:
    good = (ROOT / "processes" / "general_registration.bpmn").read_text()
    bad = good.replace('id="calendar.add_workdays"', 'id="calendar.add_wrokdays"').replace(
        "approved == True", "approved = = True")
    (tmp_path / "bad.bpmn").write_text(bad)
    (tmp_path / "broken.bpmn").write_text("<bpmn:definitions")
    result = cli_env.invoke(main, ["deploy", str(tmp_path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith(("bad.bpmn:", "broken.bpmn:"))]
    assert any("promise_date" in line and "calendar.add_wrokdays" in line for line in lines)
    assert any("flow_approved" in line and "condition" in line for line in lines)
    assert any(line.startswith("broken.bpmn:1 ") for line in lines)
    assert "nothing was stored" in result.output
    assert "no process is deployed" in cli_env.invoke(main, ["versions"]).output
