"""`onewindow simulate`: many cases end to end with automated clerks; a stuck case fails the run."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from webapp import simulate as sim
from webapp.cli import main


def figures(output: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)


@pytest.mark.parametrize("process", ["secondhand_transfer", "mortgage", "seizure"])
def test_every_case_completes_within_its_limit(process: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate", "--process", process, "--cases", "6",
                                       "--database", f"sqlite:///{tmp_path / 'sim.sqlite3'}"])
    assert result.exit_code == 0, result.output
    got = figures(result.stdout)
    assert (got["process"], got["cases"], got["completed"], got["stuck"]) == (process, "6", "6", "0")
    assert float(got["cases_per_s"]) > 0 and got["within_limit_share"] == "1.0" and got["incidents"] == "0"


def test_a_case_no_one_works_on_fails_the_run_and_says_where_it_stopped(tmp_path: Path, monkeypatch) -> None:
    real = sim.clerk_answer
    monkeypatch.setattr(sim, "clerk_answer", lambda process, bpmn_id: None if bpmn_id == "review"
                        else real(process, bpmn_id))
    result = CliRunner().invoke(main, ["simulate", "--process", "mortgage", "--cases", "2",
                                       "--database", f"sqlite:///{tmp_path / 'sim.sqlite3'}"])
    assert result.exit_code == 1
    assert figures(result.stdout)["completed"] == "0"
    stuck = [line for line in result.stderr.splitlines() if line.startswith("stuck:")]
    assert len(stuck) == 2 and all("review" in line for line in stuck)


def test_an_unknown_process_is_refused_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate", "--process", "nonsense", "--cases", "1",
                                       "--database", f"sqlite:///{tmp_path / 'sim.sqlite3'}"])
    assert result.exit_code == 1 and "nonsense" in result.output
