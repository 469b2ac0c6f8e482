"""Window work on the standard processes through the pages (issue #5): starting a case from its
start form, the acceptance task with the materials checklist and the register beside it, drafts,
and finding a case by any party's ID number or name (首问负责). Every test runs on SQLite and
PostgreSQL, with the sandbox departments and the seeded register (tests/test_processes.py)."""
from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from adapters.sandbox_seed import SeedData
from engine import Actor, Engine
from tests import web
from tests.conftest import open_task
from tests.test_processes import FIRST_TIME, office, start_transfer  # noqa: F401 — the office fixture
from tests.web import page, token_of
from webapp import create_app
from webapp.accounts import AccountPolicy, Accounts

FAST = AccountPolicy(time_cost=1, memory_cost=8 * 1024, parallelism=1)
PASSWORD = "窗口-secret-2026"
PEOPLE = {"wang": ("王敏", ["window_clerk"]), "li": ("李静", ["reviewer"]), "zhao": ("赵磊", ["registrar"])}


@pytest.fixture
def app(office: tuple[Engine, SeedData]) -> Flask:  # noqa: F811
    engine, _data = office
    app = create_app({"TESTING": True, "ENGINE": engine, "ACCOUNT_POLICY": FAST})
    accounts = Accounts(engine.db, engine.clock, FAST)
    for login, (name, roles) in PEOPLE.items():
        accounts.create_user(login, name, PASSWORD, roles)
    return app


def log_in(app: Flask, login: str) -> FlaskClient:
    return web.log_in(app, login, PASSWORD)


def test_a_case_is_found_by_any_partys_id_number_name_or_unit(app: Flask, office: Any) -> None:  # noqa: F811
    engine, data = office
    case, contract = start_transfer(engine, data, FIRST_TIME)
    summary = engine.get_case(case.id)["summary"]
    buyer, seller = contract.buyers[0], contract.sellers[0]
    assert summary["applicant"] == buyer.name and summary["unit_number"] == contract.unit_number
    assert {buyer.id_number, seller.id_number} <= set(summary["id_numbers"])
    other, _ = start_transfer(engine, data, "CL3301-2026-001202")
    for text in (buyer.id_number.lower(), seller.id_number, contract.unit_number, buyer.name, case.case_number):
        assert [c["id"] for c in engine.find_cases(text)] == [case.id], text
    assert {c["id"] for c in engine.find_cases("3301")} >= {case.id, other.id}  # the beginning of unit numbers
    assert engine.find_cases("%") == [] and engine.find_cases("_") == [] and engine.find_cases("  ") == []
    zhao = log_in(app, "zhao")  # a registrar with nothing to do on the case finds it (首问负责)
    r = zhao.get("/cases/", query_string={"q": seller.id_number})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/cases/{case.id}")
    # the window clerk's list narrowed to one applicant's ID number
    wang = log_in(app, "wang")
    html = page(wang.get("/tasks/", query_string={"q": buyer.id_number}))
    assert re.findall(r'data-task="(\d+)"', html) == [str(open_task(engine, case.id, "accept")["id"])]
    # a search that is an SQL injection attempt is just text that finds nothing
    html = page(zhao.get("/cases/", query_string={"q": "' OR 1=1 --"}))
    assert "没有找到" in html


def test_the_acceptance_page_shows_the_checklist_and_the_register(app: Flask, office: Any) -> None:  # noqa: F811
    engine, data = office
    case, contract = start_transfer(engine, data, FIRST_TIME)
    accept = open_task(engine, case.id, "accept")
    html = page(log_in(app, "wang").get(f"/tasks/{accept['id']}"))
    materials = re.search(r'<ul id="materials">(.*?)</ul>', html, re.S).group(1)
    assert "不动产登记申请书" in materials and "不动产权属证书" in materials
    assert "部门共享" in materials  # identity and the contract come from other departments
    entries = re.search(r'<ul id="register-entries">(.*?)</ul>', html, re.S).group(1)
    seller_names = "、".join(p.name for p in contract.sellers)
    assert "所有权" in entries or "国有建设用地使用权" in entries
    assert seller_names in entries
    assert contract.unit_number in html


def test_a_draft_keeps_the_clerks_input_until_the_task_is_done(app: Flask, office: Any) -> None:  # noqa: F811
    engine, data = office
    case, _contract = start_transfer(engine, data, FIRST_TIME)
    accept = open_task(engine, case.id, "accept")
    wang = log_in(app, "wang")
    form_page = page(wang.get(f"/tasks/{accept['id']}"))
    token = token_of(form_page)
    r = wang.post(f"/tasks/{accept['id']}/draft", data={"csrf_token": token, "delivery_method": "mail",
                                                         "delivery_address": "杭州市拱墅区草稿路7号"})
    assert r.status_code == 302
    again = page(wang.get(f"/tasks/{accept['id']}"))
    assert 'id="draft-note"' in again and "王敏" not in again.split('id="draft-note"')[0][-50:]
    assert "杭州市拱墅区草稿路7号" in again
    assert [t["bpmn_id"] for t in engine.case_tasks(case.id)] == ["accept"]  # nothing completed
    # another role cannot save a draft of the window's task
    li = log_in(app, "li")
    assert li.post(f"/tasks/{accept['id']}/draft", data={"csrf_token": token_of(page(li.get("/tasks/")))}
                   ).status_code == 403


def test_only_window_supervisor_and_admin_start_cases(app: Flask, office: Any) -> None:  # noqa: F811
    li = log_in(app, "li")
    assert li.get("/cases/new").status_code == 403
    r = li.post("/cases/new/secondhand_transfer", data={"csrf_token": token_of(page(li.get("/tasks/")))})
    assert r.status_code == 403
    assert "受理立案" not in page(li.get("/tasks/")).split("</nav>")[0]
    wang = log_in(app, "wang")
    html = page(wang.get("/cases/new"))
    kinds = re.findall(r'data-process="([^"]+)"', html)
    assert "secondhand_transfer" in kinds and "mortgage" in kinds
    assert "issue_and_archive" not in kinds  # only ever called from the other processes
    assert wang.get("/cases/new?process=no_such_process").status_code == 200  # back to the choice
    assert wang.post("/cases/new/no_such_process", data={"csrf_token": token_of(html)}).status_code == 404


def test_the_window_starts_a_transfer_from_its_form_and_accepts_it_on_the_page(app: Flask, office: Any) -> None:  # noqa: F811
    engine, _data = office
    wang = log_in(app, "wang")
    html = page(wang.get("/cases/new", query_string={"process": "secondhand_transfer"}))
    assert 'id="field-contract_no"' in html and 'id="field-seller_acquired_on"' in html
    token = token_of(html)
    form = {"csrf_token": token, "seller_acquired_on": "2016-09-01", "seller_original_price": "2,980,000",
            "seller_only_home": "false", "consents": ""}
    # no contract number and a price with commas: refused beside each field, no case started
    r = wang.post("/cases/new/secondhand_transfer", data=form)
    assert r.status_code == 422
    html = page(r)
    assert re.search(r'data-field="contract_no">[^<]*网签合同编号[^<]*必填', html)
    assert re.search(r'data-field="seller_original_price">[^<]*格式不对', html)
    assert 'value="2016-09-01"' in html  # what was typed stays
    assert engine.find_cases("2016") == [] and engine.task_list(Actor.of("x", "window_clerk")) == []
    r = wang.post("/cases/new/secondhand_transfer", data={**form, "contract_no": FIRST_TIME,
                                                          "seller_original_price": "2980000.00"})
    assert r.status_code == 302 and "/tasks/" in r.headers["Location"]  # straight on to acceptance
    accept_page = page(wang.get(r.headers["Location"]))
    assert "受理" in accept_page and 'name="provided" value="title_certificate"' in accept_page
    task_id = int(r.headers["Location"].rstrip("/").split("/")[-1])
    [case] = engine.find_cases("周子涵")  # the buyer, from the contract housing shared
    r = wang.post(f"/tasks/{task_id}", data={
        "csrf_token": token_of(accept_page), "lock_version": re.search(
            r'name="lock_version" value="(\d+)"', accept_page).group(1),
        "provided": ["application_form", "title_certificate"], "delivery_method": "pickup",
        "delivery_address": "", "pickup_office": "西湖区"})
    assert r.status_code == 302, page(r)
    data = engine.case_data(case["id"])
    assert data["acceptance"]["status"] == "accepted" and data["contract_no"] == FIRST_TIME
    assert [t["bpmn_id"] for t in engine.case_tasks(case["id"])] == ["review"]


def test_the_api_refuses_start_data_that_fails_the_start_form(app: Flask, office: Any) -> None:  # noqa: F811
    engine, _data = office
    accounts = Accounts(engine.db, engine.clock, FAST)
    token = accounts.issue_token("wang", "counter").token
    r = app.test_client().post("/api/v1/cases", headers={"Authorization": f"Bearer {token}"},
                               json={"process_id": "secondhand_transfer", "data": {"contract_no": FIRST_TIME}})
    assert r.status_code == 422
    body = r.get_json()
    assert body["error"] == "invalid" and "卖方取得房屋日期" in body["message"]
    assert {f["field"] for f in body["fields"]} >= {"data.seller_acquired_on", "data.seller_original_price"}
    assert engine.find_cases("周子涵") == []
