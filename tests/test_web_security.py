"""Forged requests, stolen or planted session cookies, and hostile search text (issue #6, "Bad
input"): CSRF on every state-changing page and on the API's session use, session fixation and
the end of sessions, SQL injection and unusable characters in every search and filter field.
Every test runs on SQLite and PostgreSQL (the `db` fixture): NUL characters and out-of-range
numbers were 500s on PostgreSQL only.

The routes come from `app.url_map` and the calls from tests/test_authorization.py (CALLS), so a
new form route is checked here as soon as it has its entry there.
"""
from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from werkzeug.test import TestResponse

from domain.roles import ROLES
from engine import Engine
from storage.db import Database
from storage.models import Case
from tests.test_authorization import (
    CALLS,
    FAST,
    PASSWORD,
    World,
    assignees,
    build_world,
    call,
    counts,
)
from tests.web import log_in, page, token_of
from webapp import create_app
from webapp.accounts import Accounts

COOKIE = "onewindow_session"
CSRF_PAGE = "CSRF"  # the page says what is missing: 表单已过期或缺少安全令牌（CSRF）


@pytest.fixture
def app(engine: Engine) -> Flask:
    return create_app({"TESTING": True, "ENGINE": engine, "ACCOUNT_POLICY": FAST})


@pytest.fixture
def accounts(app: Flask) -> Accounts:
    return app.extensions["onewindow.accounts"]


@pytest.fixture
def boss(accounts: Accounts) -> str:
    """A user holding every role, so that only the CSRF token stands between a request and its effect."""
    accounts.create_user("boss", "全能", PASSWORD, list(ROLES))
    return "boss"


@pytest.fixture
def world(engine: Engine, accounts: Accounts) -> World:
    accounts.create_user("zhang", "张丽", PASSWORD, ["window_clerk"])
    accounts.create_user("wang", "王敏", PASSWORD, ["window_clerk"])
    return build_world(engine)


def form_posts(app: Flask) -> list[str]:
    """Every endpoint taking a POST outside the API (the API has its own rules, below)."""
    return sorted({r.endpoint for r in app.url_map.iter_rules()
                   if "POST" in r.methods and not r.rule.startswith("/api/")})


def api_posts(app: Flask) -> list[str]:
    return sorted({r.endpoint for r in app.url_map.iter_rules() if "POST" in r.methods and r.rule.startswith("/api/")})


def cookie(client: FlaskClient) -> str:
    found = client.get_cookie(COOKIE)
    assert found is not None, "no session cookie"
    return found.value


def with_cookie(app: Flask, value: str) -> FlaskClient:
    """A new browser carrying a copied session cookie (what an attacker replays)."""
    other = app.test_client()
    other.set_cookie(COOKIE, value)
    return other


def tampered(token: str) -> str:
    """The token with one character of its signature changed (not the last: its low bits are padding)."""
    i = len(token) - 10
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]


def logged_in(client: FlaskClient) -> bool:
    return client.get("/").status_code == 200


# ------------------------------------------------------------------------------------ CSRF


def test_every_form_refuses_a_post_without_or_with_a_wrong_csrf_token(app: Flask, engine: Engine, db: Database,
                                                                      boss: str, world: World) -> None:
    client = log_in(app, boss, PASSWORD)
    other = log_in(app, "wang", PASSWORD)
    someone_elses = token_of(page(other.get("/")))  # valid, but for another session
    endpoints = form_posts(app)
    assert {"auth.login", "auth.logout", "tasks.complete", "cases.start", "admin.resolve_incident"} <= set(endpoints)
    for endpoint in endpoints:
        c = CALLS[(endpoint, "POST")]
        if c.before is not None:
            c.before(engine, world)
        for token in (None, "", "forged", someone_elses, tampered(token_of(page(client.get("/"))))):
            before, held = counts(db), assignees(db, world)
            data = {**(c.form or {}), **({"csrf_token": token} if token is not None else {})}
            r = client.post(c.path(world), data=data, content_type="multipart/form-data" if c.multipart else None)
            where = (endpoint, token, r.status_code, page(r)[:200])
            assert r.status_code == 400 and CSRF_PAGE in page(r) and "请求无效" in page(r), where
            assert r.mimetype == "text/html", where
            assert counts(db) == before and assignees(db, world) == held, where
    assert logged_in(client)  # a forged logout did not log the user out
    # the same requests with the session's token go through (the refusal above was the token's)
    ok = client.post(f"/tasks/{world.task_id}/claim", data={"csrf_token": token_of(page(client.get("/")))})
    assert ok.status_code == 302 and assignees(db, world)[world.task_id] == "boss"


def test_a_login_form_needs_its_token_too(app: Flask, boss: str) -> None:
    client = app.test_client()
    client.get("/login")
    for data in ({}, {"csrf_token": "forged"}):
        r = client.post("/login", data={"login": boss, "password": PASSWORD, **data})
        assert r.status_code == 400 and CSRF_PAGE in page(r)
    assert not logged_in(client)  # no login forced on a visitor from another site either


def test_the_api_with_a_session_cookie_needs_the_csrf_header(app: Flask, engine: Engine, db: Database,
                                                             accounts: Accounts, boss: str, world: World) -> None:
    """The pages' scripts may call the API with the login session; then a state-changing call
    needs the X-CSRFToken header (a browser sends the cookie along with a forged cross-site
    request, never that header). With a bearer token no CSRF token is needed: a browser never
    adds one by itself."""
    client = log_in(app, boss, PASSWORD)
    csrf = token_of(page(client.get("/")))
    endpoints = api_posts(app)
    assert len(endpoints) >= 8
    for endpoint in endpoints:
        c = CALLS[(endpoint, "POST")]
        if c.before is not None:
            c.before(engine, world)
        for headers in ({}, {"X-CSRFToken": "forged"}, {"X-CSRFToken": tampered(csrf)}):
            before, held = counts(db), assignees(db, world)
            r = call(client, c, world, "POST", headers, None)
            where = (endpoint, headers, r.status_code, page(r)[:200])
            assert r.status_code == 400 and r.is_json and r.json["error"] == "csrf_failed", where
            assert "CSRF" in r.json["message"], where
            assert counts(db) == before and assignees(db, world) == held, where
    # with the header, the session works for the API
    claimed = client.post(f"/api/v1/tasks/{world.task_id}/claim", headers={"X-CSRFToken": csrf})
    assert claimed.status_code == 200 and claimed.json["assignee"] == "boss"
    # a bearer token needs no CSRF token; a bad one is refused, never made good by the session cookie
    token = {"Authorization": f"Bearer {accounts.issue_token('boss', '脚本').token}"}
    released = client.post(f"/api/v1/tasks/{world.task_id}/release", headers=token)
    assert released.status_code == 200 and released.json["assignee"] is None
    for bad in ("Bearer owt_forged", "Basic Ym9zczp4", "Bearer "):
        r = client.post(f"/api/v1/tasks/{world.task_id}/claim", headers={"Authorization": bad})
        assert r.status_code == 401 and r.json["error"] == "invalid_token", (bad, r.json)
    assert assignees(db, world)[world.task_id] is None
    # and nothing invites other sites to read the API's answers
    r = client.get("/api/v1/me", headers={**token, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers


# ------------------------------------------------------------------------------------ sessions


def test_a_planted_session_cookie_gives_nothing_after_the_victim_logs_in(app: Flask, boss: str) -> None:
    attacker = app.test_client()
    attacker.get("/login")
    planted = cookie(attacker)
    with attacker.session_transaction() as s:
        planted_csrf = s.get("csrf_token")
    victim = with_cookie(app, planted)  # the attacker got the victim's browser to carry their cookie
    form = page(victim.get("/login"))
    r = victim.post("/login", data={"csrf_token": token_of(form), "login": boss, "password": PASSWORD})
    assert r.status_code == 302 and logged_in(victim)
    assert cookie(victim) != planted
    with victim.session_transaction() as s:
        assert s.get("csrf_token") != planted_csrf and s.get("sid")  # a new session, with a new CSRF secret
    assert not logged_in(with_cookie(app, planted))  # the planted cookie is still nobody's
    assert not logged_in(attacker)
    assert with_cookie(app, planted).get("/api/v1/me").status_code == 401


def test_logging_out_ends_the_session_and_every_copy_of_its_cookie(app: Flask, boss: str) -> None:
    client = log_in(app, boss, PASSWORD)
    other_pc = log_in(app, boss, PASSWORD)
    stolen = cookie(client)  # e.g. left on a shared counter PC, or read from a proxy log
    assert logged_in(with_cookie(app, stolen))
    r = client.post("/logout", data={"csrf_token": token_of(page(client.get("/")))})
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert not logged_in(client)
    replay = with_cookie(app, stolen)
    assert not logged_in(replay)
    assert replay.get("/api/v1/me").status_code == 401
    assert replay.get("/admin/").headers["Location"].startswith("/login")
    # a cookie session cannot be ended alone: logging out ends the user's other sessions too
    assert not logged_in(other_pc)
    # logging in again starts a new session that works
    again = log_in(app, boss, PASSWORD)
    assert logged_in(again) and cookie(again) != stolen


def test_a_password_change_or_disabling_ends_every_other_session(app: Flask, accounts: Accounts, boss: str) -> None:
    desk = log_in(app, boss, PASSWORD)
    laptop = log_in(app, boss, PASSWORD)
    copied = cookie(laptop)
    accounts.set_password(boss, "another-password-2026")
    for client in (desk, laptop, with_cookie(app, copied)):
        assert not logged_in(client)
    assert log_in(app, boss, "another-password-2026") is not None
    fresh = log_in(app, boss, "another-password-2026")
    kept = cookie(fresh)
    accounts.set_active(boss, False)
    assert not logged_in(fresh) and not logged_in(with_cookie(app, kept))


def test_a_tampered_session_cookie_is_nobody(app: Flask, boss: str) -> None:
    client = log_in(app, boss, PASSWORD)
    value = cookie(client)
    payload, _sep, signature = value.rpartition(".")
    for forged in (tampered(value), payload + ".", "e30." + signature, "x" * 4000, ""):
        other = with_cookie(app, forged)
        r = other.get("/")
        assert r.status_code == 302 and r.headers["Location"].startswith("/login"), forged[:40]


# ------------------------------------------------------------------------------------ SQL injection

PAYLOADS = ["' OR 1=1 --", "' OR '1'='1", "%", "_", "%%", "\\", "\\%", "'; DROP TABLE cases; --",
            '"; DROP TABLE human_task; --', "1; SELECT pg_sleep(5)", "2026-%", "*", "../../etc/passwd",
            "<script>alert(1)</script>", "张三' --", "x" * 5000, "字" * 3000]
# raw query-string forms: NUL, invalid UTF-8 percent-encodings, a lone percent
RAW = ["%00", "a%00b", "%ff%fe", "%c3%28", "%", "%e4%b8"]
SEARCHES = ["/tasks/?q={}", "/tasks/?role={}", "/tasks/?mine={}", "/tasks/?page={}", "/cases/?q={}",
            "/cases/new?process={}", "/admin/incidents?status={}", "/admin/dashboard?day={}", "/admin/processes/{}",
            "/admin/processes/{}/diff", "/admin/processes/general_registration/diff?old={}&new={}", "/guide/{}",
            "/lang/{}?next={}", "/login?next={}", "/api/v1/tasks?q={}", "/api/v1/tasks?role={}",
            "/api/v1/tasks?mine={}", "/api/v1/tasks?limit={}", "/api/v1/tasks?offset={}", "/api/v1/incidents?status={}",
            "/api/v1/incidents?case_id={}", "/api/v1/incidents?limit={}"]


def quoted(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def intact(db: Database, world: World, engine: Engine, before: dict[str, int]) -> None:
    assert counts(db) == before
    with db.read() as s:
        assert s.scalar(select(Case.id).where(Case.id == world.case_id)) == world.case_id
        assert s.execute(text("SELECT count(*) FROM human_task")).scalar() > 0
    number = engine.get_case(world.case_id)["case_number"]
    assert [c["id"] for c in engine.find_cases(number)] == [world.case_id]


def sensible(r: TestResponse, where: Any) -> None:
    assert r.status_code in (200, 302, 400, 403, 404, 422), where
    if r.status_code >= 400 and r.request.path.startswith("/api/"):
        assert r.is_json and r.json["error"] and r.json["message"], where


def test_search_and_filter_fields_take_any_text(app: Flask, engine: Engine, db: Database, boss: str,
                                                 world: World) -> None:
    client = log_in(app, boss, PASSWORD)
    token = {"Authorization": f"Bearer {app.extensions['onewindow.accounts'].issue_token(boss, 't').token}"}
    before = counts(db)
    for template in SEARCHES:
        headers = token if template.startswith("/api/") else None
        for value in [*(quoted(p) for p in PAYLOADS), *RAW]:
            r = client.get(template.format(value, value), headers=headers)
            sensible(r, (template, value[:30], r.status_code, page(r)[:200]))
    intact(db, world, engine, before)
    assert logged_in(client)


def test_wildcards_and_quotes_match_only_themselves(app: Flask, engine: Engine, db: Database, boss: str,
                                                   world: World) -> None:
    client = log_in(app, boss, PASSWORD)
    token = {"Authorization": f"Bearer {app.extensions['onewindow.accounts'].issue_token(boss, 't').token}"}
    number = engine.get_case(world.case_id)["case_number"]
    listed = client.get("/api/v1/tasks", headers=token).json["items"]
    assert world.task_id in [t["id"] for t in listed]  # the task is there to be found
    for q in ("%", "_", "' OR 1=1 --", "' OR '1'='1", "\\", "2026-%", number[:4] + "_" + number[5:]):
        items = client.get(f"/api/v1/tasks?q={quoted(q)}", headers=token).json["items"]
        assert items == [], (q, items)
        found = client.get(f"/cases/?q={quoted(q)}")
        assert found.status_code == 200 and number not in page(found), q
    # the real prefix finds it
    assert [t["case_id"] for t in client.get(f"/api/v1/tasks?q={number}", headers=token).json["items"]] == [
        world.case_id]
    assert client.get(f"/cases/?q={number}").headers["Location"] == f"/cases/{world.case_id}"


def test_nul_characters_and_huge_numbers_are_refused_not_a_server_error(app: Flask, engine: Engine, db: Database,
                                                                        boss: str, world: World) -> None:
    client = log_in(app, boss, PASSWORD)
    token = {"Authorization": f"Bearer {app.extensions['onewindow.accounts'].issue_token(boss, 't').token}"}
    before = counts(db)
    for url in ("/cases/?q=a%00b", "/tasks/?q=%00", "/admin/processes/a%00b", "/guide/%00", "/login?next=/%00"):
        r = client.get(url)
        assert r.status_code == 400 and "请求无效" in page(r), url
    for url in ("/api/v1/tasks?q=%00", "/api/v1/tasks?role=a%00"):
        r = client.get(url, headers=token)
        assert r.status_code == 400 and r.json["error"] == "unusable_input" and "NUL" in r.json["message"], url
    huge = "9" * 40
    for n in (str(2**63), huge):
        for url in (f"/cases/{n}", f"/tasks/{n}", f"/admin/versions/{n}", f"/admin/incidents/{n}",
                    f"/cases/{n}/diagram.svg"):
            assert client.get(url).status_code == 404, url
        for url in (f"/api/v1/cases/{n}", f"/api/v1/cases/{n}/diagram.svg"):
            r = client.get(url, headers=token)
            assert r.status_code == 404 and r.json["error"] == "not_found", url
        for url in (f"/api/v1/incidents?case_id={n}", f"/api/v1/tasks?offset={n}"):
            r = client.get(url, headers=token)
            assert r.status_code == 422 and r.json["error"] == "invalid" and "超出范围" in r.json["message"], url
        csrf = token_of(page(client.get("/")))
        for url, data in ((f"/tasks/{n}/claim", {}), (f"/admin/incidents/{n}/retry", {}),
                          (f"/admin/versions/{world.version_id}/migrate", {"target": n}),
                          (f"/admin/cases/{world.case_id}/migrate", {"target": n, "lock_version": n})):
            r = client.post(url, data={"csrf_token": csrf, **data})
            assert 400 <= r.status_code < 500 or r.status_code == 302, (url, r.status_code)
        for url in (f"/api/v1/tasks/{n}/claim", f"/api/v1/incidents/{n}/retry"):
            assert client.post(url, headers=token).status_code == 404, url
    # a form field with a NUL character: refused before anything reads it
    csrf = token_of(page(client.get("/")))
    r = client.post(f"/admin/incidents/{world.incident_id}/resolve",
                    data={"csrf_token": csrf, "comment": "已核实\x00", "result": "{}"})
    assert r.status_code == 400 and "请求无效" in page(r)
    r = client.post("/login", data={"csrf_token": csrf, "login": "boss\x00", "password": PASSWORD})
    assert r.status_code == 400
    intact(db, world, engine, before)


def test_any_text_in_the_search_boxes_is_answered(app: Flask, engine: Engine, db: Database, boss: str,
                                                  world: World) -> None:
    """Property: whatever text a clerk (or a script) types into a search box, the answer is a page
    or a JSON error, never a server error (50 examples per field)."""
    client = log_in(app, boss, PASSWORD)
    token = {"Authorization": f"Bearer {app.extensions['onewindow.accounts'].issue_token(boss, 't').token}"}
    before = counts(db)

    @settings(max_examples=50, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(q=st.text(alphabet=st.characters(codec="utf-8"), max_size=60),
           where=st.sampled_from(["/cases/?q=", "/tasks/?q=", "/api/v1/tasks?q=", "/tasks/?role=",
                                  "/api/v1/tasks?role=", "/admin/processes/"]))
    def answered(q: str, where: str) -> None:
        r = client.get(where + quoted(q), headers=token if where.startswith("/api/") else None)
        sensible(r, (where, q, r.status_code))

    answered()
    intact(db, world, engine, before)

