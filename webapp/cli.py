"""`onewindow`: what admins and operators do from a shell."""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from domain.clock import SHANGHAI

ROOT = Path(__file__).resolve().parent.parent


def _engine() -> Any:
    from webapp.wiring import build_engine

    return build_engine()


def _admin(name: str) -> Any:
    from engine import Actor

    return Actor.of(name, "admin", "supervisor")


def _fmt(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log what the engine and worker do.")
def main(verbose: bool) -> None:
    """OneWindow 一窗受理 — real-estate registration processes."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# ---------------------------------------------------------------------------- database

@main.group()
def db() -> None:
    """The database schema (Alembic migrations)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the tables of ONEWINDOW_DATABASE_URL (default: SQLite in var/)."""
    from storage.db import Database
    from storage.migrate import current, upgrade

    database = Database()
    upgrade(database)
    click.echo(f"database {database.url.split('@')[-1]} at revision {current(database)}")


# ---------------------------------------------------------------------------- deployments

@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--by", "deployed_by", default="admin", show_default=True, help="Who deploys (recorded).")
@click.option("--comment", default=None, help="Why (recorded with the version).")
def deploy(paths: tuple[str, ...], deployed_by: str, comment: str | None) -> None:
    """Validate BPMN files and forms (files or folders) and store them as new process versions.

    Exits with status 2, storing nothing, if anything is wrong; every problem is printed as
    file:line element-id: message.
    """
    from engine import DeploymentRejected

    try:
        results = _engine().deploy_paths(paths, deployed_by, comment)
    except DeploymentRejected as err:
        click.echo(f"rejected: {len(err.problems)} problem(s), nothing was stored", err=True)
        for problem in err.problems:
            click.echo(str(problem), err=True)
        sys.exit(2)
    for r in results:
        state = "new version" if r.created else "unchanged"
        click.echo(f"{r.process_id} v{r.version} ({state}, sha256 {r.sha256[:12]})")


@main.command()
@click.argument("process", required=False)
def versions(process: str | None) -> None:
    """Deployed versions, with the number of running cases on each."""
    rows = _engine().versions(process)
    if not rows:
        click.echo("no process is deployed" + (f" with id {process}" if process else ""))
        return
    click.echo(f"{'process':<28} {'ver':>4} {'running':>8}  {'deployed':<16} {'by':<12} comment")
    for r in rows:
        click.echo(f"{r['process_id']:<28} {r['version']:>4} {r['running_cases']:>8}  {_fmt(r['deployed_at']):<16} "
                   f"{r['deployed_by']:<12} {r['comment'] or ''}")


# ---------------------------------------------------------------------------- cases and incidents

@main.command()
@click.argument("process")
@click.option("--data", default="{}", help="Case data as a JSON object.")
@click.option("--by", "actor", default="admin", show_default=True)
def start(process: str, data: str, actor: str) -> None:
    """Start a case of PROCESS on its latest version."""
    from engine import EngineError

    try:
        ref = _engine().start_case(process, json.loads(data), _admin(actor))
    except (EngineError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"case {ref.case_number} (id {ref.id}) {ref.status}")


@main.command()
@click.option("--all", "show_all", is_flag=True, help="Also resolved ones.")
def incidents(show_all: bool) -> None:
    """Open incidents: cases that cannot go on by themselves."""
    rows = _engine().incidents(None if show_all else "open")
    if not rows:
        click.echo("no open incidents")
    for r in rows:
        click.echo(f"#{r['id']} {r['status']:<8} case {r['case_number']} {r['bpmn_id'] or '-'} [{r['kind']}] "
                   f"{r['message']}")


@main.command("retry")
@click.argument("incident_id", type=int)
@click.option("--by", "actor", default="admin", show_default=True)
def retry_incident(incident_id: int, actor: str) -> None:
    """Run the step behind an incident again."""
    from engine import EngineError

    try:
        result = _engine().retry_incident(incident_id, _admin(actor))
    except EngineError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"incident #{incident_id}: {result['status']} ({result['message']})")


@main.command("resolve")
@click.argument("incident_id", type=int)
@click.option("--comment", required=True)
@click.option("--result", default=None, help="JSON result to complete the failed service task with.")
@click.option("--by", "actor", default="admin", show_default=True)
def resolve_incident(incident_id: int, comment: str, result: str | None, actor: str) -> None:
    """Close an incident with a comment (and optionally complete its task with a result)."""
    from engine import EngineError

    try:
        _engine().resolve_incident(incident_id, comment, _admin(actor), json.loads(result) if result else None)
    except (EngineError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"incident #{incident_id} resolved")


# ---------------------------------------------------------------------------- running

@main.command()
@click.option("--interval", default=2.0, show_default=True, help="Seconds between polls.")
@click.option("--once", is_flag=True, help="Do what is due now, then exit.")
def worker(interval: float, once: bool) -> None:
    """Fire timers, retry service calls and deliver the outbox (run one or more)."""
    from webapp.wiring import build_worker

    w = build_worker(_engine(), interval=interval)
    if once:
        run = w.run_due()
        out = w.deliver_outbox()
        for job_id, result in w.run_periodic().items():
            click.echo(f"{job_id}: {result}")
        click.echo(f"fired {run.fired}, failed {run.failed}, skipped {run.skipped}; outbox sent {out.fired}")
        return
    w.run_forever()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--with-worker/--no-worker", default=True, show_default=True,
              help="Also run the worker in this process (development).")
def serve(host: str, port: int, with_worker: bool) -> None:
    """Run the web application (development server)."""
    from webapp import create_app

    app = create_app()
    if with_worker:
        from webapp.wiring import build_worker

        build_worker(app.extensions["onewindow"]).start_background()
    click.echo(f"OneWindow on http://{host}:{port}/")
    app.run(host=host, port=port, debug=False, use_reloader=False)


@main.command()
@click.option("--base-port", default=8101, show_default=True,
              help="Port of the tax simulator; housing, court and notify take the next three.")
@click.option("--database", "database_url", envvar="ONEWINDOW_SIMULATOR_DATABASE_URL",
              default="sqlite:///var/simulators.sqlite3", show_default=True,
              help="The simulators' own database (env ONEWINDOW_SIMULATOR_DATABASE_URL).")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=None, help="Pause before every answer.")
@click.option("--jitter-ms", type=click.FloatRange(min=0), default=None, help="Up to this much extra pause.")
@click.option("--error-rate", type=click.FloatRange(0, 1), default=None, help="Share of requests answered 503.")
@click.option("--timeout-rate", type=click.FloatRange(0, 1), default=None,
              help="Share of requests that hang (see --timeout-s) and are not done.")
@click.option("--timeout-s", type=click.FloatRange(min=0.001), default=None,
              help="How long a hanging request hangs (default 30).")
@click.option("--drop-rate", type=click.FloatRange(0, 1), default=None,
              help="Share of requests done whose answer is then lost (connection closed).")
@click.option("--seed", type=int, default=None, help="Seed of the fault generator (repeatable runs).")
@click.option("--demo-data/--no-demo-data", default=True, show_default=True,
              help="Fill the housing and court sandboxes with the demo units, contracts and seizures (idempotent).")
def simulators(base_port: int, database_url: str, demo_data: bool, **fault_options: Any) -> None:
    """Serve the tax, housing, court and notify sandboxes over HTTP on loopback, until interrupted.

    Faults can also come from ONEWINDOW_SIMULATOR_<NAME> / ONEWINDOW_SIMULATOR_<DEPT>_<NAME>
    variables (options win) and be changed at run time with POST /_faults on each simulator.
    """
    import os
    import threading

    from pydantic import ValidationError

    from adapters.http_base import readable_errors
    from adapters.simulators.app import DEPARTMENTS
    from adapters.simulators.faults import FaultConfig
    from adapters.simulators.server import start_simulators
    from storage.db import Database

    given = {k: v for k, v in fault_options.items() if v is not None}
    try:
        faults = {d: FaultConfig.model_validate({**FaultConfig.from_env(os.environ, d).model_dump(), **given})
                  for d in DEPARTMENTS}
    except ValidationError as err:
        raise click.ClickException(f"fault settings: {readable_errors(err)}") from None
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    database = Database(database_url)
    ports = {d: base_port + i for i, d in enumerate(DEPARTMENTS)}
    try:
        running = start_simulators(database, faults=faults, ports=ports)
    except OSError as err:
        raise click.ClickException(f"cannot listen on 127.0.0.1 ports {base_port}–{base_port + 3}: {err}. "
                                   "Choose others with --base-port.") from None
    try:
        click.echo(f"simulators on database {database.url.split('@')[-1]}")
        if demo_data:
            from adapters.sandbox_seed import seed_departments

            created = seed_departments(running.service("housing"), running.service("court")).created
            click.echo("demo data: " + (", ".join(f"{n} {what}" for what, n in created.items() if n)
                                        or "already there"))
        for department, url in running.urls.items():
            shown = faults[department].model_dump(exclude_defaults=True)
            click.echo(f"  {department:<8} {url}  faults: {shown or 'none'}")
        click.echo("Use them from OneWindow with:")
        for line in running.exports():
            click.echo(line)
        click.echo("Press Ctrl+C to stop.")
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
        database.dispose()
        click.echo("simulators stopped")


@main.group()
def demo() -> None:
    """Demo data for trying OneWindow out."""


@demo.command("seed")
def demo_seed() -> None:
    """Deploy processes/ and start a few cases in different stages."""
    from webapp.demo import seed

    for line in seed(_engine(), ROOT / "processes"):
        click.echo(line)


if __name__ == "__main__":
    main()
