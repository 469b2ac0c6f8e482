"""Who may call what (issue #6, "Bad input"): every route of the application, for an anonymous
visitor and for a user of each single role, on real objects (a deployed process and version, a
started case with an open task, a task another clerk has claimed, an open incident), so a 403 or
200 is about the role and never a 404.

ACCESS below is the policy, one entry per (endpoint, method). The routes are read from
`app.url_map` when the test runs: a route added later without an entry here fails the test
until someone decides (and writes down) who may use it. CALLS says how each route is called
in the matrix; allowed callers send deliberately incomplete input where a route changes
things (an empty comment, a form that is not an object), so the answer shows they got past the
gate without changing the case.

The matrix runs on SQLite only (about 450 requests; the access rules are in the web layer, not
in SQL, and every route is exercised on PostgreSQL by the other web tests). The token tests run
on both databases.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from domain.roles import ROLES
from engine import Actor, Engine
from storage.db import Database
from storage.models import Case, CaseEvent, HumanTask, Incident, ProcessVersion, TaskDraft
from tests.conftest import bpmn, open_task
from tests.operators import CourtStub
from tests.web import log_in, page, token_of
from webapp import create_app
from webapp.accounts import AccountPolicy, Accounts

FAST = AccountPolicy(time_cost=1, memory_cost=8 * 1024, parallelism=1)
PASSWORD = "柜台-secret-2026"
PROCESSES = Path(__file__).resolve().parent.parent / "processes"
HOLDER = "zhang"  # a second window clerk: holds the claimed task

# ------------------------------------------------------------------------------------ the policy

PUBLIC = "public"  # anyone, logged in or not
ANY = "any logged-in user"
TASK_ROLE = "holders of the task's role"  # the matrix's task is a window_clerk task (受理)
HOLDER_OR_MANAGER = "the task's holder, or a supervisor or admin"  # releasing a claimed task
CASE_STARTERS = ("window_clerk", "supervisor", "admin")
DESIGNERS = ("admin", "designer")
OPERATORS = ("admin", "supervisor")

Policy = str | tuple[str, ...]

ACCESS: dict[tuple[str, str], Policy] = {
    # public: the login page, the language switch, the guide (信息公开), health, static files, the API's description
    ("static", "GET"): PUBLIC,
    ("healthz", "GET"): PUBLIC,
    ("auth.login", "GET"): PUBLIC,
    ("auth.login", "POST"): PUBLIC,
    ("auth.logout", "POST"): PUBLIC,  # logged in or not, it ends at the login page
    ("auth.set_language", "GET"): PUBLIC,
    ("guide.index", "GET"): PUBLIC,
    ("guide.kind", "GET"): PUBLIC,
    ("api.openapi", "GET"): PUBLIC,
    # every clerk: the overview, the task list, case search and case pages (首问负责)
    ("main.overview", "GET"): ANY,
    ("tasks.index", "GET"): ANY,
    ("cases.index", "GET"): ANY,
    ("cases.case", "GET"): ANY,
    ("cases.diagram", "GET"): ANY,
    ("api.me", "GET"): ANY,
    ("api.processes", "GET"): ANY,
    ("api.get_case", "GET"): ANY,
    ("api.case_diagram", "GET"): ANY,
    ("api.tasks", "GET"): ANY,
    # a task: whoever holds its role (claimed by someone else: only they, or a supervisor)
    ("tasks.task", "GET"): TASK_ROLE,
    ("tasks.complete", "POST"): TASK_ROLE,
    ("tasks.save_draft", "POST"): TASK_ROLE,
    ("tasks.claim", "POST"): TASK_ROLE,
    ("tasks.release", "POST"): HOLDER_OR_MANAGER,
    ("api.claim_task", "POST"): TASK_ROLE,
    ("api.complete_task", "POST"): TASK_ROLE,
    ("api.release_task", "POST"): HOLDER_OR_MANAGER,
    # starting a case
    ("cases.new", "GET"): CASE_STARTERS,
    ("cases.start", "POST"): CASE_STARTERS,
    ("api.start_case", "POST"): CASE_STARTERS,
    # the admin area's overview: anyone with one of its pages
    ("admin.index", "GET"): ("admin", "supervisor", "designer"),
    # deployments, versions, migrations
    ("admin.deployments", "GET"): DESIGNERS,
    ("admin.deployments", "POST"): DESIGNERS,
    ("admin.process", "GET"): DESIGNERS,
    ("admin.diff", "GET"): DESIGNERS,
    ("admin.version", "GET"): DESIGNERS,
    ("admin.migrate_case", "POST"): DESIGNERS,
    ("admin.migrate_version", "POST"): DESIGNERS,
    ("api.deploy", "POST"): DESIGNERS,
    # incidents, timers and the outbox, messages to cases
    ("admin.incidents", "GET"): OPERATORS,
    ("admin.incident", "GET"): OPERATORS,
    ("admin.retry_incident", "POST"): OPERATORS,
    ("admin.resolve_incident", "POST"): OPERATORS,
    ("admin.jobs", "GET"): OPERATORS,
    ("api.incidents", "GET"): OPERATORS,
    ("api.retry_incident", "POST"): OPERATORS,
    ("api.resolve_incident", "POST"): OPERATORS,
    ("api.send_message", "POST"): OPERATORS,
    # the supervisor dashboard
    ("admin.dashboard", "GET"): ("supervisor", "admin"),
}

# Pages that do not answer 403 to a user the engine refuses: claiming and releasing from the task
# list go back to the page they came from with the engine's reason shown (and nothing changed).
REFUSED_WITH_A_MESSAGE = {("tasks.claim", "POST"): "未能认领", ("tasks.release", "POST"): "未能释放"}


def allowed(policy: Policy, role: str) -> bool:
    if policy in (PUBLIC, ANY):
        return True
    if policy == TASK_ROLE:
        return role == "window_clerk"
    if policy == HOLDER_OR_MANAGER:
        return role in ("supervisor", "admin")  # the holder is HOLDER, not one of the matrix's users
    return role in policy


# ------------------------------------------------------------------------------------ the objects


@dataclass
class World:
    case_id: int
    task_id: int  # 受理 of the case, a window_clerk task, not claimed
    held_id: int  # 受理 of another case, claimed by HOLDER
    incident_id: int
    version_id: int
    lock_version: int
    process_id: str = "general_registration"
    business: str = "seizure"  # a kind with a public guide page


def build_world(engine: Engine, every_process: bool = False) -> World:
    """The objects; with `every_process`, all of processes/ is deployed (for the guide's pages)."""
    engine.deploy_paths([PROCESSES] if every_process else [PROCESSES / "general_registration.bpmn"], "designer")
    engine.deploy(bpmn("service_errors.bpmn"), "designer")
    clerk = Actor.of("window_clerk", "window_clerk")
    case = engine.start_case("general_registration", {"promised_workdays": 5}, clerk, summary={"applicant": "张三"})
    other = engine.start_case("general_registration", {"promised_workdays": 5}, clerk, summary={"applicant": "李四"})
    held = open_task(engine, other.id, "accept")["id"]
    engine.claim_task(held, Actor.of(HOLDER, "window_clerk"))
    CourtStub.reset(*["crash"] * 100)  # the incident stays open however often it is retried
    engine.start_case("service_errors", {"unit": "330106001001GB00001F00010001"}, clerk)
    [incident] = engine.incidents("open")
    version = max((v for v in engine.versions("general_registration")), key=lambda v: v["version"])
    return World(case_id=case.id, task_id=open_task(engine, case.id, "accept")["id"], held_id=held,
                 incident_id=incident["id"], version_id=version["id"],
                 lock_version=engine.get_case(case.id)["lock_version"])


def ensure_held(engine: Engine, world: World) -> None:
    """The claimed task, claimed again by HOLDER if an allowed caller released it."""
    with engine.db.read() as s:
        assignee = s.scalar(select(HumanTask.assignee).where(HumanTask.id == world.held_id))
    if assignee is None:
        engine.claim_task(world.held_id, Actor.of(HOLDER, "window_clerk"))


# ------------------------------------------------------------------------------------ the calls


@dataclass
class Call:
    path: Callable[[World], str]
    ok: set[int]  # what an allowed caller gets
    form: dict[str, Any] | None = None  # page POSTs (the CSRF token is added)
    json: dict[str, Any] | None = None  # API POSTs
    multipart: bool = False
    before: Callable[[Engine, World], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


CALLS: dict[tuple[str, str], Call] = {
    ("static", "GET"): Call(lambda w: "/static/app.css", {200}),
    ("healthz", "GET"): Call(lambda w: "/healthz", {200}),
    ("auth.login", "GET"): Call(lambda w: "/login", {200, 302}),  # logged in: on to the overview
    ("auth.login", "POST"): Call(lambda w: "/login", {200}, form={"login": "nobody", "password": "wrong-password"}),
    ("auth.logout", "POST"): Call(lambda w: "/logout", {302}, form={}),
    ("auth.set_language", "GET"): Call(lambda w: "/lang/zh_CN", {302}),
    ("guide.index", "GET"): Call(lambda w: "/guide/", {200}),
    ("guide.kind", "GET"): Call(lambda w: f"/guide/{w.business}", {200}),
    ("api.openapi", "GET"): Call(lambda w: "/api/v1/openapi.json", {200}),
    ("main.overview", "GET"): Call(lambda w: "/", {200}),
    ("tasks.index", "GET"): Call(lambda w: "/tasks/", {200}),
    ("cases.index", "GET"): Call(lambda w: "/cases/", {200}),
    ("cases.case", "GET"): Call(lambda w: f"/cases/{w.case_id}", {200}),
    ("cases.diagram", "GET"): Call(lambda w: f"/cases/{w.case_id}/diagram.svg", {200}),
    ("api.me", "GET"): Call(lambda w: "/api/v1/me", {200}),
    ("api.processes", "GET"): Call(lambda w: "/api/v1/processes", {200}),
    ("api.get_case", "GET"): Call(lambda w: f"/api/v1/cases/{w.case_id}", {200}),
    ("api.case_diagram", "GET"): Call(lambda w: f"/api/v1/cases/{w.case_id}/diagram.svg", {200}),
    ("api.tasks", "GET"): Call(lambda w: "/api/v1/tasks", {200}),
    ("tasks.task", "GET"): Call(lambda w: f"/tasks/{w.task_id}", {200}),
    # not a JSON object: refused by the form (422), after the role was checked
    ("tasks.complete", "POST"): Call(lambda w: f"/tasks/{w.task_id}", {422},
                                     form={"_json": "[1]", "lock_version": "0"}),
    ("tasks.save_draft", "POST"): Call(lambda w: f"/tasks/{w.task_id}/draft", {302}, form={"_json": "{"}),
    ("tasks.claim", "POST"): Call(lambda w: f"/tasks/{w.task_id}/claim", {302}, form={}),
    ("tasks.release", "POST"): Call(lambda w: f"/tasks/{w.held_id}/release", {302}, form={}, before=ensure_held),
    ("api.claim_task", "POST"): Call(lambda w: f"/api/v1/tasks/{w.task_id}/claim", {200}),
    # a stale expected version: 409, nothing stored
    ("api.complete_task", "POST"): Call(lambda w: f"/api/v1/tasks/{w.task_id}/complete", {409},
                                        json={"data": {}, "expected_version": 999}),
    ("api.release_task", "POST"): Call(lambda w: f"/api/v1/tasks/{w.held_id}/release", {200}, before=ensure_held),
    ("cases.new", "GET"): Call(lambda w: "/cases/new", {200}),
    ("cases.start", "POST"): Call(lambda w: f"/cases/new/{w.process_id}", {422}, form={"_json": "[1]"}),
    ("api.start_case", "POST"): Call(lambda w: "/api/v1/cases", {422}, json={"process_id": " "}),
    ("admin.index", "GET"): Call(lambda w: "/admin/", {200}),
    ("admin.deployments", "GET"): Call(lambda w: "/admin/deployments", {200}),
    ("admin.deployments", "POST"): Call(lambda w: "/admin/deployments", {422}, form={"comment": "没有文件"},
                                        multipart=True),
    ("admin.process", "GET"): Call(lambda w: f"/admin/processes/{w.process_id}", {200}),
    ("admin.diff", "GET"): Call(lambda w: f"/admin/processes/{w.process_id}/diff", {302}),  # one version only
    ("admin.version", "GET"): Call(lambda w: f"/admin/versions/{w.version_id}", {200}),
    # no target version: refused with a message, back to the version page
    ("admin.migrate_case", "POST"): Call(lambda w: f"/admin/cases/{w.case_id}/migrate", {302},
                                         form={"target": "0", "lock_version": "999"}),
    ("admin.migrate_version", "POST"): Call(lambda w: f"/admin/versions/{w.version_id}/migrate", {302},
                                            form={"target": "0"}),
    ("api.deploy", "POST"): Call(lambda w: "/api/v1/deployments", {422}, form={"comment": "没有文件"}, multipart=True),
    ("admin.incidents", "GET"): Call(lambda w: "/admin/incidents", {200}),
    ("admin.incident", "GET"): Call(lambda w: f"/admin/incidents/{w.incident_id}", {200}),
    ("admin.retry_incident", "POST"): Call(lambda w: f"/admin/incidents/{w.incident_id}/retry", {302}, form={}),
    ("admin.resolve_incident", "POST"): Call(lambda w: f"/admin/incidents/{w.incident_id}/resolve", {422},
                                             form={"comment": " "}),
    ("admin.jobs", "GET"): Call(lambda w: "/admin/jobs", {200}),
    ("api.incidents", "GET"): Call(lambda w: "/api/v1/incidents", {200}),
    ("api.retry_incident", "POST"): Call(lambda w: f"/api/v1/incidents/{w.incident_id}/retry", {200}),
    ("api.resolve_incident", "POST"): Call(lambda w: f"/api/v1/incidents/{w.incident_id}/resolve", {422},
                                           json={"comment": " "}),
    ("api.send_message", "POST"): Call(lambda w: f"/api/v1/cases/{w.case_id}/messages", {422}, json={"name": ""}),
    ("admin.dashboard", "GET"): Call(lambda w: "/admin/dashboard", {200}),
}


def routes(app: Flask) -> list[tuple[str, str]]:
    """Every (endpoint, method) the application answers, logout last (it ends the session)."""
    found = {(rule.endpoint, method) for rule in app.url_map.iter_rules()
             for method in rule.methods - {"HEAD", "OPTIONS"}}
    return sorted(found, key=lambda r: (r == ("auth.logout", "POST"), r))


def counts(db: Database) -> dict[str, int]:
    with db.read() as s:
        return {m.__name__: s.scalar(select(func.count()).select_from(m))
                for m in (Case, CaseEvent, HumanTask, Incident, ProcessVersion, TaskDraft)}


def assignees(db: Database, world: World) -> dict[int, str | None]:
    with db.read() as s:
        return dict(s.execute(select(HumanTask.id, HumanTask.assignee)
                              .where(HumanTask.id.in_([world.task_id, world.held_id]))).all())


def call(client: FlaskClient, c: Call, world: World, method: str, headers: dict[str, str] | None,
         csrf: str | None) -> TestResponse:
    path = c.path(world)
    if method == "GET":
        return client.get(path, headers=headers)
    if path.startswith("/api/"):
        if c.multipart:
            return client.post(path, headers=headers, data=dict(c.form or {}), content_type="multipart/form-data")
        return client.post(path, headers=headers, json=c.json)
    data = {**(c.form or {}), "csrf_token": csrf or ""}
    return client.post(path, data=data, content_type="multipart/form-data" if c.multipart else None)


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def app(engine: Engine) -> Flask:
    return create_app({"TESTING": True, "ENGINE": engine, "ACCOUNT_POLICY": FAST})


@pytest.fixture
def accounts(app: Flask) -> Accounts:
    return app.extensions["onewindow.accounts"]


@pytest.fixture
def people(accounts: Accounts) -> dict[str, dict[str, str]]:
    """A user per role (the login is the role's code) and HOLDER; each with a bearer header."""
    headers = {}
    for login, roles in [*((r, [r]) for r in ROLES), (HOLDER, ["window_clerk"])]:
        accounts.create_user(login, ROLES.get(login, "张丽"), PASSWORD, roles)
        headers[login] = {"Authorization": f"Bearer {accounts.issue_token(login, '测试').token}"}
    return headers


# ------------------------------------------------------------------------------------ the matrix


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_every_route_has_a_policy_and_a_way_to_call_it(app: Flask) -> None:
    answered = set(routes(app))
    assert answered - ACCESS.keys() == set(), "new routes: add them to ACCESS (who may use them) and CALLS"
    assert ACCESS.keys() - answered == set(), "ACCESS names routes that no longer exist"
    assert CALLS.keys() == ACCESS.keys()
    assert set(REFUSED_WITH_A_MESSAGE) <= ACCESS.keys()


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_the_access_matrix(app: Flask, engine: Engine, db: Database, people: dict) -> None:
    """Every route, for an anonymous visitor and for a user of each role in turn, on one set of
    objects (allowed calls change nothing that a later call depends on)."""
    world = build_world(engine, every_process=True)
    check_anonymous(app, world, db)
    for role in ROLES:
        check_role(app, engine, world, db, role, people[role])


def check_anonymous(app: Flask, world: World, db: Database) -> None:
    """Pages send a visitor to the login page (and back afterwards); the API answers 401 JSON."""
    client = app.test_client()
    csrf = token_of(page(client.get("/login")))  # a visitor's own form token: the refusal is about the login
    before = counts(db)
    for endpoint, method in routes(app):
        c, policy = CALLS[(endpoint, method)], ACCESS[(endpoint, method)]
        r = call(client, c, world, method, None, csrf)
        where = ("anonymous", endpoint, method, r.status_code, page(r)[:200])
        assert r.status_code < 500, where
        if policy == PUBLIC:
            assert r.status_code in c.ok, where
            if r.status_code == 302:
                assert "next=" not in r.headers["Location"], where
        elif endpoint.startswith("api."):
            assert r.status_code == 401 and r.is_json and r.json["error"] == "unauthorized", where
            assert r.headers["WWW-Authenticate"].startswith("Bearer"), where
        else:
            assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=/"), where
    assert counts(db) == before


def check_role(app: Flask, engine: Engine, world: World, db: Database, role: str, bearer: dict[str, str]) -> None:
    """Allowed: the route's answer. Not allowed: 403 (page or JSON), or for claim and release from
    the task list the page they came from with the reason; either way nothing changed."""
    client = log_in(app, role, PASSWORD)
    csrf = token_of(page(client.get("/")))
    for endpoint, method in routes(app):
        c, policy = CALLS[(endpoint, method)], ACCESS[(endpoint, method)]
        if c.before is not None:
            c.before(engine, world)
        may = allowed(policy, role)
        if not may:
            before, held_before = counts(db), assignees(db, world)
        r = call(client, c, world, method, bearer if endpoint.startswith("api.") else None, csrf)
        where = (role, endpoint, method, r.status_code, page(r)[:300])
        assert r.status_code < 500, where
        if may:
            assert r.status_code in c.ok, where
            continue
        if (endpoint, method) in REFUSED_WITH_A_MESSAGE:
            assert r.status_code == 302, where
            assert REFUSED_WITH_A_MESSAGE[(endpoint, method)] in page(client.get(r.headers["Location"])), where
        elif endpoint.startswith("api."):
            assert r.status_code == 403 and r.is_json and r.json["error"] == "forbidden", where
            assert r.json["message"].strip(), where
        else:
            assert r.status_code == 403 and "无权" in page(r), where
        assert counts(db) == before and assignees(db, world) == held_before, where
    # the session lasted to the end (no call above ended it early), and the logout ended it
    assert client.get("/").status_code == 302, role


# ------------------------------------------------------------------------------------ tokens


def test_a_token_cannot_act_for_another_user(app: Flask, engine: Engine, db: Database, people: dict) -> None:
    world = build_world(engine)
    client = app.test_client()
    wang, zhang = people["window_clerk"], people[HOLDER]
    assert client.post(f"/api/v1/tasks/{world.task_id}/claim", headers=wang).json["assignee"] == "window_clerk"
    before = counts(db)
    # the same role, but the task is someone else's: neither completed nor released nor claimed
    done = client.post(f"/api/v1/tasks/{world.task_id}/complete", headers=zhang, json={"data": {}})
    assert done.status_code == 403 and done.json["error"] == "forbidden" and "window_clerk" in done.json["message"]
    released = client.post(f"/api/v1/tasks/{world.task_id}/release", headers=zhang)
    assert released.status_code == 403 and "只有本人或主管" in released.json["message"]
    taken = client.post(f"/api/v1/tasks/{world.task_id}/claim", headers=zhang)
    assert taken.status_code == 409 and taken.json["error"] == "conflict"
    # naming the holder in the body or a header changes nothing: the token decides who acts
    posing = client.post(f"/api/v1/tasks/{world.task_id}/complete", headers={**zhang, "X-User": "window_clerk"},
                         json={"data": {}, "actor": "window_clerk"})
    assert posing.status_code == 422 and "actor" in posing.json["message"]
    assert counts(db) == before
    assert assignees(db, world)[world.task_id] == "window_clerk"
    # and the holder's own token still works
    ok = client.post(f"/api/v1/tasks/{world.task_id}/complete", headers=wang, json={"data": {}})
    assert ok.status_code == 200, ok.json
    completed = [e["actor"] for e in engine.history(world.case_id) if e["kind"] == "task_completed"]
    assert completed == ["window_clerk"]


def test_revoked_tokens_and_tokens_of_disabled_users_are_refused(app: Flask, engine: Engine, accounts: Accounts,
                                                                  db: Database, people: dict) -> None:
    world = build_world(engine)
    client = app.test_client()
    spare = accounts.issue_token("window_clerk", "自助机")
    auth = {"Authorization": f"Bearer {spare.token}"}
    assert client.get("/api/v1/me", headers=auth).status_code == 200
    accounts.revoke_token(spare.info.id)
    before = counts(db)
    for r in (client.get("/api/v1/me", headers=auth),
              client.post(f"/api/v1/tasks/{world.task_id}/claim", headers=auth),
              client.post("/api/v1/cases", headers=auth, json={"process_id": "general_registration"})):
        assert r.status_code == 401 and r.json["error"] == "invalid_token", r.json
    assert client.get("/api/v1/me", headers=people["window_clerk"]).status_code == 200  # the other token still works
    accounts.set_active("window_clerk", False)
    for r in (client.get("/api/v1/me", headers=people["window_clerk"]),
              client.post(f"/api/v1/tasks/{world.task_id}/claim", headers=people["window_clerk"])):
        assert r.status_code == 401 and r.json["error"] == "invalid_token", r.json
    # a logged-in browser of another user does not rescue a refused token
    browser = log_in(app, "supervisor", PASSWORD)
    refused = browser.get("/api/v1/me", headers=auth)
    assert refused.status_code == 401 and refused.json["error"] == "invalid_token"
    assert counts(db) == before and assignees(db, world)[world.task_id] is None
