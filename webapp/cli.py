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
@click.option("--memory-limit", "memory_limit", type=click.IntRange(min=1), default=None,
              envvar="ONEWINDOW_WORKER_MEMORY_LIMIT_MB", metavar="MB",
              help="Cap the worker's address space (RLIMIT_AS) at MB megabytes: a runaway script allocation "
                   "then ends in MemoryError, an incident on its case, instead of the OOM killer "
                   "(env ONEWINDOW_WORKER_MEMORY_LIMIT_MB; 1024 or more).")
def worker(interval: float, once: bool, memory_limit: int | None) -> None:
    """Fire timers, retry service calls and deliver the outbox (run one or more)."""
    from engine.worker import MemoryLimitError, limit_memory
    from webapp.wiring import build_worker

    w = build_worker(_engine(), interval=interval)
    if memory_limit is not None:
        try:
            limit_memory(memory_limit)
        except MemoryLimitError as err:
            raise click.ClickException(str(err)) from None
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


# ---------------------------------------------------------------------------- people

def _accounts() -> Any:
    from storage.db import Database
    from webapp.accounts import AccountPolicy, Accounts

    return Accounts(Database(), policy=AccountPolicy.from_env())


def _account_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from webapp.accounts import AccountError

    try:
        return fn(*args, **kwargs)
    except AccountError as err:
        raise click.ClickException(str(err)) from None


def _new_password(generate: bool, from_stdin: bool) -> tuple[str, bool]:
    """The password to set, and whether it was generated (then it is printed, once)."""
    from webapp.accounts import generate_password

    if generate:
        return generate_password(), True
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.ClickException("no password on standard input")
        return line, False
    return click.prompt("Password", hide_input=True, confirmation_prompt=True), False


def _user_line(u: Any) -> str:
    from domain.roles import role_label

    state = "active" if u.active else "disabled"
    if u.locked_until is not None and u.locked_until > datetime.now(SHANGHAI):
        state += f", locked until {_fmt(u.locked_until)}"
    roles = ", ".join(f"{r} ({role_label(r)})" for r in u.roles) or "no roles"
    office = f", {u.office}" if u.office else ""
    return f"{u.login:<16} {state:<8} {roles} — {u.display_name}{office}"


_PASSWORD_OPTIONS = [
    click.option("--generate", is_flag=True, help="Generate a random password and print it once."),
    click.option("--password-stdin", "from_stdin", is_flag=True, help="Read the password from standard input."),
]


def _password_options(fn: Any) -> Any:
    for option in reversed(_PASSWORD_OPTIONS):
        fn = option(fn)
    return fn


@main.group()
def user() -> None:
    """User accounts and their API tokens (passwords are asked for, never given as arguments)."""


@user.command("add")
@click.argument("login")
@click.option("--name", "display_name", required=True, help="The name people see, e.g. 王敏.")
@click.option("--role", "roles", multiple=True, required=True,
              help="A role code (repeat for several): window_clerk, reviewer, registrar, certificate_desk, "
                   "supervisor, admin, designer.")
@click.option("--office", default=None, help="The office or counter the user works at.")
@_password_options
def user_add(login: str, display_name: str, roles: tuple[str, ...], office: str | None, generate: bool,
             from_stdin: bool) -> None:
    """Create a user LOGIN (lower-case latin letters, digits, '_', '.', '-')."""
    accounts = _accounts()
    _account_call(accounts.check_login, login)
    _account_call(accounts.check_roles, roles)
    password, generated = _new_password(generate, from_stdin)
    u = _account_call(accounts.create_user, login, display_name, password, roles, office=office)
    click.echo(f"created {_user_line(u)}")
    if generated:
        click.echo(f"password for {u.login}: {password}   (shown once; it is not stored in clear)")


@user.command("passwd")
@click.argument("login")
@_password_options
def user_passwd(login: str, generate: bool, from_stdin: bool) -> None:
    """Set LOGIN's password; also unlocks the account and ends its open sessions."""
    accounts = _accounts()
    if accounts.by_login(login) is None:
        raise click.ClickException(f"no user with login {login!r} (see `onewindow user list`)")
    password, generated = _new_password(generate, from_stdin)
    u = _account_call(accounts.set_password, login, password)
    click.echo(f"password of {u.login} changed; open sessions ended")
    if generated:
        click.echo(f"password for {u.login}: {password}   (shown once; it is not stored in clear)")


@user.command("list")
def user_list() -> None:
    """Every user: login, name, state, roles."""
    users = _accounts().users()
    if not users:
        click.echo("no users (create one with `onewindow user add` or `onewindow demo seed`)")
    for u in users:
        click.echo(_user_line(u))


@user.command("roles")
@click.argument("login")
@click.argument("roles", nargs=-1, required=True)
def user_roles(login: str, roles: tuple[str, ...]) -> None:
    """Replace LOGIN's roles with ROLES (effective from the user's next request)."""
    u = _account_call(_accounts().set_roles, login, roles)
    click.echo(_user_line(u))


@user.command("unlock")
@click.argument("login")
def user_unlock(login: str) -> None:
    """Lift a lock-out after failed logins."""
    u = _account_call(_accounts().unlock, login)
    click.echo(f"unlocked {u.login}")


@user.command("disable")
@click.argument("login")
def user_disable(login: str) -> None:
    """Stop LOGIN from logging in: its sessions end and its API tokens stop working."""
    u = _account_call(_accounts().set_active, login, False)
    click.echo(f"disabled {u.login}")


@user.command("enable")
@click.argument("login")
def user_enable(login: str) -> None:
    """Let a disabled user log in again."""
    u = _account_call(_accounts().set_active, login, True)
    click.echo(f"enabled {u.login}")


@user.group("token")
def user_token() -> None:
    """API tokens (`Authorization: Bearer …` on /api/v1); only their SHA-256 is stored."""


@user_token.command("issue")
@click.argument("login")
@click.option("--name", required=True, help="Where the token is used, e.g. 'tax bureau bridge'.")
def token_issue(login: str, name: str) -> None:
    """Issue a token for LOGIN; it acts as LOGIN with LOGIN's roles. Printed once."""
    issued = _account_call(_accounts().issue_token, login, name)
    click.echo(f"token #{issued.info.id} for {issued.info.user_login} ({issued.info.name}):")
    click.echo(issued.token)
    click.echo("Store it now: it is shown only this once.")


@user_token.command("list")
@click.argument("login", required=False)
@click.option("--all", "show_all", is_flag=True, help="Also revoked tokens.")
def token_list(login: str | None, show_all: bool) -> None:
    """Tokens (of LOGIN, or everyone's): id, owner, name, created, last used."""
    rows = _accounts().tokens(login, include_revoked=show_all)
    if not rows:
        click.echo("no tokens")
    for t in rows:
        revoked = f"  revoked {_fmt(t.revoked_at)}" if t.revoked_at else ""
        click.echo(f"#{t.id:<4} {t.user_login:<16} {t.name:<24} created {_fmt(t.created_at)}  "
                   f"last used {_fmt(t.last_used_at) or 'never'}{revoked}")


@user_token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke token TOKEN_ID (see `onewindow user token list`); it stops working at once."""
    if not _accounts().revoke_token(token_id):
        raise click.ClickException(f"no unrevoked token #{token_id}")
    click.echo(f"token #{token_id} revoked")


@main.command()
@click.option("--process", "process_id", required=True, help="Process id, e.g. secondhand_transfer.")
@click.option("--cases", default=100, show_default=True, help="How many cases to run end to end.")
@click.option("--database", "database_url", default=None,
              help="Database URL (default: a fresh SQLite file; --configured uses ONEWINDOW_DATABASE_URL).")
@click.option("--configured", is_flag=True, help="Run on the configured database instead of a fresh one.")
def simulate(process_id: str, cases: int, database_url: str | None, configured: bool) -> None:
    """Run CASES cases of PROCESS with automated clerks and print one `name: value` line per figure.

    Exits with status 1 if any case did not complete, naming where each one stopped.
    """
    from storage.db import database_url as configured_url
    from webapp.simulate import simulate as run

    if configured:
        database_url = configured_url()
    try:
        result = run(process_id, cases, database_url=database_url, log=lambda line: click.echo(line, err=True))
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    for name, value in result.figures.items():
        click.echo(f"{name}: {value}")
    if not result.ok:
        for line in result.stuck:
            click.echo(f"stuck: {line}", err=True)
        sys.exit(1)


@main.group()
def demo() -> None:
    """Demo data for trying OneWindow out."""


@demo.command("seed")
def demo_seed() -> None:
    """Deploy processes/, create a demo user per role and start a few cases in different stages.

    New demo users' passwords are printed once (ONEWINDOW_DEMO_PASSWORD sets one for all)."""
    from webapp.demo import seed

    for line in seed(_engine(), ROOT / "processes"):
        click.echo(line)


if __name__ == "__main__":
    main()
