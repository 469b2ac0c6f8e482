"""People and roles in the web application: login, lock-out, sessions, CSRF, API tokens,
languages, and the `onewindow user` commands. Every test with `db` runs on SQLite and PostgreSQL."""
from __future__ import annotations

import hashlib
import os
import re
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask, request
from flask.testing import FlaskClient
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.test import TestResponse

from domain.clock import FrozenClock
from domain.roles import ROLES
from engine import Actor, Engine
from storage.db import Database
from storage.models import ApiToken, UserAccount
from tests.conftest import bpmn
from webapp import create_app
from webapp.accounts import AccountPolicy, Accounts
from webapp.cli import main as cli
from webapp.config import settings
from webapp.demo import DEMO_USERS, seed_users
from webapp.security import current_actor, role_required, safe_next

# cheap argon2 parameters: the tests check behaviour, not the work factor
FAST = AccountPolicy(time_cost=1, memory_cost=8 * 1024, parallelism=1)
PASSWORD = "柜台-secret-2026"
WRONG_LOGIN = "登录名或密码不正确"
LOCKED = "账号已暂时锁定"


@pytest.fixture
def app(engine: Engine) -> Flask:
    app = create_app({"TESTING": True, "ENGINE": engine, "ACCOUNT_POLICY": FAST})

    @app.post("/api/v1/_test/whoami")
    @login_required
    def api_whoami() -> dict:
        body = request.get_json(silent=True) or {}
        return {"login": current_user.login, "actor": current_actor().name, "claimed": body.get("login")}

    @app.get("/_test/admin-only")
    @role_required("admin")
    def admin_only() -> str:
        return "admin page"

    @app.get("/api/v1/_test/admin-only")
    @role_required("admin")
    def api_admin_only() -> dict:
        return {"ok": True}

    return app


@pytest.fixture
def accounts(app: Flask) -> Accounts:
    return app.extensions["onewindow.accounts"]


@pytest.fixture
def people(accounts: Accounts) -> dict:
    return {
        "wang": accounts.create_user("wang", "王敏", PASSWORD, ["window_clerk"], office="一窗受理大厅"),
        "li": accounts.create_user("li", "李静", PASSWORD, ["reviewer"]),
        "chen": accounts.create_user("chen", "陈刚", PASSWORD, ["supervisor", "reviewer", "window_clerk"]),
        "sun": accounts.create_user("sun", "孙伟", PASSWORD, ["admin"]),
    }


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def log_in(client: FlaskClient, login: str, password: str = PASSWORD, next: str | None = None) -> TestResponse:
    page = client.get("/login")
    data = {"csrf_token": csrf_token(page.get_data(as_text=True)), "login": login, "password": password}
    if next is not None:
        data["next"] = next
    return client.post("/login", data=data)


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


# ---------------------------------------------------------------------------------- anonymous

def test_anonymous_sees_nothing(app: Flask, people: dict) -> None:
    assert {"auth", "main", "tasks", "cases", "admin", "api"} <= set(app.blueprints)
    client = app.test_client()
    page = client.get("/")
    assert page.status_code == 302 and page.headers["Location"] == "/login?next=/"
    assert "运行概况" not in text(page)
    api = client.get("/api/v1/me")
    assert api.status_code == 401 and api.is_json
    assert api.json["error"] == "unauthorized" and "Authorization: Bearer" in api.json["message"]
    assert api.headers["WWW-Authenticate"].startswith("Bearer")
    bad = client.get("/api/v1/me", headers={"Authorization": "Bearer owt_not-a-real-token"})
    assert bad.status_code == 401 and bad.json["error"] == "invalid_token"
    assert client.get("/_test/admin-only").status_code == 302
    assert client.get("/api/v1/_test/admin-only").status_code == 401
    assert client.get("/api/v1/no-such-thing").json["error"] == "not_found"
    assert client.get("/healthz").json["status"] == "ok"  # for the load balancer, no data


# ---------------------------------------------------------------------------------- logging in

def test_login_shows_the_overview_with_name_and_roles(app: Flask, engine: Engine, people: dict) -> None:
    engine.deploy(bpmn("two_reviews.bpmn"), "designer")
    case = engine.start_case("two_reviews", {}, people["wang"].actor)
    client = app.test_client()
    response = log_in(client, "Wang", next="/")  # logins are case-insensitive
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/")
    html = text(page)
    assert page.status_code == 200
    assert "运行概况" in html and case.case_number in html and "two_reviews" in html  # the overview, as before
    assert "王敏" in html and "窗口受理" in html and "一窗受理大厅" in html  # who is logged in, with roles
    assert 'lang="zh-CN"' in html and "English" in html
    assert page.headers["Cache-Control"] == "no-store"
    assert accounts_of(app).by_login("wang").last_login_at == engine.clock.now()


def accounts_of(app: Flask) -> Accounts:
    return app.extensions["onewindow.accounts"]


def test_a_wrong_password_says_so_without_telling_which_part(app: Flask, people: dict) -> None:
    client = app.test_client()
    wrong_password = log_in(client, "wang", "not-the-password")
    unknown_login = log_in(client, "nobody", PASSWORD)
    assert wrong_password.status_code == unknown_login.status_code == 200
    assert WRONG_LOGIN in text(wrong_password) and WRONG_LOGIN in text(unknown_login)
    strip = re.compile(r'value="[^"]*"')  # the CSRF token and the typed login differ; nothing else may
    assert strip.sub("", text(wrong_password)) == strip.sub("", text(unknown_login))
    assert client.get("/").status_code == 302  # still not logged in
    empty = client.post("/login", data={"csrf_token": csrf_token(text(client.get("/login"))), "login": "",
                                        "password": ""})
    assert "请输入登录名" in text(empty) and "请输入密码" in text(empty)


def test_lock_out_after_five_failures_for_fifteen_minutes(app: Flask, clock: FrozenClock, people: dict) -> None:
    client = app.test_client()
    for attempt in range(4):
        assert WRONG_LOGIN in text(log_in(client, "wang", f"guess-{attempt}"))
    fifth = log_in(client, "wang", "guess-4")
    assert LOCKED in text(fifth) and "09:15" in text(fifth)  # until when, in Beijing time
    locked = log_in(client, "wang", PASSWORD)  # the right password does not help while locked
    assert LOCKED in text(locked) and client.get("/").status_code == 302
    assert accounts_of(app).by_login("wang").locked_until == clock.now() + timedelta(minutes=15)
    assert WRONG_LOGIN in text(log_in(client, "li", "guess"))  # others are not affected
    clock.advance(minutes=14, seconds=59)
    assert LOCKED in text(log_in(client, "wang", PASSWORD))
    clock.advance(seconds=1)
    assert log_in(client, "wang", PASSWORD).status_code == 302
    assert client.get("/").status_code == 200
    user = accounts_of(app).by_login("wang")
    assert user.locked_until is None


def test_lock_out_is_configurable_and_counts_consecutive_failures(db: Database, clock: FrozenClock) -> None:
    accounts = Accounts(db, clock, AccountPolicy(max_failures=3, lockout=timedelta(minutes=5), time_cost=1,
                                                 memory_cost=8 * 1024, parallelism=1))
    accounts.create_user("zhao", "赵磊", PASSWORD, ["registrar"])
    assert accounts.authenticate("zhao", "x1").reason == "invalid"
    assert accounts.authenticate("zhao", "x2").reason == "invalid"
    assert accounts.authenticate("zhao", PASSWORD).ok  # a success resets the count
    assert accounts.authenticate("zhao", "x3").reason == "invalid"
    assert accounts.authenticate("zhao", "x4").reason == "invalid"
    result = accounts.authenticate("zhao", "x5")
    assert result.reason == "locked" and result.locked_until == clock.now() + timedelta(minutes=5)
    accounts.unlock("zhao")
    assert accounts.authenticate("zhao", PASSWORD).ok
    env = AccountPolicy.from_env({"ONEWINDOW_LOGIN_MAX_FAILURES": "7", "ONEWINDOW_LOGIN_LOCKOUT_MINUTES": "30"})
    assert env.max_failures == 7 and env.lockout == timedelta(minutes=30)


def test_login_starts_a_new_session(app: Flask, people: dict) -> None:
    client = app.test_client()
    client.get("/lang/en")
    client.get("/login")
    with client.session_transaction() as s:
        s["planted"] = "by an attacker"  # what a fixed session would carry into the login
        before = dict(s)
    log_in(client, "wang")
    with client.session_transaction() as s:
        after = dict(s)
    assert "planted" not in after
    assert after["_user_id"].startswith(f"{people['wang'].id}:")
    assert after["sid"] and after.get("csrf_token") != before["csrf_token"]
    assert after["lang"] == "en"  # the language choice is kept
    first_sid = after["sid"]
    client.post("/logout", data={"csrf_token": csrf_token(text(client.get("/")))})
    assert client.get("/").status_code == 302
    log_in(client, "wang")
    with client.session_transaction() as s:
        assert s["sid"] != first_sid


def test_session_cookie_flags(app: Flask, engine: Engine, people: dict) -> None:
    response = log_in(app.test_client(), "wang")
    cookie = response.headers["Set-Cookie"]
    assert "onewindow_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    secure = create_app({"TESTING": True, "ENGINE": engine, "ACCOUNT_POLICY": FAST, "SECURE_COOKIES": True})
    cookie = log_in(secure.test_client(), "wang").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie
    assert settings({"TESTING": True}, env={"ONEWINDOW_SECURE_COOKIES": "1"})["SESSION_COOKIE_SECURE"] is True


def test_next_only_leads_to_this_site(app: Flask, people: dict) -> None:
    response = log_in(app.test_client(), "wang", next="https://evil.example/phish")
    assert response.headers["Location"] == "/"
    assert safe_next("/tasks/?q=1") == "/tasks/?q=1"
    for bad in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "tasks"):
        assert safe_next(bad) is None


def test_a_password_change_or_disabling_ends_open_sessions(app: Flask, accounts: Accounts, people: dict) -> None:
    client = app.test_client()
    log_in(client, "wang")
    assert client.get("/").status_code == 200
    accounts.set_password("wang", "a-new-password-1")
    assert client.get("/").status_code == 302
    log_in(client, "wang", "a-new-password-1")
    assert client.get("/").status_code == 200
    accounts.set_active("wang", False)
    assert client.get("/").status_code == 302
    refused = log_in(client, "wang", "a-new-password-1")
    assert "已停用" in text(refused)
    assert WRONG_LOGIN in text(log_in(client, "wang", "wrong"))  # only who knows the password learns it


# ---------------------------------------------------------------------------------- CSRF

def test_csrf_is_enforced_on_forms(app: Flask, people: dict) -> None:
    assert app.config["WTF_CSRF_ENABLED"] is True
    client = app.test_client()
    client.get("/login")
    missing = client.post("/login", data={"login": "wang", "password": PASSWORD})
    assert missing.status_code == 400 and "CSRF" in text(missing)
    forged = client.post("/login", data={"login": "wang", "password": PASSWORD, "csrf_token": "forged"})
    assert forged.status_code == 400
    assert client.get("/").status_code == 302  # neither logged in
    log_in(client, "wang")
    assert client.post("/logout").status_code == 400  # no forced logout from another site
    assert client.get("/").status_code == 200
    # the API with a login session (the pages' scripts) needs the token too, in a header
    no_header = client.post("/api/v1/_test/whoami", json={})
    assert no_header.status_code == 400 and no_header.json["error"] == "csrf_failed"
    token = csrf_token(text(client.get("/")))
    ok = client.post("/api/v1/_test/whoami", json={}, headers={"X-CSRFToken": token})
    assert ok.status_code == 200 and ok.json["login"] == "wang"


# ---------------------------------------------------------------------------------- API tokens

def test_an_api_token_acts_as_its_user_and_no_other(app: Flask, accounts: Accounts, people: dict,
                                                    db: Database) -> None:
    wang = accounts.issue_token("wang", "自助机 3号")
    li = accounts.issue_token("li", "审核脚本")
    with db.read() as s:  # only a SHA-256 of the token is kept
        stored = s.scalar(select(ApiToken.token_hash).where(ApiToken.id == wang.info.id))
    assert stored == hashlib.sha256(wang.token.encode()).hexdigest() and wang.token not in repr(wang)
    client = app.test_client()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {wang.token}"})
    assert me.status_code == 200 and me.json["login"] == "wang" and me.json["authenticated_by"] == "token"
    assert [r["code"] for r in me.json["roles"]] == ["window_clerk"]
    # a POST with a token needs no CSRF token, and claims in the request change nothing
    posted = client.post("/api/v1/_test/whoami", json={"login": "li"},
                         headers={"Authorization": f"Bearer {wang.token}", "X-User": "li"})
    assert posted.status_code == 200 and posted.json == {"login": "wang", "actor": "wang", "claimed": "li"}
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {li.token}"}).json["login"] == "li"
    # logged in as li in the browser, wang's token still acts as wang; a bad token never falls back
    log_in(client, "li")
    assert client.get("/api/v1/me").json["login"] == "li"
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {wang.token}"}).json["login"] == "wang"
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer owt_x"}).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": f"Basic {wang.token}"}).status_code == 401
    # pages ignore tokens
    fresh = app.test_client()
    assert fresh.get("/", headers={"Authorization": f"Bearer {wang.token}"}).status_code == 302
    assert fresh.get("/api/v1/_test/admin-only", headers={"Authorization": f"Bearer {wang.token}"}).status_code == 403
    assert accounts.tokens("wang")[0].last_used_at is not None


def test_a_revoked_token_or_a_disabled_users_token_fails(app: Flask, accounts: Accounts, people: dict) -> None:
    first = accounts.issue_token("wang", "one")
    second = accounts.issue_token("wang", "two")
    client = app.test_client()
    auth = {"Authorization": f"Bearer {first.token}"}
    assert client.get("/api/v1/me", headers=auth).status_code == 200
    assert accounts.revoke_token(first.info.id, login="li") is False  # li cannot revoke wang's token
    assert accounts.revoke_token(first.info.id) is True
    revoked = client.get("/api/v1/me", headers=auth)
    assert revoked.status_code == 401 and revoked.json["error"] == "invalid_token"
    assert accounts.revoke_token(first.info.id) is False
    assert [t.name for t in accounts.tokens("wang")] == ["two"]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {second.token}"}).status_code == 200
    accounts.set_active("wang", False)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {second.token}"}).status_code == 401


# ---------------------------------------------------------------------------------- roles

def test_roles_are_on_the_actor(app: Flask, accounts: Accounts, people: dict) -> None:
    chen = accounts.by_login("chen")
    assert chen.actor == Actor("chen", frozenset({"supervisor", "reviewer", "window_clerk"}))
    assert chen.actor.has("reviewer") and chen.actor.manages and not people["wang"].actor.manages
    result = accounts.authenticate("chen", PASSWORD)
    assert result.ok and result.user.actor == chen.actor
    client = app.test_client()
    log_in(client, "chen")
    posted = client.post("/api/v1/_test/whoami", json={}, headers={"X-CSRFToken": csrf_token(text(client.get("/")))})
    assert posted.json["actor"] == "chen"
    accounts.set_roles("wang", ["window_clerk", "reviewer"])  # effective at the next request
    token = accounts.issue_token("wang", "t").token
    roles = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json["roles"]
    assert [r["code"] for r in roles] == ["window_clerk", "reviewer"]
    with pytest.raises(ValueError, match="unknown role"):
        accounts.create_user("ghost", "鬼", PASSWORD, ["janitor"])


def test_role_required(app: Flask, people: dict) -> None:
    clerk = app.test_client()
    log_in(clerk, "wang")
    assert clerk.get("/_test/admin-only").status_code == 403
    assert "无权" in text(clerk.get("/_test/admin-only"))
    assert clerk.get("/api/v1/_test/admin-only").json["error"] == "forbidden"
    admin = app.test_client()
    log_in(admin, "sun")
    assert admin.get("/_test/admin-only").status_code == 200


# ---------------------------------------------------------------------------------- languages

def test_the_language_switch_renders_english(app: Flask, people: dict) -> None:
    client = app.test_client()
    login_page = text(client.get("/login"))
    assert "登录" in login_page and 'href="/lang/en?next=/login"' in login_page
    switched = client.get("/lang/en?next=/login")
    assert switched.status_code == 302 and switched.headers["Location"] == "/login"
    english = text(client.get("/login"))
    assert 'lang="en"' in english and "Sign in" in english and "Password" in english
    assert "The login or the password is wrong." in text(log_in(client, "wang", "nope"))
    log_in(client, "wang")
    overview = text(client.get("/"))
    assert "Overview" in overview and "Window clerk" in overview and "Sign out" in overview
    assert "运行概况" not in overview
    assert client.get("/api/v1/me").json["roles"][0]["name"] == "Window clerk"
    client.get("/lang/xx")  # unknown: ignored
    client.get("/lang/zh_CN?next=https://evil.example/")
    assert "运行概况" in text(client.get("/"))


def test_api_callers_can_ask_for_english(app: Flask, accounts: Accounts, people: dict) -> None:
    token = accounts.issue_token("wang", "t").token
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "en-US,en;q=0.9"}
    assert app.test_client().get("/api/v1/me", headers=headers).json["roles"][0]["name"] == "Window clerk"
    anonymous = app.test_client().get("/api/v1/me", headers={"Accept-Language": "en"})
    assert anonymous.json["message"].startswith("Authentication required")


def test_every_text_has_an_english_translation() -> None:
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parent.parent
    with open(root / "webapp/translations/en/LC_MESSAGES/messages.po", "rb") as f:
        catalogue = read_po(f, locale="en")
    method_map = [("webapp/**.py", "python"), ("webapp/templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
    found = {msg if isinstance(msg, str) else msg[0]
             for _file, _line, msg, _comments, _ctx in extract_from_dir(str(root), method_map, keywords=keywords)}
    missing = sorted(m for m in found if not (catalogue.get(m) and catalogue.get(m).string))
    assert not missing, f"add English for these to messages.po (see webapp/i18n.py): {missing}"
    for label in ROLES.values():
        assert catalogue.get(label) and catalogue.get(label).string


# ---------------------------------------------------------------------------------- accounts

def test_passwords_are_argon2_and_rehashed_when_parameters_change(db: Database, clock: FrozenClock) -> None:
    weak = Accounts(db, clock, FAST)
    weak.create_user("he", "何芳", PASSWORD, ["designer"])
    with db.read() as s:
        old = s.scalar(select(UserAccount.password_hash).where(UserAccount.login == "he"))
    assert old.startswith("$argon2id$") and "t=1" in old and PASSWORD not in old
    stronger = Accounts(db, clock, AccountPolicy(time_cost=2, memory_cost=16 * 1024, parallelism=1))
    assert stronger.authenticate("he", PASSWORD).ok
    with db.read() as s:
        new = s.scalar(select(UserAccount.password_hash).where(UserAccount.login == "he"))
    assert new != old and "t=2" in new and "m=16384" in new
    assert stronger.authenticate("he", PASSWORD).ok and not stronger.authenticate("he", "nope").ok


def test_account_rules(db: Database, clock: FrozenClock) -> None:
    accounts = Accounts(db, clock, FAST)
    accounts.create_user("wang.min", "王敏", PASSWORD, ["window_clerk"])
    for login, name, password, message in [
        ("wang.min", "王敏", PASSWORD, "taken"),
        ("WANG.MIN", "王敏", PASSWORD, "taken"),
        ("王敏", "王敏", PASSWORD, "latin letters"),
        ("x", "某", PASSWORD, "2–64"),
        ("zhou", "", PASSWORD, "display name"),
        ("zhou", "周婷", "short", "at least 8"),
        ("zhou.ting", "周婷", "zhou.ting", "must not be the login"),
    ]:
        with pytest.raises(ValueError, match=message):
            accounts.create_user(login, name, password, ["certificate_desk"])
    with pytest.raises(ValueError, match="no user"):
        accounts.issue_token("nobody", "x")
    with pytest.raises(ValueError, match="name"):
        accounts.issue_token("wang.min", " ")
    assert accounts.user_for_token("") is None and accounts.user_for_token("owt_" + "A" * 43) is None


# ---------------------------------------------------------------------------------- demo and CLI

def test_demo_seed_creates_a_user_per_role_once(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEWINDOW_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("ONEWINDOW_ARGON2_MEMORY_KIB", "8192")
    monkeypatch.delenv("ONEWINDOW_DEMO_PASSWORD", raising=False)
    lines = list(seed_users(engine))
    printed = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert set(printed) == {"window", "reviewer", "registrar", "desk", "supervisor", "admin", "designer"}
    accounts = Accounts(engine.db, engine.clock, FAST)
    held = {role for login, _name, roles in DEMO_USERS for role in roles}
    assert held == set(ROLES)
    for login, _name, roles in DEMO_USERS:
        result = accounts.authenticate(login, printed[login])
        assert result.ok and result.user.roles == roles
    assert len(set(printed.values())) == len(printed)  # each its own password
    again = list(seed_users(engine))
    assert again == ["demo users: already there (reset a password with `onewindow user passwd LOGIN`)"]
    assert accounts.authenticate("window", printed["window"]).ok  # left alone


@pytest.fixture
def cli_env(db: Database, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("ONEWINDOW_DATABASE_URL", db.url.replace("postgresql+psycopg://", "postgresql://"))
    monkeypatch.setenv("ONEWINDOW_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("ONEWINDOW_ARGON2_MEMORY_KIB", "8192")
    return CliRunner()


def test_user_commands(cli_env: CliRunner, db: Database) -> None:
    accounts = Accounts(db, policy=FAST)
    added = cli_env.invoke(cli, ["user", "add", "zhou", "--name", "周婷", "--role", "certificate_desk",
                                 "--office", "发证窗口", "--password-stdin"], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert "created zhou" in added.output and PASSWORD not in added.output
    assert accounts.authenticate("zhou", PASSWORD).ok
    prompted = cli_env.invoke(cli, ["user", "add", "zhao", "--name", "赵磊", "--role", "registrar"],
                              input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    bad_role = cli_env.invoke(cli, ["user", "add", "x1", "--name", "某", "--role", "janitor", "--generate"])
    assert bad_role.exit_code == 1 and "unknown role(s) janitor" in bad_role.output
    changed = cli_env.invoke(cli, ["user", "passwd", "zhou", "--generate"])
    assert changed.exit_code == 0, changed.output
    new_password = changed.output.split("password for zhou: ")[1].split()[0]
    assert accounts.authenticate("zhou", new_password).ok and not accounts.authenticate("zhou", PASSWORD).ok
    assert cli_env.invoke(cli, ["user", "passwd", "nobody", "--generate"]).exit_code == 1
    issued = cli_env.invoke(cli, ["user", "token", "issue", "zhou", "--name", "发证机"])
    assert issued.exit_code == 0, issued.output
    token = next(line for line in issued.output.splitlines() if line.startswith("owt_"))
    assert accounts.user_for_token(token).login == "zhou"
    token_id = accounts.tokens("zhou")[0].id
    listed = cli_env.invoke(cli, ["user", "token", "list", "zhou"])
    assert f"#{token_id}" in listed.output and "发证机" in listed.output and token not in listed.output
    assert cli_env.invoke(cli, ["user", "token", "revoke", str(token_id)]).exit_code == 0
    assert accounts.user_for_token(token) is None
    assert cli_env.invoke(cli, ["user", "token", "revoke", str(token_id)]).exit_code == 1
    assert cli_env.invoke(cli, ["user", "roles", "zhou", "certificate_desk", "registrar"]).exit_code == 0
    assert accounts.by_login("zhou").roles == ("certificate_desk", "registrar")
    assert cli_env.invoke(cli, ["user", "disable", "zhou"]).exit_code == 0
    assert accounts.authenticate("zhou", new_password).reason == "inactive"
    cli_env.invoke(cli, ["user", "enable", "zhou"])
    listed = cli_env.invoke(cli, ["user", "list"]).output
    assert "zhou" in listed and "周婷" in listed and "certificate_desk (发证)" in listed and "active" in listed


# ---------------------------------------------------------------------------------- secret key

def test_secret_key_from_the_environment_or_a_generated_file(tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    key = "k" * 64
    assert settings({}, env={"ONEWINDOW_SECRET_KEY": key, "ONEWINDOW_VAR_DIR": str(tmp_path)})["SECRET_KEY"] == key
    assert not (tmp_path / "secret_key").exists()
    generated = settings({}, env={"ONEWINDOW_VAR_DIR": str(tmp_path)})["SECRET_KEY"]
    assert len(generated) >= 64 and "ONEWINDOW_SECRET_KEY is not set" in caplog.text
    assert stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode) == 0o600
    assert settings({}, env={"ONEWINDOW_VAR_DIR": str(tmp_path)})["SECRET_KEY"] == generated  # kept
    other = tmp_path / "other"
    assert settings({}, env={"ONEWINDOW_VAR_DIR": str(other)})["SECRET_KEY"] != generated  # never a constant
    with pytest.raises(ValueError, match="too short"):
        settings({}, env={"ONEWINDOW_SECRET_KEY": "short"})
