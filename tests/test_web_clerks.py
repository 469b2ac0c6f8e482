"""Clerks (issue #5): the task list, claim and release, the case page and case search, the task
page. Every test runs on SQLite and PostgreSQL (`db`), with general_registration deployed and
users created through webapp.accounts; pages are used as a browser would (CSRF from the forms)."""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert

from engine import Actor, Engine
from engine.runtime import COUNT_CAP
from storage.models import HumanTask
from tests import web
from tests.conftest import open_task
from tests.test_api import svg_marks
from tests.web import page, token_of
from webapp import create_app
from webapp.accounts import AccountPolicy, Accounts
from webapp.views.tasks import findings_of

FAST = AccountPolicy(time_cost=1, memory_cost=8 * 1024, parallelism=1)
PASSWORD = "柜台-secret-2026"
GENERAL = Path(__file__).resolve().parent.parent / "processes" / "general_registration.bpmn"
UNIT = "330106001001GB00001F00010203"
PEOPLE = {"wang": ("王敏", ["window_clerk"]), "zhang": ("张丽", ["window_clerk"]), "li": ("李静", ["reviewer"]),
          "zhao": ("赵磊", ["registrar"])}
WANG = Actor.of("wang", "window_clerk")


@pytest.fixture
def app(engine: Engine) -> Flask:
    app = create_app({"TESTING": True, "ENGINE": engine, "ACCOUNT_POLICY": FAST})
    accounts = Accounts(engine.db, engine.clock, FAST)
    for login, (name, roles) in PEOPLE.items():
        accounts.create_user(login, name, PASSWORD, roles)
    engine.deploy([(GENERAL.name, GENERAL.read_bytes())], "designer")
    return app


def start(engine: Engine, applicant: str = "张三", unit: str = UNIT) -> int:
    ref = engine.start_case("general_registration", {"promised_workdays": 5}, WANG,
                            summary={"applicant": applicant, "unit_number": unit})
    return ref.id




def lock_of(html: str) -> str:
    found = re.search(r'name="lock_version" value="(\d+)"', html)
    assert found, "no lock_version in the form"
    return found.group(1)


def log_in(app: Flask, login: str) -> FlaskClient:
    return web.log_in(app, login, PASSWORD)


def task_ids(html: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for task_id, bpmn_id in re.findall(r'data-task="(\d+)" data-bpmn="([^"]+)"', html):
        out.setdefault(bpmn_id, []).append(int(task_id))
    return out


def test_the_list_shows_my_roles_tasks_with_case_details(app: Flask, engine: Engine) -> None:
    case_id = start(engine)
    case = engine.get_case(case_id)
    wang = log_in(app, "wang")
    r = wang.get("/tasks/")
    html = page(r)
    assert r.status_code == 200
    accept = open_task(engine, case_id, "accept")
    assert task_ids(html) == {"accept": [accept["id"]]}
    assert case["case_number"] in html and "张三" in html and UNIT in html
    assert "一般登记（受理—审核—登簿）" in html  # the business kind
    assert 'data-role="window_clerk">1<' in html
    # the reviewer sees neither the window task nor, once accepted, anything but the review
    li = log_in(app, "li")
    assert task_ids(page(li.get("/tasks/"))) == {}
    engine.complete_task(accept["id"], {}, WANG)
    assert set(task_ids(page(li.get("/tasks/")))) == {"review"}
    assert task_ids(page(wang.get("/tasks/"))) == {}
    # search by case number; another number finds nothing
    assert set(task_ids(page(li.get("/tasks/", query_string={"q": case["case_number"]})))) == {"review"}
    assert task_ids(page(li.get("/tasks/", query_string={"q": "no-such"}))) == {}
    assert app.test_client().get("/tasks/").status_code == 302  # anonymous: to the login page


def test_claim_and_release(app: Flask, engine: Engine) -> None:
    case_id = start(engine)
    task_id = open_task(engine, case_id, "accept")["id"]
    wang, zhang = log_in(app, "wang"), log_in(app, "zhang")
    token = token_of(page(wang.get("/tasks/")))
    assert wang.post(f"/tasks/{task_id}/claim", data={}).status_code == 400  # no CSRF token
    r = wang.post(f"/tasks/{task_id}/claim", data={"csrf_token": token, "next": "/tasks/?mine=1"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/tasks/?mine=1")
    assert open_task(engine, case_id, "accept")["assignee"] == "wang"
    assert task_ids(page(wang.get("/tasks/?mine=1"))) == {"accept": [task_id]}
    # a colleague no longer sees it unclaimed and cannot take it
    assert task_ids(page(zhang.get("/tasks/"))) == {}
    ztoken = token_of(page(zhang.get("/tasks/")))
    html = page(zhang.post(f"/tasks/{task_id}/claim", data={"csrf_token": ztoken}, follow_redirects=True))
    assert "未能认领" in html and "wang" in html
    html = page(wang.post(f"/tasks/{task_id}/release", data={"csrf_token": token}, follow_redirects=True))
    assert "已释放任务" in html
    assert open_task(engine, case_id, "accept")["assignee"] is None
    assert task_ids(page(zhang.get("/tasks/"))) == {"accept": [task_id]}


def test_the_case_page_shows_the_diagram_with_marks_and_the_history(app: Flask, engine: Engine) -> None:
    case_id = start(engine)
    engine.complete_task(open_task(engine, case_id, "accept")["id"], {}, WANG)
    li = log_in(app, "li")  # any clerk may look at any case
    r = li.get(f"/cases/{case_id}")
    html = page(r)
    assert r.status_code == 200
    svg = re.search(r'<div class="diagram diagram-fit" id="diagram">(.*?)</div>', html, re.S).group(1)
    assert svg.lstrip().startswith("<svg")
    marks = svg_marks(svg)
    assert marks.get("accept") == "done" and marks.get("review") == "active", marks
    history = re.search(r'<table id="history">(.*?)</table>', html, re.S).group(1)
    assert "受理立案" in history and "办理完成" in history and "wang" in history and "受理" in history
    assert "审核" in re.search(r'<table id="open-tasks">(.*?)</table>', html, re.S).group(1)
    assert "办理中" in html and "张三" in html
    assert li.get("/cases/99999").status_code == 404


def test_search_by_case_number_and_unit_number(app: Flask, engine: Engine) -> None:
    case_id = start(engine)
    other = start(engine, applicant="李四", unit="330106001001GB00002F00020304")
    number = engine.get_case(case_id)["case_number"]
    zhao = log_in(app, "zhao")  # a registrar with no task on the case finds it (首问负责)
    r = zhao.get("/cases/", query_string={"q": number})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/cases/{case_id}")
    r = zhao.get("/cases/", query_string={"q": UNIT})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/cases/{case_id}")
    # part of a unit number shared by both: a list of both
    html = page(zhao.get("/cases/", query_string={"q": "330106001001GB"}))
    assert f"/cases/{case_id}" in html and f"/cases/{other}" in html
    assert "没有找到" in page(zhao.get("/cases/", query_string={"q": "999999999"}))
    assert zhao.get("/cases/").status_code == 200


def test_completing_a_task_from_its_page_moves_the_case_on(app: Flask, engine: Engine) -> None:
    case_id = start(engine)
    accept = open_task(engine, case_id, "accept")["id"]
    wang = log_in(app, "wang")
    html = page(wang.get(f"/tasks/{accept}"))
    assert 'name="_json"' in html and "张三" in html
    bad = wang.post(f"/tasks/{accept}", data={"csrf_token": token_of(html), "lock_version": lock_of(html),
                                                "_json": "[1, 2]"})
    assert bad.status_code == 422 and "应为 JSON 对象" in page(bad) and "[1, 2]" in page(bad)
    r = wang.post(f"/tasks/{accept}", data={"csrf_token": token_of(html), "lock_version": lock_of(html),
                                             "_json": '{"remark": "材料齐全"}'})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/cases/{case_id}")
    review = open_task(engine, case_id, "review")["id"]
    li = log_in(app, "li")
    html = page(li.get(f"/tasks/{review}"))
    assert 'name="approved"' in html and 'name="opinion"' in html and "规则核查结果" in html
    missing = li.post(f"/tasks/{review}", data={"csrf_token": token_of(html), "lock_version": lock_of(html),
                                                 "opinion": "同意"})
    assert missing.status_code == 422 and "必填" in page(missing) and "同意" in page(missing)
    r = li.post(f"/tasks/{review}", data={"csrf_token": token_of(html), "lock_version": lock_of(html),
                                           "approved": "true", "opinion": "同意登记"})
    assert r.status_code == 302, page(r)
    assert [t["bpmn_id"] for t in engine.case_tasks(case_id)] == ["register"]
    assert engine.case_data(case_id)["opinion"] == "同意登记"


def test_a_stale_form_says_so_and_keeps_the_input(app: Flask, engine: Engine) -> None:
    case_id = start(engine)
    engine.complete_task(open_task(engine, case_id, "accept")["id"], {}, WANG)
    review = open_task(engine, case_id, "review")["id"]
    li = log_in(app, "li")
    html = page(li.get(f"/tasks/{review}"))
    engine.complete_task(review, {"approved": True}, Actor.of("supervisor_chen", "reviewer"))
    r = li.post(f"/tasks/{review}", data={"csrf_token": token_of(html), "lock_version": lock_of(html),
                                           "approved": "false", "opinion": "材料不全，不予登记"})
    assert r.status_code == 409
    answer = page(r)
    assert 'id="form-error"' in answer and "没有提交" in answer
    assert "材料不全，不予登记" in answer and 'value="false" checked' in answer
    assert [t["bpmn_id"] for t in engine.case_tasks(case_id)] == ["register"]


def test_a_reviewer_cannot_complete_a_window_task(app: Flask, engine: Engine) -> None:
    case_id = start(engine)
    accept = open_task(engine, case_id, "accept")["id"]
    li = log_in(app, "li")
    token = token_of(page(li.get("/tasks/")))
    r = li.post(f"/tasks/{accept}", data={"csrf_token": token, "lock_version": "0", "_json": "{}"})
    assert r.status_code == 403 and "无权" in page(r)
    assert li.get(f"/tasks/{accept}").status_code == 403
    assert [t["bpmn_id"] for t in engine.case_tasks(case_id)] == ["accept"]
    assert li.get("/tasks/99999").status_code == 404


def test_rule_findings_worst_first() -> None:
    findings = findings_of({"findings": {"findings": [{"severity": "notice", "message": "n"},
                                                      {"severity": "block", "message": "b"}]}})
    assert [f["message"] for f in findings] == ["b", "n"]


def test_the_diagram_opens_at_full_size_for_any_clerk(app: Flask, engine: Engine) -> None:
    case_id = start(engine)
    zhao = log_in(app, "zhao")
    html = page(zhao.get(f"/cases/{case_id}"))
    assert f'href="/cases/{case_id}/diagram.svg"' in html
    r = zhao.get(f"/cases/{case_id}/diagram.svg")
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    assert svg_marks(r.get_data(as_text=True))["accept"] == "active"
    assert zhao.get("/cases/99999/diagram.svg").status_code == 404
    assert app.test_client().get(f"/cases/{case_id}/diagram.svg").status_code == 302  # log in first


def test_a_post_with_more_than_a_thousand_waiting_tasks_shows_1000_plus(app: Flask, engine: Engine) -> None:
    """Counts stop at a thousand: a clerk sees 1000+ (the database does not walk the rest on
    every page view), and the list itself still starts with the oldest."""
    case_id = start(engine)
    accept = open_task(engine, case_id, "accept")
    with engine.db.write() as s:
        s.execute(insert(HumanTask), [
            {"case_id": case_id, "task_guid": f"00000000-0000-4000-8000-{i:012d}", "bpmn_id": "accept",
             "name": "受理", "role": "window_clerk", "form": None, "state": "open",
             "created_at": accept["created_at"] + timedelta(seconds=i + 1)} for i in range(COUNT_CAP)])
    html = page(log_in(app, "wang").get("/tasks/"))
    assert re.search(r'data-role="window_clerk">1000\+<', html), html[:2000]
    assert task_ids(html)["accept"][0] == accept["id"]
    engine.claim_task(accept["id"], WANG)
    html = page(log_in(app, "zhang").get("/tasks/"))
    assert re.search(r'data-role="window_clerk">1000\+<', html)  # exactly 1000 left: still capped
