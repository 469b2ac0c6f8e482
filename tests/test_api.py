"""The JSON API under /api/v1 (issue #5): end to end on a deployed process with bearer tokens,
permissions per role, bad bodies, and the OpenAPI document. Every test runs on SQLite and
PostgreSQL (the `db` fixture)."""
from __future__ import annotations

import json
import re
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from openapi_spec_validator import validate as validate_openapi
from sqlalchemy import func, select

from engine import Engine
from storage.db import Database
from storage.models import Case, CaseEvent, HumanTask, InboundMessage, Incident, ProcessVersion
from tests.conftest import bpmn
from tests.diagrams import definitions, line_of
from tests.operators import CourtStub
from webapp import create_app
from webapp.accounts import AccountPolicy, Accounts
from webapp.api_marks import case_marks
from webapp.api_support import configure

FAST = AccountPolicy(time_cost=1, memory_cost=8 * 1024, parallelism=1)
PASSWORD = "柜台-secret-2026"
ROOT = Path(__file__).resolve().parent.parent
GENERAL = ROOT / "processes" / "general_registration.bpmn"
MAX_BODY = 64 * 1024
MAX_UPLOAD = 256 * 1024
PEOPLE = {
    "wang": ("王敏", ["window_clerk"]),
    "li": ("李静", ["reviewer"]),
    "zhao": ("赵磊", ["registrar"]),
    "he": ("何芳", ["designer"]),
    "sun": ("孙伟", ["admin"]),
    "chen": ("陈刚", ["supervisor"]),
}


@pytest.fixture
def app(engine: Engine) -> Flask:
    return create_app({"TESTING": True, "ENGINE": engine, "ACCOUNT_POLICY": FAST,
                       "API_MAX_BODY_BYTES": MAX_BODY, "API_MAX_UPLOAD_BYTES": MAX_UPLOAD})


@pytest.fixture
def tokens(app: Flask) -> dict[str, dict[str, str]]:
    """An `Authorization` header per person, from a token issued to them."""
    accounts: Accounts = app.extensions["onewindow.accounts"]
    out = {}
    for login, (name, roles) in PEOPLE.items():
        accounts.create_user(login, name, PASSWORD, roles)
        out[login] = {"Authorization": f"Bearer {accounts.issue_token(login, '测试').token}"}
    return out


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def counts(db: Database) -> dict[str, int]:
    with db.read() as s:
        return {m.__name__: s.scalar(select(func.count()).select_from(m))
                for m in (Case, CaseEvent, HumanTask, ProcessVersion, InboundMessage, Incident)}


def deploy_general(engine: Engine) -> None:
    engine.deploy([(GENERAL.name, GENERAL.read_bytes())], "he")


def start(client: FlaskClient, headers: dict[str, str], process_id: str = "general_registration",
          data: dict[str, Any] | None = None) -> dict[str, Any]:
    r = client.post("/api/v1/cases", json={"process_id": process_id, "data": data or {"promised_workdays": 5}},
                    headers=headers)
    assert r.status_code == 201, r.json
    return r.json


def task_of(client: FlaskClient, headers: dict[str, str], case_id: int, bpmn_id: str) -> dict[str, Any]:
    items = client.get("/api/v1/tasks", headers=headers).json["items"]
    found = [t for t in items if t["case_id"] == case_id and t["bpmn_id"] == bpmn_id]
    assert found, f"{bpmn_id} not in {[(t['case_id'], t['bpmn_id']) for t in items]}"
    return found[0]


def svg_marks(svg: str) -> dict[str, str]:
    root = etree.fromstring(svg.encode())
    marks = {}
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        found = re.search(r"\bmark-(\w+)", g.get("class") or "")
        if found and g.get("data-element-id"):
            marks[g.get("data-element-id")] = found.group(1)
    return marks


def assert_error(response: Any, status: int, code: str, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.is_json, response.get_data(as_text=True)
    body = response.json
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and re.search(r"[\u4e00-\u9fff]", body["message"]), body
    for fragment in fragments:
        assert fragment in body["message"], (fragment, body["message"])
    return body


# ---------------------------------------------------------------------------------- end to end

def test_a_case_end_to_end_with_tokens(client: FlaskClient, tokens: dict, engine: Engine, db: Database) -> None:
    wang, li, zhao, he = tokens["wang"], tokens["li"], tokens["zhao"], tokens["he"]
    deployed = client.post("/api/v1/deployments", headers=he, data={
        "files": [(BytesIO(GENERAL.read_bytes()), GENERAL.name)], "comment": "首次部署"})
    assert deployed.status_code == 201, deployed.json
    [version] = deployed.json["versions"]
    assert version["process_id"] == "general_registration" and version["version"] == 1 and version["created"]
    again = client.post("/api/v1/deployments", headers=he, data={"files": [(BytesIO(GENERAL.read_bytes()),
                                                                           GENERAL.name)]})
    assert again.status_code == 200 and again.json["created"] == 0  # same content: the same version

    [process] = client.get("/api/v1/processes", headers=wang).json["items"]
    assert process["process_id"] == "general_registration" and process["latest_version"] == 1
    assert process["running_cases"] == 0 and process["name"].startswith("一般登记")

    started = client.post("/api/v1/cases", headers=wang, json={
        "process_id": "general_registration", "data": {"promised_workdays": 5}, "summary": {"applicant": "张三"}})
    assert started.status_code == 201
    case = started.json
    assert set(case) == {"id", "case_number", "status", "lock_version"}
    assert case["status"] == "active" and re.fullmatch(r"\d{4}-\d{6}", case["case_number"])
    assert started.headers["Location"] == f"/api/v1/cases/{case['id']}"
    assert client.get("/api/v1/processes", headers=wang).json["items"][0]["running_cases"] == 1

    listed = client.get("/api/v1/tasks", headers=wang).json
    [accept] = listed["items"]
    assert accept["bpmn_id"] == "accept" and accept["role"] == "window_clerk" and accept["assignee"] is None
    assert accept["role_name"] == "窗口受理" and accept["summary"] == {"applicant": "张三"}
    assert accept["created_at"] == "2026-11-23T09:00:00+08:00" and listed["next_offset"] is None
    assert client.get("/api/v1/tasks", headers=li).json["items"] == []  # not the reviewer's

    claimed = client.post(f"/api/v1/tasks/{accept['id']}/claim", headers=wang)
    assert claimed.status_code == 200 and claimed.json["assignee"] == "wang"
    assert client.get("/api/v1/tasks?mine=true", headers=wang).json["items"][0]["id"] == accept["id"]

    # a stale version: 409 with the case as it stands, and nothing stored
    before = counts(db)
    stale = client.post(f"/api/v1/tasks/{accept['id']}/complete", headers=wang,
                        json={"data": {"applicant_phone": "13800000000"}, "expected_version": 7})
    body = assert_error(stale, 409, "conflict", case["case_number"], "请刷新后重新提交")
    assert body["case"] == {"id": case["id"], "case_number": case["case_number"], "status": "active",
                            "lock_version": 0}
    assert counts(db) == before
    assert "applicant_phone" not in engine.case_data(case["id"])
    assert engine.case_tasks(case["id"])[0]["state"] == "open"

    done = client.post(f"/api/v1/tasks/{accept['id']}/complete", headers=wang,
                       json={"data": {"applicant_phone": "13800000000"}, "expected_version": 0})
    assert done.status_code == 200, done.json
    assert done.json["lock_version"] == 1 and done.json["status"] == "active"
    assert [t["bpmn_id"] for t in done.json["open_tasks"]] == ["review"]
    assert engine.case_data(case["id"])["applicant_phone"] == "13800000000"
    twice = client.post(f"/api/v1/tasks/{accept['id']}/complete", headers=wang, json={"data": {}})
    assert_error(twice, 409, "task_not_ready", "已由 wang 办结")

    shown = client.get(f"/api/v1/cases/{case['id']}", headers=li).json  # any clerk may look (首问负责)
    assert shown["status"] == "active" and shown["status_name"] == "办理中" and shown["lock_version"] == 1
    assert [t["bpmn_id"] for t in shown["tasks"]] == ["review"] and shown["incidents"] == []
    assert shown["deadline"] is None and shown["diagram_url"] == f"/api/v1/cases/{case['id']}/diagram.svg"

    diagram = client.get(shown["diagram_url"], headers=li)
    assert diagram.status_code == 200 and diagram.mimetype == "image/svg+xml"
    marks = svg_marks(diagram.get_data(as_text=True))
    assert marks == {"start": "done", "flow_start_accept": "done", "accept": "done", "flow_accept_split": "done",
                     "split": "done", "flow_split_promise": "done", "promise_date": "done",
                     "flow_split_review": "done", "review": "active", "flow_promise_join": "done", "join": "waiting"}

    review = task_of(client, li, case["id"], "review")
    assert client.post(f"/api/v1/tasks/{review['id']}/complete", headers=li,
                       json={"data": {"approved": True}, "expected_version": 1}).status_code == 200
    register = task_of(client, zhao, case["id"], "register")
    finished = client.post(f"/api/v1/tasks/{register['id']}/complete", headers=zhao, json={"data": {}})
    assert finished.status_code == 200 and finished.json["status"] == "completed"
    assert finished.json["open_tasks"] == []

    final = svg_marks(client.get(shown["diagram_url"], headers=wang).get_data(as_text=True))
    path = ["start", "accept", "split", "promise_date", "review", "join", "decision", "register", "end_registered",
            "flow_approved", "flow_register_end", "flow_join_decision"]
    assert all(final.get(e) == "done" for e in path), final
    assert "end_refused" not in final and "flow_refused" not in final  # the path not taken
    history = engine.history(case["id"])
    assert [(e["kind"], e["actor"]) for e in history if e["kind"] == "task_completed"] == [
        ("task_completed", "wang"), ("task_completed", "li"), ("task_completed", "zhao")]


def test_marks_of_a_refused_case_and_of_an_incident() -> None:
    xml = GENERAL.read_text()
    refused = case_marks(xml, "general_registration", case_status="completed", history=[
        {"kind": "task_completed", "bpmn_id": "accept"}, {"kind": "service_called", "bpmn_id": "promise_date"},
        {"kind": "task_completed", "bpmn_id": "review"}])
    assert refused["end_refused"] == "done" and refused["decision"] == "done" and refused["flow_refused"] == "done"
    assert "register" not in refused and "end_registered" not in refused and "flow_approved" not in refused
    failing = case_marks(xml, "general_registration", history=[{"kind": "task_completed", "bpmn_id": "accept"}],
                         open_task_ids=["review"], incident_ids=["promise_date"])
    assert failing["promise_date"] == "incident" and failing["review"] == "active" and failing["split"] == "done"
    assert "join" not in failing  # no branch has reached it yet
    assert case_marks("<not xml", "general_registration", history=[], open_task_ids=["x"]) == {"x": "active"}


# ---------------------------------------------------------------------------------- who may do what

def test_anonymous_gets_401_everywhere_but_the_openapi_document(app: Flask, client: FlaskClient,
                                                                 tokens: dict) -> None:
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("api.")]
    assert len(rules) >= 15
    for rule in rules:
        path = re.sub(r"<(?:\w+:)?\w+>", "1", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            for headers in ({}, {"Authorization": "Bearer owt_forged"}):
                r = client.open(path, method=method, json={} if method == "POST" else None, headers=headers)
                if rule.endpoint == "api.openapi":
                    assert r.status_code == 200
                else:
                    assert r.status_code == 401, (method, path, r.status_code)
                    assert r.json["error"] in ("unauthorized", "invalid_token")


def test_a_reviewer_cannot_do_a_window_task(client: FlaskClient, tokens: dict, engine: Engine,
                                            db: Database) -> None:
    deploy_general(engine)
    case = start(client, tokens["wang"])
    accept = task_of(client, tokens["wang"], case["id"], "accept")
    before = counts(db)
    refused = client.post(f"/api/v1/tasks/{accept['id']}/complete", headers=tokens["li"], json={"data": {}})
    assert_error(refused, 403, "forbidden", "受理", "窗口受理", "李静")
    assert_error(client.post(f"/api/v1/tasks/{accept['id']}/claim", headers=tokens["li"]), 403, "forbidden",
                 "窗口受理")
    assert counts(db) == before and engine.case_tasks(case["id"])[0]["assignee"] is None
    # once the window clerk claimed it, a reviewer cannot release it either
    client.post(f"/api/v1/tasks/{accept['id']}/claim", headers=tokens["wang"])
    assert_error(client.post(f"/api/v1/tasks/{accept['id']}/release", headers=tokens["li"]), 403, "forbidden")
    assert client.post(f"/api/v1/tasks/{accept['id']}/release", headers=tokens["wang"]).json["assignee"] is None


def test_roles_for_each_endpoint(client: FlaskClient, tokens: dict, engine: Engine, db: Database) -> None:
    deploy_general(engine)
    files = {"files": [(BytesIO(GENERAL.read_bytes()), GENERAL.name)]}
    assert_error(client.post("/api/v1/deployments", headers=tokens["wang"], data=files), 403, "forbidden",
                 "流程设计", "系统管理员", "王敏")
    for who in ("he", "sun"):
        assert client.post("/api/v1/deployments", headers=tokens[who], data={
            "files": [(BytesIO(GENERAL.read_bytes()), GENERAL.name)]}).status_code == 200
    before = counts(db)
    for who in ("li", "zhao", "he"):
        r = client.post("/api/v1/cases", headers=tokens[who], json={"process_id": "general_registration"})
        assert_error(r, 403, "forbidden", "窗口受理")
    assert counts(db) == before
    for who in ("wang", "chen", "sun"):
        start(client, tokens[who])
    case_id = engine.find_case("2026-000001")["id"]
    for who in ("wang", "li", "he"):
        assert_error(client.get("/api/v1/incidents", headers=tokens[who]), 403, "forbidden", "主管")
        assert_error(client.post(f"/api/v1/cases/{case_id}/messages", headers=tokens[who], json={"name": "x"}),
                     403, "forbidden")
        assert_error(client.post("/api/v1/incidents/1/retry", headers=tokens[who]), 403, "forbidden")
    for who in ("chen", "sun"):
        assert client.get("/api/v1/incidents", headers=tokens[who]).status_code == 200
    for who in PEOPLE:  # reading needs only a login
        assert client.get(f"/api/v1/cases/{case_id}", headers=tokens[who]).status_code == 200
        assert client.get("/api/v1/processes", headers=tokens[who]).status_code == 200
        assert client.get("/api/v1/me", headers=tokens[who]).json["login"] == who
    assert_error(client.get("/api/v1/tasks?role=registrar", headers=tokens["wang"]), 403, "forbidden", "登簿")
    assert_error(client.get("/api/v1/tasks?role=janitor", headers=tokens["wang"]), 422, "invalid", "janitor")


def test_a_token_acts_as_its_user_and_no_other(app: Flask, client: FlaskClient, tokens: dict, engine: Engine,
                                               db: Database) -> None:
    deploy_general(engine)
    case = start(client, tokens["wang"])
    accept = task_of(client, tokens["wang"], case["id"], "accept")
    client.post(f"/api/v1/tasks/{accept['id']}/complete", headers=tokens["wang"], json={"data": {}})
    review = task_of(client, tokens["li"], case["id"], "review")
    before = counts(db)
    claiming = client.post(f"/api/v1/tasks/{review['id']}/complete", headers=tokens["li"],
                           json={"data": {"approved": True}, "actor": "wang"})
    assert_error(claiming, 422, "invalid", "actor", "不认识的字段")
    assert counts(db) == before
    # logged in as the clerk in a browser, the reviewer's token still acts as the reviewer
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page.get_data(as_text=True)).group(1)
    assert client.post("/login", data={"csrf_token": csrf, "login": "wang", "password": PASSWORD}).status_code == 302
    assert client.get("/api/v1/me").json["login"] == "wang"
    claimed = client.post(f"/api/v1/tasks/{review['id']}/claim", headers={**tokens["li"], "X-User": "wang"})
    assert claimed.status_code == 200 and claimed.json["assignee"] == "li"
    done = client.post(f"/api/v1/tasks/{review['id']}/complete", headers=tokens["li"],
                       json={"data": {"approved": True}})
    assert done.status_code == 200
    events = [(e["kind"], e["actor"]) for e in engine.history(case["id"]) if e["bpmn_id"] == "review"]
    assert ("task_claimed", "li") in events and ("task_completed", "li") in events
    assert all(actor == "li" for _kind, actor in events)
    with db.read() as s:
        assert s.scalar(select(HumanTask.closed_by).where(HumanTask.id == review["id"])) == "li"
    # without the token the session is used, and then a POST needs the CSRF header
    assert client.post(f"/api/v1/tasks/{review['id']}/release").status_code == 400


# ---------------------------------------------------------------------------------- deployments

def test_a_rejected_deployment_lists_every_problem_and_stores_nothing(client: FlaskClient, tokens: dict,
                                                                      db: Database) -> None:
    broken = definitions("""
        <bpmn:startEvent id="start"/>
        <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="calc"/>
        <bpmn:scriptTask id="calc" name="计算"><bpmn:script>x = = 1</bpmn:script></bpmn:scriptTask>
        <bpmn:sequenceFlow id="f2" sourceRef="calc" targetRef="svc"/>
        <bpmn:serviceTask id="svc"><bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="no.such_op"/>
        </bpmn:extensionElements></bpmn:serviceTask>
        <bpmn:sequenceFlow id="f3" sourceRef="svc" targetRef="end"/>
        <bpmn:endEvent id="end"/>
    """, pid="broken")
    before = counts(db)
    r = client.post("/api/v1/deployments", headers=tokens["he"], data={"files": [
        (BytesIO(GENERAL.read_bytes()), GENERAL.name), (BytesIO(broken), "broken.bpmn")]})
    body = assert_error(r, 422, "deployment_rejected", "部署被拒绝", "所有文件均未部署", "broken.bpmn")
    problems = body["problems"]
    assert len(problems) >= 2 and all(set(p) == {"file", "line", "element_id", "message"} for p in problems)
    by_element = {p["element_id"]: p for p in problems}
    assert by_element["calc"]["file"] == "broken.bpmn"
    assert by_element["calc"]["line"] == line_of(broken, "<bpmn:scriptTask")
    assert by_element["svc"]["line"] == line_of(broken, "<bpmn:serviceTask") and "no.such_op" in by_element["svc"][
        "message"]
    assert counts(db) == before  # the good file was not deployed either


def test_deployment_requests_that_are_wrong(client: FlaskClient, tokens: dict, db: Database) -> None:
    he = tokens["he"]
    before = counts(db)
    assert_error(client.post("/api/v1/deployments", headers=he, json={"files": []}), 415,
                 "unsupported_media_type", "multipart/form-data")
    assert_error(client.post("/api/v1/deployments", headers=he, data={"comment": "没有文件"}), 415,
                 "unsupported_media_type", "application/x-www-form-urlencoded")
    assert_error(client.post("/api/v1/deployments", headers=he, data={"comment": "没有文件"},
                             content_type="multipart/form-data"), 422, "invalid", "至少上传一个")
    wrong_field = client.post("/api/v1/deployments", headers=he,
                              data={"file": [(BytesIO(GENERAL.read_bytes()), GENERAL.name)]})
    assert assert_error(wrong_field, 422, "invalid", "file", "files 字段")["fields"][0]["field"] == "file"
    assert_error(client.post("/api/v1/deployments", headers=he,
                             data={"files": [(BytesIO(b"MZ\x90"), "setup.exe")]}), 422, "invalid", "setup.exe")
    twice = {"files": [(BytesIO(GENERAL.read_bytes()), GENERAL.name), (BytesIO(GENERAL.read_bytes()), GENERAL.name)]}
    assert_error(client.post("/api/v1/deployments", headers=he, data=twice), 422, "invalid", "两次")
    huge = {"files": [(BytesIO(b" " * (MAX_UPLOAD + 1)), "huge.bpmn")]}
    assert_error(client.post("/api/v1/deployments", headers=he, data=huge), 413, "too_large", "256 KB")
    assert counts(db) == before


# ---------------------------------------------------------------------------------- bad bodies

def test_bad_bodies_are_refused_with_a_reason_and_store_nothing(client: FlaskClient, tokens: dict, engine: Engine,
                                                                db: Database) -> None:
    deploy_general(engine)
    case = start(client, tokens["wang"])
    accept = task_of(client, tokens["wang"], case["id"], "accept")
    wang = tokens["wang"]
    before = counts(db)
    complete = f"/api/v1/tasks/{accept['id']}/complete"
    json_headers = {**wang, "Content-Type": "application/json"}

    assert_error(client.post("/api/v1/cases", headers=json_headers, data='{"process_id": "general_registration",'),
                 400, "malformed_json", "第 1 行")
    assert_error(client.post(complete, headers=json_headers, data='{"data": NaN}'), 400, "malformed_json", "NaN")
    assert_error(client.post(complete, headers=json_headers, data=b'{"data": "\xff"}'), 400, "malformed_json",
                 "UTF-8")
    assert_error(client.post(complete, headers=wang), 400, "empty_body", "JSON")
    assert_error(client.post(complete, headers=wang, data="data=1", content_type="application/x-www-form-urlencoded"),
                 415, "unsupported_media_type", "application/json", "application/x-www-form-urlencoded")
    assert_error(client.post(complete, headers=wang, data='{"data": {}}'), 415, "unsupported_media_type", "未注明")
    assert_error(client.post(complete, headers={**wang, "Content-Type": "text/plain"}, data='{"data": {}}'),
                 415, "unsupported_media_type", "text/plain")
    big = {"data": {"note": "字" * MAX_BODY}}
    assert_error(client.post(complete, headers=wang, json=big), 413, "too_large", "64 KB")
    chunked = client.post(complete, headers={**json_headers, "Transfer-Encoding": "chunked"},  # no length given
                          input_stream=BytesIO(json.dumps(big).encode()),
                          environ_overrides={"wsgi.input_terminated": True})  # as gunicorn says for chunked
    assert_error(chunked, 413, "too_large")

    missing = assert_error(client.post("/api/v1/cases", headers=wang, json={"data": {}}), 422, "invalid",
                           "process_id：必填")
    assert missing["fields"] == [{"field": "process_id", "message": "必填"}]
    not_object = assert_error(client.post("/api/v1/cases", headers=wang,
                                          json={"process_id": "general_registration", "data": [1, 2]}),
                              422, "invalid", "data：应为 JSON 对象")
    assert not_object["fields"][0]["field"] == "data"
    assert_error(client.post("/api/v1/cases", headers=wang, json=["general_registration"]), 422, "invalid",
                 "请求体：应为 JSON 对象")
    assert_error(client.post("/api/v1/cases", headers=wang, json={"process_id": "  "}), 422, "invalid", "不能为空")
    assert_error(client.post("/api/v1/cases", headers=wang, json={"process_id": "no_such_process"}), 422,
                 "unknown_process", "no_such_process", "general_registration")
    assert_error(client.post(complete, headers=wang, json={"data": {}, "expected_version": "0"}), 422, "invalid",
                 "expected_version：应为整数")
    assert_error(client.post(complete, headers=wang, json={"data": {}, "expected_version": -1}), 422, "invalid",
                 "不能小于 0")
    engine_says = assert_error(client.post(complete, headers=wang, json={"data": {"_secret": 1, "bad-name": 2}}),
                               422, "invalid", "数据有误", "_secret")
    assert "field names must be identifiers" in engine_says["message"]  # the engine's own text, with a lead
    assert_error(client.post(f"/api/v1/tasks/{accept['id']}/claim", headers=wang, json={"who": "li"}), 422,
                 "invalid", "who")
    assert_error(client.get("/api/v1/tasks?limit=201", headers=wang), 422, "invalid", "limit", "200")
    assert_error(client.get("/api/v1/tasks?offset=-1", headers=wang), 422, "invalid", "offset")
    assert counts(db) == before
    assert engine.case_tasks(case["id"])[0]["assignee"] is None


def test_unknown_routes_and_objects_answer_json(client: FlaskClient, tokens: dict) -> None:
    wang = tokens["wang"]
    assert_error(client.get("/api/v1/no/such/route", headers=wang), 404, "not_found")
    assert_error(client.get("/api/v1/no/such/route"), 404, "not_found")
    assert_error(client.delete("/api/v1/cases", headers=wang), 405, "method_not_allowed")
    assert_error(client.get("/api/v1/cases/999", headers=wang), 404, "not_found", "案件 999 不存在")
    assert_error(client.get("/api/v1/cases/999/diagram.svg", headers=wang), 404, "not_found", "999")
    assert_error(client.post("/api/v1/tasks/999/claim", headers=wang), 404, "not_found", "任务 999 不存在")
    assert_error(client.post("/api/v1/tasks/999/complete", headers=wang, json={}), 404, "not_found", "999")


def test_the_body_limits_come_from_config_or_the_environment(engine: Engine) -> None:
    app = create_app({"TESTING": True, "ENGINE": engine, "ACCOUNT_POLICY": FAST})
    assert app.config["API_MAX_BODY_BYTES"] == 1024 * 1024 and app.config["API_MAX_UPLOAD_BYTES"] == 16 * 1024 * 1024
    other = Flask("other")
    configure(other, env={"ONEWINDOW_API_MAX_BODY_BYTES": "2048"})
    assert other.config["API_MAX_BODY_BYTES"] == 2048
    with pytest.raises(ValueError, match="ONEWINDOW_API_MAX_UPLOAD_BYTES"):
        configure(Flask("bad"), env={"ONEWINDOW_API_MAX_UPLOAD_BYTES": "lots"})


# ---------------------------------------------------------------------------------- forms

FORM = {"type": "object", "required": ["applicant", "share"], "properties": {
    "applicant": {"type": "string", "title": "申请人", "minLength": 1},
    "share": {"type": "integer", "title": "份额（%）", "minimum": 1, "maximum": 100},
    "id_number": {"type": "string", "title": "身份证号", "pattern": "^[0-9]{17}[0-9X]$"},
}}
FORM_PROCESS = definitions("""
    <bpmn:laneSet id="lanes">
      <bpmn:lane id="window_clerk" name="窗口受理">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>fill</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="fill"/>
    <bpmn:userTask id="fill" name="填写申请"><bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="formJsonSchemaFilename" value="apply.schema.json"/>
    </spiffworkflow:properties></bpmn:extensionElements></bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="fill" targetRef="end"/>
    <bpmn:endEvent id="end"/>
""", pid="apply_form")


def test_completing_checks_the_tasks_form(client: FlaskClient, tokens: dict, db: Database) -> None:
    wang = tokens["wang"]
    r = client.post("/api/v1/deployments", headers=tokens["he"], data={"files": [
        (BytesIO(FORM_PROCESS), "apply.bpmn"), (BytesIO(json.dumps(FORM).encode()), "apply.schema.json")]})
    assert r.status_code == 201, r.json
    case = start(client, wang, "apply_form", {"applicant": "张三"})
    fill = task_of(client, wang, case["id"], "fill")
    assert fill["form"] == "apply.schema.json"
    before = counts(db)
    url = f"/api/v1/tasks/{fill['id']}/complete"
    low = assert_error(client.post(url, headers=wang, json={"data": {"share": 0}}), 422, "invalid",
                       "份额（%）（share）：不能小于 1")
    assert low["fields"] == [{"field": "data.share", "message": "份额（%）（share）：不能小于 1"}]
    many = assert_error(client.post(url, headers=wang, json={"data": {"share": "五十", "id_number": "abc",
                                                                        "applicant": ""}}), 422, "invalid")
    assert {f["field"] for f in many["fields"]} == {"data.share", "data.id_number", "data.applicant"}
    assert "应为整数" in many["message"] and "格式不对" in many["message"] and "不能为空" in many["message"]
    assert counts(db) == before
    ok = client.post(url, headers=wang, json={"data": {"share": 50, "id_number": "11010519491231002X"}})
    assert ok.status_code == 200 and ok.json["status"] == "completed"  # the applicant came from the case


# ---------------------------------------------------------------------------------- messages

def test_messages_to_a_case(client: FlaskClient, tokens: dict, engine: Engine, db: Database) -> None:
    engine.deploy(bpmn("messages.bpmn"), "he")
    case = start(client, tokens["wang"], "messages", {})
    url = f"/api/v1/cases/{case['id']}/messages"
    early = client.post(url, headers=tokens["chen"], json={"name": "tax_paid", "payload": {"amount": 100},
                                                           "key": "tax-1"})
    assert early.status_code == 200 and early.json["delivered"] is False and early.json["duplicate"] is False
    assert early.json["case"]["id"] == case["id"]
    again = client.post(url, headers=tokens["sun"], json={"name": "tax_paid", "payload": {"amount": 100},
                                                          "key": "tax-1"})
    assert again.json["duplicate"] is True
    accept = task_of(client, tokens["wang"], case["id"], "accept")
    client.post(f"/api/v1/tasks/{accept['id']}/complete", headers=tokens["wang"], json={"data": {}})
    assert [t["bpmn_id"] for t in engine.case_tasks(case["id"])] == ["issue"]  # the buffered message went in
    assert engine.case_data(case["id"])["payment"] == {"amount": 100}
    received = [e for e in engine.history(case["id"]) if e["kind"] == "message_received"]
    assert [e["actor"] for e in received] == ["chen"]
    before = counts(db)
    reused = client.post(f"/api/v1/cases/{case['id']}/messages", headers=tokens["chen"],
                         json={"name": "other", "key": "tax-1"})
    assert_error(reused, 409, "conflict", "tax-1")
    assert_error(client.post("/api/v1/cases/999/messages", headers=tokens["chen"], json={"name": "x"}), 404,
                 "not_found")
    assert_error(client.post(url, headers=tokens["chen"], json={"name": "", "payload": {}}), 422, "invalid",
                 "name：不能为空")
    assert counts(db) == before


# ---------------------------------------------------------------------------------- incidents

def test_incidents_list_retry_and_resolve(client: FlaskClient, tokens: dict, engine: Engine) -> None:
    CourtStub.reset("crash")
    engine.deploy(bpmn("service_errors.bpmn"), "he")
    first = start(client, tokens["wang"], "service_errors", {"unit": "330106001001GB00001F00010001"})
    listed = client.get("/api/v1/incidents", headers=tokens["sun"]).json
    [incident] = listed["items"]
    assert incident["case_id"] == first["id"] and incident["kind"] == "service_fault"
    assert "KeyError" in incident["message"] and incident["status"] == "open"
    shown = client.get(f"/api/v1/cases/{first['id']}", headers=tokens["wang"]).json
    assert shown["open_incidents"] == 1 and shown["incidents"][0]["id"] == incident["id"]
    assert shown["incidents"][0]["details"] is None and "Traceback" in incident["details"]  # for managers only
    marks = svg_marks(client.get(f"/api/v1/cases/{first['id']}/diagram.svg", headers=tokens["wang"])
                      .get_data(as_text=True))
    assert marks == {}  # this test diagram has no DI: a placeholder, still an SVG

    CourtStub.reset("crash")
    retried = client.post(f"/api/v1/incidents/{incident['id']}/retry", headers=tokens["chen"],
                          json={"comment": "法院系统已恢复？"})
    assert retried.status_code == 200 and retried.json["incident"]["status"] == "open"
    assert retried.json["incident"]["retries"] == 1
    CourtStub.reset("ok")
    retried = client.post(f"/api/v1/incidents/{incident['id']}/retry", headers=tokens["chen"])  # no body needed
    assert retried.status_code == 200 and retried.json["incident"]["status"] == "resolved"
    assert retried.json["case"]["id"] == first["id"] and engine.get_case(first["id"])["open_incidents"] == 0
    assert_error(client.post(f"/api/v1/incidents/{incident['id']}/retry", headers=tokens["chen"]), 409, "conflict",
                 "已由")

    CourtStub.reset("crash")
    second = start(client, tokens["wang"], "service_errors", {"unit": "330106001001GB00001F00010002"})
    [open_one] = client.get("/api/v1/incidents", headers=tokens["sun"]).json["items"]
    url = f"/api/v1/incidents/{open_one['id']}/resolve"
    assert_error(client.post(url, headers=tokens["sun"], json={"comment": "已处理"}), 422, "invalid", "仍因此事件停止")
    assert_error(client.post(url, headers=tokens["sun"], json={"comment": " "}), 422, "invalid", "comment")
    resolved = client.post(url, headers=tokens["sun"], json={"comment": "已电话核实，未查封",
                                                             "result": {"seized": False}})
    assert resolved.status_code == 200 and resolved.json["incident"]["resolved_by"] == "sun"
    assert resolved.json["incident"]["comment"] == "已电话核实，未查封"
    assert engine.get_case(second["id"])["open_incidents"] == 0
    everything = client.get("/api/v1/incidents?status=all", headers=tokens["sun"]).json["items"]
    assert [i["status"] for i in everything] == ["resolved", "resolved"]
    assert client.get(f"/api/v1/incidents?status=resolved&case_id={second['id']}&limit=1",
                      headers=tokens["sun"]).json["items"][0]["id"] == open_one["id"]
    assert_error(client.get("/api/v1/incidents?status=closed", headers=tokens["sun"]), 422, "invalid", "status")
    assert_error(client.post("/api/v1/incidents/999/resolve", headers=tokens["sun"], json={"comment": "x"}), 404,
                 "not_found")


# ---------------------------------------------------------------------------------- the task list

def test_the_task_list_pages_and_searches(client: FlaskClient, tokens: dict, engine: Engine) -> None:
    deploy_general(engine)
    cases = [start(client, tokens["wang"]) for _ in range(3)]
    first = client.get("/api/v1/tasks?limit=2", headers=tokens["wang"]).json
    assert [t["case_id"] for t in first["items"]] == [cases[0]["id"], cases[1]["id"]] and first["next_offset"] == 2
    rest = client.get("/api/v1/tasks?limit=2&offset=2", headers=tokens["wang"]).json
    assert [t["case_id"] for t in rest["items"]] == [cases[2]["id"]] and rest["next_offset"] is None
    found = client.get(f"/api/v1/tasks?q={cases[1]['case_number']}", headers=tokens["wang"]).json["items"]
    assert [t["case_id"] for t in found] == [cases[1]["id"]]
    assert client.get("/api/v1/tasks?mine=true", headers=tokens["wang"]).json["items"] == []
    client.post(f"/api/v1/tasks/{found[0]['id']}/claim", headers=tokens["wang"])
    mine = client.get("/api/v1/tasks?mine=1", headers=tokens["wang"]).json["items"]
    assert [t["id"] for t in mine] == [found[0]["id"]]
    by_role = client.get("/api/v1/tasks?role=window_clerk", headers=tokens["wang"]).json["items"]
    assert len(by_role) == 3
    # an admin without the window clerk's role cannot claim it
    assert_error(client.post(f"/api/v1/tasks/{found[0]['id']}/claim", headers=tokens["sun"]), 403, "forbidden")


# ---------------------------------------------------------------------------------- OpenAPI

def test_the_openapi_document_is_valid_and_lists_every_route(app: Flask, client: FlaskClient) -> None:
    r = client.get("/api/v1/openapi.json")  # no login needed: it holds no data
    assert r.status_code == 200 and r.mimetype == "application/json"
    doc = r.json
    validate_openapi(doc)
    assert doc["openapi"].startswith("3.1") and doc["servers"] == [{"url": "/api/v1"}]
    assert doc["components"]["securitySchemes"]["bearer"] == {**doc["components"]["securitySchemes"]["bearer"],
                                                              "type": "http", "scheme": "bearer"}
    assert doc["security"] == [{"bearer": []}]

    registered = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
            registered |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == registered
    assert len(registered) >= 15

    schemas = doc["components"]["schemas"]
    assert {"StartCase", "CompleteTask", "SendMessage", "ResolveIncident", "Case", "Task", "Error"} <= set(schemas)
    assert schemas["StartCase"]["required"] == ["process_id"]
    assert schemas["StartCase"]["additionalProperties"] is False
    assert schemas["Task"]["properties"]["created_at"]["format"] == "date-time"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            responses = op["responses"]
            assert any(code.startswith("2") for code in responses), (path, method)
            if path != "/openapi.json":
                assert "401" in responses, (path, method)
                assert responses["401"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"}
            if "requestBody" in op:
                assert {"413", "415"} <= set(responses), (path, method)
    complete = doc["paths"]["/tasks/{task_id}/complete"]["post"]
    assert {"200", "403", "409", "422"} <= set(complete["responses"])
    assert complete["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CompleteTask"}
    assert [p["name"] for p in complete["parameters"]] == ["task_id"]
    params = {p["name"]: p for p in doc["paths"]["/tasks"]["get"]["parameters"]}
    assert set(params) == {"role", "mine", "q", "limit", "offset"} and params["limit"]["schema"]["maximum"] == 200
    assert doc["paths"]["/deployments"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"][
        "required"] == ["files"]
    assert "image/svg+xml" in doc["paths"]["/cases/{case_id}/diagram.svg"]["get"]["responses"]["200"]["content"]
    assert "岗位" in doc["paths"]["/deployments"]["post"]["description"]
