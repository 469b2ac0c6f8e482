"""Bad input to the JSON API and to the web forms (issue #6, "Bad input").

For every POST endpoint under /api/v1 (read from `app.url_map`: a new one fails the test until it
is described in BODIES): a wrong content type, malformed JSON, JSON of the wrong shape (an array,
a string or null instead of an object; wrong field types; missing and extra fields), JSON no
database takes (NUL characters, lone surrogates, numbers beyond a float or 64 bits, nesting past
the parser's depth) and a body over the configured limit each get a 4xx with a JSON body
`{"error": code, "message": …}` naming the problem, and nothing is stored: the rows of cases,
human_task, case_event (and the other engine tables) are counted before and after, and the
task's holder and the incident's state are unchanged.

The web forms: an oversized POST is a 413 page; a task form with a value of the wrong type is a
422 page with the message beside the field, and nothing stored.

Property-based: schemathesis reads /api/v1/openapi.json and sends generated valid and invalid
requests (25 per operation, path ids pinned to real objects) asserting no 5xx and the error shape;
hypothesis sends arbitrary JSON to every JSON endpoint. These two run on SQLite only.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from domain.roles import ROLES
from engine import Engine
from storage.db import Database
from tests.conftest import open_task
from tests.test_api import FORM, FORM_PROCESS
from tests.test_authorization import FAST, PASSWORD, World, assignees, build_world, counts
from tests.web import log_in, page, token_of
from webapp import create_app
from webapp.accounts import Accounts
from webapp.config import settings as app_settings

MiB = 1024 * 1024
GENERAL = Path(__file__).resolve().parent.parent / "processes" / "general_registration.bpmn"


@dataclass
class Body:
    """How one JSON endpoint is called: its path, a good body, and its ways of being wrong."""

    path: Callable[[World], str]
    good: dict[str, Any]
    required: bool = True  # False: no body at all is fine (claim, release, retry)
    wrong_types: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # body, the field named
    missing: tuple[dict[str, Any], str] | None = None  # a body without a required field, the field


BODIES: dict[str, Body] = {
    "api.start_case": Body(
        lambda w: "/api/v1/cases", {"process_id": "general_registration", "data": {"promised_workdays": 5}},
        wrong_types=[({"process_id": 5}, "process_id"), ({"process_id": ["general_registration"]}, "process_id"),
                     ({"process_id": "general_registration", "data": "x=1"}, "data"),
                     ({"process_id": "general_registration", "summary": ["张三"]}, "summary")],
        missing=({"data": {}}, "process_id")),
    "api.send_message": Body(
        lambda w: f"/api/v1/cases/{w.case_id}/messages", {"name": "tax_paid", "payload": {"amount": 1}},
        wrong_types=[({"name": 1}, "name"), ({"name": "tax_paid", "payload": [1]}, "payload"),
                     ({"name": "tax_paid", "key": 7}, "key")],
        missing=({"payload": {}}, "name")),
    "api.claim_task": Body(lambda w: f"/api/v1/tasks/{w.task_id}/claim", {}, required=False),
    "api.release_task": Body(lambda w: f"/api/v1/tasks/{w.held_id}/release", {}, required=False),
    "api.complete_task": Body(
        lambda w: f"/api/v1/tasks/{w.task_id}/complete", {"data": {}, "expected_version": 0},
        wrong_types=[({"data": []}, "data"), ({"data": {}, "expected_version": "0"}, "expected_version"),
                     ({"data": {}, "expected_version": 1.5}, "expected_version"),
                     ({"data": {}, "expected_version": True}, "expected_version"),
                     ({"data": {}, "expected_version": 2**70}, "expected_version")]),
    "api.retry_incident": Body(lambda w: f"/api/v1/incidents/{w.incident_id}/retry", {"comment": "再试"},
                               required=False, wrong_types=[({"comment": 5}, "comment")]),
    "api.resolve_incident": Body(
        lambda w: f"/api/v1/incidents/{w.incident_id}/resolve", {"comment": "已电话核实", "result": {"seized": False}},
        wrong_types=[({"comment": 5}, "comment"), ({"comment": "x", "result": [False]}, "result")],
        missing=({"result": {"seized": False}}, "comment")),
}
MULTIPART = {"api.deploy"}  # its own test below


@pytest.fixture
def app(engine: Engine) -> Flask:
    """The configured limits, not the tests' own: 1 MiB per JSON body, 16 MiB per deployment."""
    return create_app({"TESTING": True, "ENGINE": engine, "ACCOUNT_POLICY": FAST})


@pytest.fixture
def boss(app: Flask) -> dict[str, str]:
    """A bearer header for a user holding every role, so only the body decides the answer."""
    accounts: Accounts = app.extensions["onewindow.accounts"]
    accounts.create_user("boss", "全能", PASSWORD, list(ROLES))
    return {"Authorization": f"Bearer {accounts.issue_token('boss', '测试').token}"}


@pytest.fixture
def world(engine: Engine) -> World:
    return build_world(engine)


def state(engine: Engine, db: Database, world: World) -> tuple[Any, ...]:
    incidents = [(i["id"], i["status"], i["retries"]) for i in engine.incidents(status=None)]
    return counts(db), assignees(db, world), incidents, engine.get_case(world.case_id)["lock_version"]


def refused(r: TestResponse, status: int, code: str, *fragments: str) -> dict[str, Any]:
    where = (status, code, r.status_code, r.get_data(as_text=True)[:300])
    assert r.status_code == status and r.is_json, where
    body = r.json
    assert body["error"] == code and isinstance(body["message"], str), where
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), where  # a sentence for people
    for fragment in fragments:
        assert fragment in body["message"], (fragment, body["message"])
    return body


def post_raw(client: FlaskClient, path: str, headers: dict[str, str], data: bytes | str,
             content_type: str | None = "application/json") -> TestResponse:
    return client.post(path, headers={**headers, **({"Content-Type": content_type} if content_type else {})},
                       data=data)


def nested(depth: int) -> str:
    return '{"data": ' + '{"a": ' * depth + "1" + "}" * depth + "}"


# ------------------------------------------------------------------------------------ JSON bodies


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_every_api_post_is_described_here(app: Flask) -> None:
    posts = {r.endpoint for r in app.url_map.iter_rules() if "POST" in r.methods and r.rule.startswith("/api/")}
    assert posts == BODIES.keys() | MULTIPART, "describe the new endpoint's body in BODIES"


def test_bad_json_bodies_are_refused_with_a_reason_and_store_nothing(app: Flask, engine: Engine, db: Database,
                                                                     boss: dict, world: World) -> None:
    for endpoint, spec in sorted(BODIES.items()):
        try:
            refuses_bad_bodies(app, engine, db, boss, world, spec)
        except AssertionError as err:
            raise AssertionError(f"{endpoint}: {err}") from None


def refuses_bad_bodies(app: Flask, engine: Engine, db: Database, boss: dict, world: World, spec: Body) -> None:
    client = app.test_client()
    path = spec.path(world)
    before = state(engine, db, world)
    good = json.dumps(spec.good, ensure_ascii=False)
    limit = app.config["API_MAX_BODY_BYTES"]
    assert limit == 1 * MiB

    # the content type: JSON only
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                         "application/xml", None):
        refused(post_raw(client, path, boss, good if spec.good else "{}", content_type), 415,
                "unsupported_media_type", "application/json")
    # not JSON at all
    for text, fragment in (('{"a": ', "第 1 行"), ('{"a": 1,}', "字段名应以双引号括起"), ("{'a': 1}", "字段名"),
                           ('{"a": NaN}', "NaN"), ('{"a": -Infinity}', "Infinity"), ("{} {}", "多余内容"),
                           ('{"a": 1' + "9" * 5000 + "}", "位数太多"), ("[" * 100_000, "嵌套太深"),
                           ('{"a": "\t"}', "控制字符")):
        refused(post_raw(client, path, boss, text), 400, "malformed_json", fragment)
    refused(post_raw(client, path, boss, b'{"a": "\xff\xfe"}'), 400, "malformed_json", "UTF-8")
    refused(post_raw(client, path, boss, "\ufeff" + good), 400, "malformed_json")  # a byte-order mark
    if spec.required:
        refused(post_raw(client, path, boss, ""), 400, "empty_body")
        refused(post_raw(client, path, boss, "   \n"), 400, "empty_body")
    # JSON, but not an object
    for value in ([], [spec.good], "text", 1, None, True):
        refused(post_raw(client, path, boss, json.dumps(value)), 422, "invalid", "应为 JSON 对象")
    # an object of the wrong shape
    for body, name in spec.wrong_types:
        found = refused(client.post(path, headers=boss, json=body), 422, "invalid", name)
        assert name in [f["field"] for f in found["fields"]], found
    if spec.missing is not None:
        body, name = spec.missing
        found = refused(client.post(path, headers=boss, json=body), 422, "invalid", f"{name}：必填")
        assert found["fields"] == [{"field": name, "message": "必填"}]
    for extra in ({"actor": "boss"}, {"user_id": 1}, {"": 1}):
        found = refused(client.post(path, headers=boss, json={**spec.good, **extra}), 422, "invalid", "不认识的字段")
        assert list(extra)[0] in [f["field"] for f in found["fields"]]
    # what no database takes: NUL, lone surrogates, numbers beyond a float, nesting past 64 levels
    for text, fragment in (('{"x\\u0000": 1}', "NUL"), ('{"note": "a\\u0000b"}', "NUL"),
                           ('{"note": "\\ud800"}', "代理字符"), ('{"note": [1e999]}', "超出范围"),
                           (nested(70), "嵌套太深")):
        refused(post_raw(client, path, boss, text), 422, "invalid", fragment)
    # too large: by its length, and cut off when it has none (chunked)
    big = json.dumps({**spec.good, "padding": "字" * (limit // 3 + 10)}, ensure_ascii=False)
    refused(post_raw(client, path, boss, big), 413, "too_large", "1 MB")
    chunked = client.post(path, headers={**boss, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                          input_stream=BytesIO(big.encode()), environ_overrides={"wsgi.input_terminated": True})
    refused(chunked, 413, "too_large")
    assert state(engine, db, world) == before


def test_the_values_inside_data_are_checked_before_anything_is_stored(app: Flask, engine: Engine, db: Database,
                                                                      boss: dict, world: World) -> None:
    client = app.test_client()
    before = state(engine, db, world)
    cases = "/api/v1/cases"
    start = {"process_id": "general_registration"}
    for body, field_name in (({**start, "data": {"applicant": "张\x00三"}}, "data.applicant"),
                             ({**start, "summary": {"applicant": "张三\x00"}}, "summary.applicant"),
                             ({**start, "process_id": "general\x00registration"}, "process_id"),
                             ({**start, "data": {"owners": [{"name": "a", "id": "\x00"}]}}, "data.owners.0.id")):
        found = refused(client.post(cases, headers=boss, json=body), 422, "invalid", "NUL")
        assert [f["field"] for f in found["fields"]] == [field_name]
    found = refused(post_raw(client, cases, boss, '{"process_id": "general_registration", "data": {"\\ud83d": 1}}'),
                    422, "invalid", "代理字符")
    assert found["fields"][0]["field"] == "data.\\ud83d"  # named, and the answer is still valid UTF-8
    refused(client.post(cases, headers=boss, json={**start, "data": {"_secret": 1}}), 422, "invalid", "_secret")
    refused(client.post(cases, headers=boss, json={**start, "data": {"x": "y" * 300_000}}), 422, "invalid",
            "262144")
    refused(client.post(cases, headers=boss, json={"process_id": "x" * 201}), 422, "invalid", "最多 200 个字符")
    assert state(engine, db, world) == before


def test_query_parameters_of_the_wrong_kind(app: Flask, engine: Engine, db: Database, boss: dict,
                                            world: World) -> None:
    client = app.test_client()
    before = state(engine, db, world)
    for url, fragment in (("/api/v1/tasks?limit=abc", "limit"), ("/api/v1/tasks?limit=0", "limit"),
                          ("/api/v1/tasks?limit=1.5", "limit"), ("/api/v1/tasks?offset=-1", "offset"),
                          ("/api/v1/tasks?mine=maybe", "mine"), ("/api/v1/tasks?q=" + "x" * 41, "q"),
                          ("/api/v1/tasks?role=janitor", "janitor"), ("/api/v1/incidents?status=closed", "status"),
                          ("/api/v1/incidents?case_id=abc", "case_id"), ("/api/v1/incidents?case_id=0", "case_id"),
                          (f"/api/v1/incidents?case_id={2**64}", "超出范围"),
                          (f"/api/v1/tasks?offset={10**30}", "超出范围")):
        refused(client.get(url, headers=boss), 422, "invalid", fragment)
    refused(client.get("/api/v1/tasks?q=%00", headers=boss), 400, "unusable_input", "NUL")
    for url in (f"/api/v1/cases/{2**63}", f"/api/v1/cases/{10**40}/diagram.svg"):
        refused(client.get(url, headers=boss), 404, "not_found")
    for url in (f"/api/v1/tasks/{2**63}/claim", f"/api/v1/incidents/{10**40}/retry"):
        refused(client.post(url, headers=boss), 404, "not_found")
    refused(client.post(f"/api/v1/tasks/{2**63}/complete", headers=boss, json={}), 404, "not_found")
    assert state(engine, db, world) == before


def test_bad_deployments_are_refused_with_a_reason_and_store_nothing(app: Flask, engine: Engine, db: Database,
                                                                     boss: dict, world: World) -> None:
    client = app.test_client()
    before = state(engine, db, world)
    url = "/api/v1/deployments"
    bpmn_file = GENERAL.read_bytes()

    def upload(**fields: Any) -> TestResponse:
        return client.post(url, headers=boss, data=fields, content_type="multipart/form-data")

    refused(client.post(url, headers=boss, json={"files": ["x.bpmn"]}), 415, "unsupported_media_type",
            "multipart/form-data")
    refused(post_raw(client, url, boss, bpmn_file, "application/xml"), 415, "unsupported_media_type")
    refused(upload(comment="没有文件"), 422, "invalid", "至少上传一个")
    refused(upload(files=[(BytesIO(bpmn_file), "a.bpmn")], actor="boss"), 422, "invalid", "actor")
    refused(upload(files=[(BytesIO(b"MZ"), "setup.exe")]), 422, "invalid", "setup.exe")
    refused(upload(files=[(BytesIO(bpmn_file), "")]), 422, "invalid")
    refused(upload(files=[(BytesIO(bpmn_file), "a.bpmn")], comment="说明\x00"), 422, "invalid", "NUL")
    refused(upload(files=[(BytesIO(bpmn_file), "a.bpmn")], comment="长" * 2001), 422, "invalid", "2000")
    refused(upload(files=[(BytesIO(b"<definitions"), "broken.bpmn")]), 422, "deployment_rejected", "broken.bpmn")
    # a part without a name (was a 500: None and str do not sort)
    boundary = "b0undary"
    nameless = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nnull\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.bpmn\"\r\n"
                f"Content-Type: application/xml\r\n\r\n<x/>\r\n--{boundary}--\r\n")
    refused(post_raw(client, url, boss, nameless, f"multipart/form-data; boundary={boundary}"), 422, "invalid",
            "不认识的字段")
    limit = app.config["API_MAX_UPLOAD_BYTES"]
    assert limit == 16 * MiB
    refused(upload(files=[(BytesIO(b" " * (limit + 1)), "huge.bpmn")]), 413, "too_large", "16 MB")
    assert state(engine, db, world) == before


# ------------------------------------------------------------------------------------ web forms


def test_an_oversized_form_post_is_refused_with_a_page(engine: Engine, db: Database) -> None:
    assert app_settings({"TESTING": True})["MAX_CONTENT_LENGTH"] == 32 * MiB  # uploads of scanned materials
    small = create_app({"TESTING": True, "ENGINE": engine, "ACCOUNT_POLICY": FAST, "MAX_CONTENT_LENGTH": 64 * 1024})
    Accounts(engine.db, engine.clock, FAST).create_user("wang", "王敏", PASSWORD, ["window_clerk"])
    world = build_world(engine)
    before = state(engine, db, world)
    client = log_in(small, "wang", PASSWORD)
    html = page(client.get(f"/tasks/{world.task_id}"))
    r = client.post(f"/tasks/{world.task_id}", data={"csrf_token": token_of(html), "lock_version": "0",
                                                     "_json": json.dumps({"note": "字" * 40_000})})
    assert r.status_code == 413 and "内容太大" in page(r) and r.mimetype == "text/html"
    r = client.post(f"/tasks/{world.task_id}/draft", data={"csrf_token": token_of(html),
                                                           "files": [(BytesIO(b"x" * 70_000), "scan.pdf")]},
                    content_type="multipart/form-data")
    assert r.status_code == 413
    assert state(engine, db, world) == before


def test_a_task_form_value_of_the_wrong_type_is_shown_beside_its_field(engine: Engine, db: Database) -> None:
    app = create_app({"TESTING": True, "ENGINE": engine, "ACCOUNT_POLICY": FAST})
    accounts = Accounts(engine.db, engine.clock, FAST)
    accounts.create_user("wang", "王敏", PASSWORD, ["window_clerk"])
    engine.deploy([("apply.bpmn", FORM_PROCESS), ("apply.schema.json", json.dumps(FORM).encode())], "designer")
    from engine import Actor

    case = engine.start_case("apply_form", {"applicant": "张三"}, Actor.of("wang", "window_clerk"))
    task_id = open_task(engine, case.id, "fill")["id"]
    client = log_in(app, "wang", PASSWORD)
    html = page(client.get(f"/tasks/{task_id}"))
    assert 'name="share"' in html
    before = counts(db), engine.case_data(case.id)
    for value, message in (("五十", "应为数字"), ("1.5", "应为整数"), ("1e400", "应为数字"), ("0", "不能小于 1"),
                           ("101", "不能大于 100")):
        r = client.post(f"/tasks/{task_id}", data={"csrf_token": token_of(html), "lock_version": "0",
                                                   "share": value, "id_number": "11010519491231002X"})
        shown = page(r)
        assert r.status_code == 422, (value, shown[:300])
        beside = shown.split('data-field="share"', 1)
        assert len(beside) == 2 and message in beside[1].split("</div>", 1)[0], (value, message)
        assert f'value="{value}"' in shown  # the clerk's input is kept
        assert (counts(db), engine.case_data(case.id)) == before
    assert open_task(engine, case.id, "fill")["state"] == "open"


# ------------------------------------------------------------------------------------ generated requests

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_arbitrary_json_to_every_endpoint_is_never_a_server_error(app: Flask, engine: Engine, boss: dict,
                                                                  world: World) -> None:
    client = app.test_client()

    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(endpoint=st.sampled_from(sorted(BODIES)), value=JSON_VALUES | st.dictionaries(
        st.sampled_from(["process_id", "data", "summary", "name", "payload", "key", "comment", "result",
                         "expected_version", "x"]), JSON_VALUES, max_size=4))
    def answered(endpoint: str, value: Any) -> None:
        r = client.post(BODIES[endpoint].path(world), headers=boss, json=value)
        assert r.status_code < 500, (endpoint, value, r.get_data(as_text=True)[:300])
        if r.status_code >= 400:
            assert r.is_json and r.json["error"] and r.json["message"], (endpoint, value)

    answered()


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_schemathesis_finds_no_server_error(app: Flask, engine: Engine, boss: dict, world: World) -> None:
    """Generated valid and invalid requests for every operation of /api/v1/openapi.json."""
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    ids = {"case_id": world.case_id, "task_id": world.task_id, "incident_id": world.incident_id}
    failures: list[Any] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:
        pinned = {k: v for k, v in ids.items() if "{" + k + "}" in operation.path} or None
        cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=pinned),
                          operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=pinned))
        fuzz(cases, f"{operation.method.upper()} {operation.path}", boss, failures)
    assert failures == []


def fuzz(cases: st.SearchStrategy[Any], where: str, headers: dict[str, str], failures: list[Any]) -> None:
    """25 generated requests of one operation; a 5xx, or an error that is not the API's JSON, is a failure."""

    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def answered(case: Any) -> None:
        r = case.call(headers=headers)
        if r.status_code >= 500:
            failures.append((where, r.status_code, r.text[:200]))
        elif r.status_code >= 400:
            body = r.json()
            if not (isinstance(body, dict) and body.get("error") and body.get("message")):
                failures.append((where, r.status_code, r.text[:200]))

    answered()
