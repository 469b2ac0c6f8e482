"""Admins and designers (issue #5): deployments, versions, diff and migration, incidents, timers
and the outbox, the supervisor dashboard, the public guide. Every test with `db` runs on SQLite
and PostgreSQL; pages are used as the demo users of `onewindow demo seed` use them (CSRF tokens
taken from the forms)."""
from __future__ import annotations

import io
import re
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from domain import deadlines
from domain.clock import SHANGHAI, FrozenClock
from engine import SYSTEM, Engine, MigrationRefused, NotPermitted
from engine.versions import ProcessStep
from storage.models import Case, CaseEvent, HumanTask, ProcessVersion, TimerJob
from tests import web
from tests.conftest import ADMIN, CLERK, REVIEWER, SUPERVISOR, bpmn, open_task
from tests.operators import CourtStub
from tests.web import page, token_of
from webapp import create_app
from webapp.accounts import AccountPolicy, Accounts
from webapp.demo import DEMO_USERS
from webapp.views.admin import _upload_name, bar_chart
from webapp.views.guide import _step as guide_step

FAST = AccountPolicy(time_cost=1, memory_cost=8 * 1024, parallelism=1)
PASSWORD = "柜台-secret-2026"
DESIGNER = ADMIN  # the engine actor of the migration tests: admin and designer

# ------------------------------------------------------------------------------------------ BPMN


def definitions(*processes: str, extra: str = "") -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"\n'
            '    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"\n'
            '    id="defs" targetNamespace="http://onewindow.example/test">\n'
            + extra + "".join(processes) + "</bpmn:definitions>\n").encode("utf-8")


def permit(version: int) -> bytes:
    """A small permit process. v1: accept → review → approve. v2: review is renamed and `stamp`
    takes the place of `approve`. v3: as v2 plus a step `archive` after `stamp`."""
    review_name = "审核" if version == 1 else "审核（复核）"
    last = ('<bpmn:userTask id="approve" name="批准"/>' if version == 1 else '<bpmn:userTask id="stamp" name="盖章"/>')
    last_id = "approve" if version == 1 else "stamp"
    tail = f'<bpmn:sequenceFlow id="f4" sourceRef="{last_id}" targetRef="end"/>'
    refs = "".join(f"<bpmn:flowNodeRef>{r}</bpmn:flowNodeRef>" for r in ("review", last_id))
    if version >= 3:
        tail = (f'<bpmn:sequenceFlow id="f4" sourceRef="{last_id}" targetRef="archive"/>'
                '<bpmn:userTask id="archive" name="归档"/>'
                '<bpmn:sequenceFlow id="f5" sourceRef="archive" targetRef="end"/>')
        refs += "<bpmn:flowNodeRef>archive</bpmn:flowNodeRef>"
    return definitions(f"""
  <bpmn:process id="permit" name="许可审批" isExecutable="true">
    <bpmn:laneSet id="lanes">
      <bpmn:lane id="window_clerk" name="窗口受理"><bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>accept</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="reviewer" name="审核">{refs}<bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="accept"/>
    <bpmn:userTask id="accept" name="受理"/>
    <bpmn:sequenceFlow id="f2" sourceRef="accept" targetRef="review"/>
    <bpmn:userTask id="review" name="{review_name}"/>
    <bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="{last_id}"/>
    {last}
    {tail}
    <bpmn:endEvent id="end"/>
  </bpmn:process>
""")


def timed_permit(version: int) -> bytes:
    """Review with a non-interrupting 2-hour reminder (a timer job); v2 adds `sign` after review."""
    after = "end" if version == 1 else "sign"
    sign = ('<bpmn:userTask id="sign" name="签发"/><bpmn:sequenceFlow id="f4" sourceRef="sign" targetRef="end"/>'
            if version > 1 else "")
    return definitions(f"""
  <bpmn:process id="timed_permit" name="限时审核" isExecutable="true">
    <bpmn:laneSet id="lanes"><bpmn:lane id="reviewer" name="审核">
      <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>review</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>remind</bpmn:flowNodeRef><bpmn:flowNodeRef>reminded</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>end</bpmn:flowNodeRef>{'<bpmn:flowNodeRef>sign</bpmn:flowNodeRef>' if version > 1 else ''}
    </bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <bpmn:userTask id="review" name="审核"/>
    <bpmn:boundaryEvent id="remind" name="两小时提醒" attachedToRef="review" cancelActivity="false">
      <bpmn:timerEventDefinition><bpmn:timeDuration>"PT2H"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="remind" targetRef="reminded"/>
    <bpmn:endEvent id="reminded"/>
    <bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="{after}"/>
    {sign}
    <bpmn:endEvent id="end"/>
  </bpmn:process>
""")


def supervised(version: int) -> bytes:
    """v1: review. v2: plus a 督办 event sub-process started by the worker's `deadline_yellow`
    message (as the standard processes have). v3: plus a step `sign` after review."""
    after = "sign" if version >= 3 else "end"
    sign = ('<bpmn:userTask id="sign" name="签发"/><bpmn:sequenceFlow id="f3" sourceRef="sign" targetRef="end"/>'
            if version >= 3 else "")
    alert = """
    <bpmn:subProcess id="yellow_alert" name="黄灯督办" triggeredByEvent="true">
      <bpmn:startEvent id="yellow_received" isInterrupting="false">
        <bpmn:messageEventDefinition messageRef="msg_yellow"/>
      </bpmn:startEvent>
      <bpmn:sequenceFlow id="a1" sourceRef="yellow_received" targetRef="urge"/>
      <bpmn:userTask id="urge" name="黄灯督办"/>
      <bpmn:sequenceFlow id="a2" sourceRef="urge" targetRef="urged"/>
      <bpmn:endEvent id="urged"/>
    </bpmn:subProcess>""" if version >= 2 else ""
    return definitions(f"""
  <bpmn:process id="supervised" name="督办审核" isExecutable="true">
    <bpmn:laneSet id="lanes">
      <bpmn:lane id="reviewer" name="审核"><bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>review</bpmn:flowNodeRef><bpmn:flowNodeRef>end</bpmn:flowNodeRef>
        {'<bpmn:flowNodeRef>sign</bpmn:flowNodeRef>' if version >= 3 else ''}</bpmn:lane>
      {'<bpmn:lane id="supervisor" name="主管"><bpmn:flowNodeRef>yellow_alert</bpmn:flowNodeRef></bpmn:lane>'
       if version >= 2 else ''}
    </bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <bpmn:userTask id="review" name="审核"/>
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="{after}"/>
    {sign}
    <bpmn:endEvent id="end"/>{alert}
  </bpmn:process>
""", extra='<bpmn:message id="msg_yellow" name="deadline_yellow"/>\n')


MORTGAGE = definitions("""
  <bpmn:process id="mortgage" name="抵押权登记" isExecutable="true">
    <bpmn:laneSet id="lanes">
      <bpmn:lane id="window_clerk" name="窗口受理"><bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>clock</bpmn:flowNodeRef><bpmn:flowNodeRef>accept</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="reviewer" name="审核"><bpmn:flowNodeRef>court</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>review</bpmn:flowNodeRef><bpmn:flowNodeRef>decide</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>refuse</bpmn:flowNodeRef><bpmn:flowNodeRef>end_refused</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="certificate_desk" name="发证"><bpmn:flowNodeRef>issue</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="accept"/>
    <bpmn:userTask id="accept" name="受理（一次性收件）"/>
    <bpmn:sequenceFlow id="f2" sourceRef="accept" targetRef="clock"/>
    <bpmn:serviceTask id="clock" name="承诺时限起算">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="deadline.start" resultVariable="deadline">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="business" type="str" value="'mortgage'"/>
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f3" sourceRef="clock" targetRef="court"/>
    <bpmn:serviceTask id="court" name="法院查封核查">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="test.court_check" resultVariable="court_result">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="unit" type="str" value="unit"/>
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f4" sourceRef="court" targetRef="review"/>
    <bpmn:userTask id="review" name="审核"/>
    <bpmn:sequenceFlow id="f5" sourceRef="review" targetRef="decide"/>
    <bpmn:exclusiveGateway id="decide" name="是否登记？" default="f_no"/>
    <bpmn:sequenceFlow id="f_yes" sourceRef="decide" targetRef="issue">
      <bpmn:conditionExpression>approved</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_no" sourceRef="decide" targetRef="refuse"/>
    <bpmn:userTask id="refuse" name="不予登记（书面告知）"/>
    <bpmn:sequenceFlow id="f7" sourceRef="refuse" targetRef="end_refused"/>
    <bpmn:endEvent id="end_refused" name="不予登记"/>
    <bpmn:callActivity id="issue" name="发证归档" calledElement="handover"/>
    <bpmn:sequenceFlow id="f6" sourceRef="issue" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
""")
HANDOVER = definitions("""
  <bpmn:process id="handover" name="发证" isExecutable="true">
    <bpmn:laneSet id="handover_lanes"><bpmn:lane id="handover_desk" name="发证">
      <bpmn:flowNodeRef>h_start</bpmn:flowNodeRef><bpmn:flowNodeRef>hand_over</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>h_end</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="h_start"/>
    <bpmn:sequenceFlow id="h1" sourceRef="h_start" targetRef="hand_over"/>
    <bpmn:userTask id="hand_over" name="领证"/>
    <bpmn:sequenceFlow id="h2" sourceRef="hand_over" targetRef="h_end"/>
    <bpmn:endEvent id="h_end"/>
  </bpmn:process>
""")

BROKEN = b'<?xml version="1.0"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">\n' \
         b'  <bpmn:process id="broken" isExecutable="true">\n    <bpmn:startEvent id="s">\n</bpmn:definitions>\n'
BAD_LANE = definitions("""
  <bpmn:process id="bad_lane" isExecutable="true">
    <bpmn:laneSet id="lanes"><bpmn:lane id="guard" name="保安">
      <bpmn:flowNodeRef>start</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call"/>
    <bpmn:serviceTask id="call" name="调用">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="nosuch.operator" resultVariable="r"/>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
""")

# ------------------------------------------------------------------------------------------ the web app


@pytest.fixture
def app(engine: Engine) -> Flask:
    app = create_app({"TESTING": True, "ENGINE": engine, "ACCOUNT_POLICY": FAST})
    accounts = Accounts(engine.db, engine.clock, FAST)
    for login, name, roles in DEMO_USERS:  # the demo users, with a known password
        accounts.create_user(login, name, PASSWORD, list(roles))
    return app




def log_in(app: Flask, login: str) -> FlaskClient:
    return web.log_in(app, login, PASSWORD)


def deploy_page(client: FlaskClient, *files: tuple[str, bytes], comment: str = "") -> TestResponse:
    token = token_of(page(client.get("/admin/deployments")))
    data = {"csrf_token": token, "comment": comment,
            "files": [(io.BytesIO(content), name) for name, content in files]}
    return client.post("/admin/deployments", data=data, content_type="multipart/form-data")


def flashes(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", m).strip() for m in re.findall(r'<p class="flash[^"]*">(.*?)</p>', html, re.S)]


def complete(engine: Engine, case_id: int, bpmn_id: str, actor=CLERK) -> None:
    engine.complete_task(open_task(engine, case_id, bpmn_id)["id"], {}, actor)


def versions_of(engine: Engine, process_id: str) -> dict[int, int]:
    return {v["version"]: v["id"] for v in engine.versions(process_id)}


def case_version(engine: Engine, case_id: int) -> int:
    return engine.get_case(case_id)["version"]


# ------------------------------------------------------------------------------------------ deployments


def test_a_designer_deploys_a_good_file_and_sees_the_new_version(app: Flask, engine: Engine) -> None:
    designer = log_in(app, "designer")
    assert "部署与版本" in page(designer.get("/admin/"))
    first = deploy_page(designer, ("permit.bpmn", permit(1)), comment="首次上线")
    assert first.status_code == 302 and first.headers["Location"] == "/admin/deployments"
    listing = page(designer.get("/admin/deployments"))
    assert "已部署 permit v1。" in flashes(listing)
    assert 'href="/admin/processes/permit"' in listing and "许可审批" in listing
    case = engine.start_case("permit", {}, CLERK)
    second = deploy_page(designer, ("permit.bpmn", permit(2)), comment="增加盖章")
    assert second.status_code == 302
    assert "已部署 permit v2。" in flashes(page(designer.get("/admin/deployments")))
    versions = page(designer.get("/admin/processes/permit"))
    rows = re.findall(r'<tr class="version" data-version="(\d+)">.*?<td class="running">(\d+)</td>', versions, re.S)
    assert rows == [("2", "0"), ("1", "1")]  # newest first, with the cases running on each
    assert "增加盖章" in versions and "首次上线" in versions and "designer" in versions
    v1 = versions_of(engine, "permit")[1]
    detail = page(designer.get(f"/admin/versions/{v1}"))
    assert "<svg" in detail  # the version's diagram
    assert f'data-case="{case.case_number}"' in detail
    # the same content again is no new version
    again = deploy_page(designer, ("permit.bpmn", permit(2)))
    assert again.status_code == 302
    assert "permit 的内容没有变化，仍为 v2。" in flashes(page(designer.get("/admin/deployments")))
    with engine.db.read() as s:
        assert s.scalar(select(func.count()).select_from(ProcessVersion)) == 2


def test_a_bad_upload_lists_every_problem_with_file_and_line_and_stores_nothing(app: Flask, engine: Engine) -> None:
    designer = log_in(app, "designer")
    response = deploy_page(designer, ("broken.bpmn", BROKEN), ("bad_lane.bpmn", BAD_LANE),
                           ("permit.bpmn", permit(1)))
    html = page(response)
    assert response.status_code == 422
    assert "部署被拒绝" in html and "什么都没有保存" in html
    rows = re.findall(r'<tr class="problem"><td>\d+</td><td class="where">([^<]+)</td><td class="where">([^<]+)</td>'
                      r'\s*<td class="where">([^<]+)</td><td>(.*?)</td></tr>', html, re.S)
    files = {r[0] for r in rows}
    assert {"broken.bpmn", "bad_lane.bpmn"} <= files and "permit.bpmn" not in files
    assert all(line.isdigit() for _file, line, _el, _msg in rows), rows
    lane = next(r for r in rows if r[2] == "guard")
    assert lane[0] == "bad_lane.bpmn" and "保安" in lane[3] and int(lane[1]) == BAD_LANE.decode().splitlines().index(
        next(x for x in BAD_LANE.decode().splitlines() if 'id="guard"' in x)) + 1
    assert any(r[0] == "bad_lane.bpmn" and r[2] == "call" and "nosuch.operator" in r[3] for r in rows)
    assert any(r[0] == "broken.bpmn" for r in rows)
    with engine.db.read() as s:
        assert s.scalar(select(func.count()).select_from(ProcessVersion)) == 0  # not even the good file
    nothing = deploy_page(designer)
    assert nothing.status_code == 422 and "nothing to deploy" in page(nothing)
    forged = designer.post("/admin/deployments", data={"files": [(io.BytesIO(permit(1)), "permit.bpmn")]},
                           content_type="multipart/form-data")
    assert forged.status_code == 400  # no CSRF token: nothing is even checked
    with engine.db.read() as s:
        assert s.scalar(select(func.count()).select_from(ProcessVersion)) == 0


def test_uploaded_file_names_are_made_safe() -> None:
    assert _upload_name("permit.bpmn", False) == "permit.bpmn"
    assert _upload_name("C:\\Users\\he\\permit.bpmn", False) == "Users/he/permit.bpmn"
    assert _upload_name("../../etc/passwd", False) == "etc/passwd"
    assert _upload_name("processes/forms/accept.json", True) == "forms/accept.json"  # relative to the folder
    assert _upload_name("/", False) is None


def test_only_the_right_roles_reach_the_admin_pages(app: Flask, engine: Engine) -> None:
    engine.deploy([("permit.bpmn", permit(1))], "designer")
    case = engine.start_case("permit", {}, CLERK)
    version_id = versions_of(engine, "permit")[1]
    pages = ["/admin/", "/admin/deployments", "/admin/processes/permit", "/admin/processes/permit/diff",
             f"/admin/versions/{version_id}", "/admin/incidents", "/admin/jobs", "/admin/dashboard"]
    clerk = log_in(app, "window")
    for url in pages:
        assert clerk.get(url).status_code == 403, url
    token = token_of(page(clerk.get("/")))
    for url in ["/admin/deployments", f"/admin/cases/{case.id}/migrate", f"/admin/versions/{version_id}/migrate",
                "/admin/incidents/1/retry", "/admin/incidents/1/resolve"]:
        assert clerk.post(url, data={"csrf_token": token}).status_code == 403, url
    assert "无权" in page(clerk.get("/admin/deployments"))
    assert 'href="/admin/"' not in page(clerk.get("/"))  # no menu entry either
    anonymous = app.test_client()
    assert anonymous.get("/admin/deployments").headers["Location"].startswith("/login")
    supervisor = log_in(app, "supervisor")
    overview = page(supervisor.get("/admin/"))
    assert "主管看板" in overview and 'href="/admin/deployments"' not in overview
    assert supervisor.get("/admin/deployments").status_code == 403
    assert supervisor.get("/admin/incidents").status_code == 200
    assert supervisor.get("/admin/dashboard").status_code == 200
    designer = log_in(app, "designer")
    assert designer.get("/admin/incidents").status_code == 403
    assert designer.get("/admin/dashboard").status_code == 403
    assert designer.get("/admin/deployments").status_code == 200
    admin = log_in(app, "admin")
    for url in pages:
        assert admin.get(url).status_code in (200, 302), url


# ------------------------------------------------------------------------------------------ diff


def test_the_diff_between_two_versions_names_the_changed_element(app: Flask, engine: Engine) -> None:
    engine.deploy([("permit.bpmn", permit(1))], "designer")
    engine.deploy([("permit.bpmn", permit(2))], "designer")
    ids = versions_of(engine, "permit")
    diff = engine.diff_versions(ids[1], ids[2])
    changed = {c.bpmn_id: c for c in diff.changed}
    assert set(changed["review"].attributes) == {"outputs", "bpmn_name"}
    assert changed["approve"].new_bpmn_id == "stamp" and changed["approve"].new_name == "盖章"  # replaced in place
    assert not diff.removed and not diff.added
    assert engine.diff_versions(ids[2], ids[2]).empty
    designer = log_in(app, "designer")
    html = page(designer.get(f"/admin/processes/permit/diff?old={ids[1]}&new={ids[2]}"))
    assert "v1 → v2" in html
    changed_table = html.split('id="changed"')[1].split("</table>")[0]
    review = re.search(r'data-element="review">(.*?)</tr>', changed_table, re.S).group(1)
    assert "审核" in review and "后续连线（outputs）" in review and "名称（bpmn_name）" in review
    assert "approve → stamp" in changed_table and "被替换" in changed_table
    assert designer.get("/admin/processes/permit/diff").status_code == 200  # the latest two by default
    assert designer.get("/admin/processes/permit/diff?old=1&new=999999").status_code == 404
    engine.deploy([("permit.bpmn", permit(3))], "designer")
    added = engine.diff_versions(versions_of(engine, "permit")[2], versions_of(engine, "permit")[3])
    assert [a.bpmn_id for a in added.added] == ["archive"]
    assert "archive" in page(designer.get(f"/admin/processes/permit/diff?old={ids[2]}&new="
                                          f"{versions_of(engine, 'permit')[3]}")).split('id="added"')[1]


# ------------------------------------------------------------------------------------------ migration


def test_migration_moves_a_safe_case_and_refuses_an_unsafe_one(engine: Engine) -> None:
    engine.deploy([("permit.bpmn", permit(1))], "designer")
    at_review = engine.start_case("permit", {"applicant": "张三"}, CLERK)
    complete(engine, at_review.id, "accept")
    at_approve = engine.start_case("permit", {}, CLERK)
    complete(engine, at_approve.id, "accept")
    complete(engine, at_approve.id, "review", REVIEWER)
    engine.deploy([("permit.bpmn", permit(2))], "designer")
    v2 = versions_of(engine, "permit")[2]
    check = engine.check_migration(at_review.id)
    assert check.safe and check.to_version.version == 2 and check.open_tasks == ["review"]
    unsafe = engine.check_migration(at_approve.id, v2)
    assert not unsafe.safe
    assert any(r.startswith("已完成的「审核」（review）在新版本中有改动") and "后续连线 outputs" in r
               for r in unsafe.reasons), unsafe.reasons
    assert case_version(engine, at_review.id) == 1  # a check writes nothing
    with pytest.raises(NotPermitted):
        engine.migrate_case(at_review.id, v2, CLERK)
    review_task = open_task(engine, at_review.id, "review")
    moved = engine.migrate_case(at_review.id, v2, DESIGNER, comment="上线复核")
    assert moved.from_version.version == 1 and moved.to_version.version == 2
    case = engine.get_case(at_review.id)
    assert case["version"] == 2 and case["process_version_id"] == v2 and case["status"] == "active"
    same = open_task(engine, at_review.id, "review")
    assert same["id"] == review_task["id"] and same["name"] == "审核（复核）"  # the same task, the new name
    events = [e for e in engine.history(at_review.id) if e["kind"] == "case_migrated"]
    assert len(events) == 1 and events[0]["detail"]["from_version"] == 1 and events[0]["detail"]["to_version"] == 2
    assert events[0]["actor"] == DESIGNER.name and events[0]["detail"]["comment"] == "上线复核"
    complete(engine, at_review.id, "review", REVIEWER)
    complete(engine, at_review.id, "stamp", REVIEWER)  # v2's step
    finished = engine.get_case(at_review.id)
    assert finished["status"] == "completed" and finished["version"] == 2
    assert engine.case_data(at_review.id)["applicant"] == "张三"
    with pytest.raises(MigrationRefused) as refused:
        engine.migrate_case(at_approve.id, v2, DESIGNER)
    assert any("review" in r for r in refused.value.reasons) and refused.value.http_status == 409
    assert case_version(engine, at_approve.id) == 1  # untouched, and still works on v1
    with engine.db.read() as s:
        assert s.scalar(select(func.count()).select_from(CaseEvent).where(
            CaseEvent.case_id == at_approve.id, CaseEvent.kind == "case_migrated")) == 0
    complete(engine, at_approve.id, "approve", REVIEWER)
    assert engine.get_case(at_approve.id)["status"] == "completed"
    # only to a newer version of the same process, only running cases
    with pytest.raises(MigrationRefused, match="不比案件当前"):
        engine.migrate_case(at_review.id, versions_of(engine, "permit")[1], DESIGNER)
    assert "只能迁移在办" in " ".join(engine.check_migration(at_review.id).reasons)


def test_migration_keeps_a_waiting_timer_and_bulk_migration_reports_each_case(engine: Engine,
                                                                              clock: FrozenClock) -> None:
    engine.deploy([("timed_permit.bpmn", timed_permit(1))], "designer")
    first = engine.start_case("timed_permit", {}, CLERK)
    clock.advance(minutes=30)
    second = engine.start_case("timed_permit", {}, CLERK)
    with engine.db.read() as s:
        due_before = dict(s.execute(select(TimerJob.case_id, TimerJob.due_at)).all())
    engine.deploy([("timed_permit.bpmn", timed_permit(2))], "designer")
    ids = versions_of(engine, "timed_permit")
    result = engine.migrate_cases(ids[1], None, DESIGNER, comment="增加签发")
    assert sorted(m.case_number for m in result.migrated) == sorted([first.case_number, second.case_number])
    assert not result.refused
    with engine.db.read() as s:
        assert dict(s.execute(select(TimerJob.case_id, TimerJob.due_at)).all()) == due_before  # still due at 2 h
        assert s.scalar(select(func.count()).select_from(Case).where(Case.process_version_id == ids[2])) == 2
    clock.advance(hours=1, minutes=45)  # 11:15: the first case's reminder (11:00) is due, the second's (11:30) not
    assert engine.run_due_jobs().fired == 1
    complete(engine, first.id, "review", REVIEWER)
    complete(engine, first.id, "sign", REVIEWER)
    assert engine.get_case(first.id)["status"] == "completed"


def test_migration_and_event_subprocesses(engine: Engine) -> None:
    """Adding a 督办 event sub-process is safe for running cases (they can be supervised from
    then on); a case whose event sub-process has started moves too; and a version triggered at run
    time (SpiffWorkflow links the sub-process into the cached spec) diffs the same as before."""
    engine.deploy([("supervised.bpmn", supervised(1))], "designer")
    case = engine.start_case("supervised", {}, CLERK)
    engine.deploy([("supervised.bpmn", supervised(2))], "designer")
    ids = versions_of(engine, "supervised")
    added = engine.diff_versions(ids[1], ids[2])
    assert [a.bpmn_id for a in added.added] == ["yellow_alert"] and added.processes_added == ["yellow_alert"]
    engine.migrate_case(case.id, ids[2], DESIGNER)
    engine.send_message(case.id, "deadline_yellow", {"light": "yellow"}, SYSTEM)
    assert open_task(engine, case.id, "urge")["role"] == "supervisor"  # supervised from now on
    other = engine.start_case("supervised", {}, CLERK)
    engine.send_message(other.id, "deadline_yellow", {"light": "yellow"}, SYSTEM)  # v2 triggered at run time
    engine.deploy([("supervised.bpmn", supervised(3))], "designer")
    ids = versions_of(engine, "supervised")
    diff = engine.diff_versions(ids[2], ids[3])
    assert {c.bpmn_id for c in diff.changed} == {"review", "end"} and [a.bpmn_id for a in diff.added] == ["sign"]
    for moving in (case, other):
        check = engine.check_migration(moving.id, ids[3])
        assert check.safe, check.reasons
        engine.migrate_case(moving.id, ids[3], DESIGNER)
        complete(engine, moving.id, "urge", SUPERVISOR)
        complete(engine, moving.id, "review", REVIEWER)
        complete(engine, moving.id, "sign", REVIEWER)
        assert engine.get_case(moving.id)["status"] == "completed"
        assert engine.get_case(moving.id)["version"] == 3
    steps = engine.process_steps(ids[3])
    assert [s.bpmn_id for s in steps] == ["review", "sign"]  # the 督办 is not a step on the way


# ------------------------------------------------------------------------------------------ migration pages


def test_migrating_from_the_version_page(app: Flask, engine: Engine) -> None:
    engine.deploy([("permit.bpmn", permit(1))], "designer")
    safe = engine.start_case("permit", {}, CLERK)
    complete(engine, safe.id, "accept")
    unsafe = engine.start_case("permit", {}, CLERK)
    complete(engine, unsafe.id, "accept")
    complete(engine, unsafe.id, "review", REVIEWER)
    engine.deploy([("permit.bpmn", permit(2))], "designer")
    ids = versions_of(engine, "permit")
    designer = log_in(app, "designer")
    html = page(designer.get(f"/admin/versions/{ids[1]}"))
    rows = dict(re.findall(r'<tr class="case" data-case="([^"]+)">(.*?)</tr>', html, re.S))
    assert "安全" in rows[safe.case_number] and f'/admin/cases/{safe.id}/migrate' in rows[safe.case_number]
    assert "不安全" in rows[unsafe.case_number] and "review" in rows[unsafe.case_number]
    assert f'/admin/cases/{unsafe.id}/migrate' not in rows[unsafe.case_number]
    token = token_of(html)
    no_token = designer.post(f"/admin/cases/{safe.id}/migrate", data={"target": ids[2], "from_version": ids[1]})
    assert no_token.status_code == 400 and case_version(engine, safe.id) == 1
    moved = designer.post(f"/admin/cases/{safe.id}/migrate",
                          data={"csrf_token": token, "target": ids[2], "from_version": ids[1]})
    assert moved.status_code == 302 and moved.headers["Location"] == f"/admin/versions/{ids[1]}"
    assert f"案件 {safe.case_number} 已从 v1 迁移到 v2。" in flashes(page(designer.get(moved.headers["Location"])))
    assert case_version(engine, safe.id) == 2
    refused = designer.post(f"/admin/cases/{unsafe.id}/migrate",
                            data={"csrf_token": token, "target": ids[2], "from_version": ids[1]})
    messages = flashes(page(designer.get(refused.headers["Location"])))
    assert any(m.startswith(f"案件 {unsafe.case_number} 未迁移：") and "review" in m for m in messages), messages
    assert case_version(engine, unsafe.id) == 1
    bulk = designer.post(f"/admin/versions/{ids[1]}/migrate", data={"csrf_token": token, "target": ids[2]})
    messages = flashes(page(designer.get(bulk.headers["Location"])))
    assert "已迁移 0 个案件。" in messages and any(unsafe.case_number in m for m in messages)
    complete(engine, safe.id, "review", REVIEWER)
    complete(engine, safe.id, "stamp", REVIEWER)
    assert engine.get_case(safe.id)["status"] == "completed"


# ------------------------------------------------------------------------------------------ incidents


def test_an_incident_is_retried_and_another_resolved_from_the_page(app: Flask, engine: Engine) -> None:
    engine.deploy(bpmn("service_errors.bpmn"), "designer")
    CourtStub.reset("crash", "crash", "ok")
    first = engine.start_case("service_errors", {"unit": "330106001001GB00001F00010001"}, CLERK)
    second = engine.start_case("service_errors", {"unit": "330106001001GB00001F00010002"}, CLERK)
    incidents = {i["case_id"]: i for i in engine.incidents()}
    assert set(incidents) == {first.id, second.id}
    supervisor = log_in(app, "supervisor")
    listing = page(supervisor.get("/admin/incidents"))
    row = re.search(rf'data-incident="{incidents[first.id]["id"]}">(.*?)</tr>', listing, re.S).group(1)
    assert first.case_number in row and "法院查封核查" in row and "check" in row and "外部服务故障" in row
    assert "KeyError" in row  # the message
    detail = page(supervisor.get(f"/admin/incidents/{incidents[first.id]['id']}"))
    assert "Traceback" in detail and "KeyError" in detail  # the details
    token = token_of(detail)
    retried = supervisor.post(f"/admin/incidents/{incidents[first.id]['id']}/retry",
                              data={"csrf_token": token, "comment": "法院系统已恢复"})
    assert retried.status_code == 302
    after = page(supervisor.get(retried.headers["Location"]))
    assert any("已重试，任务继续执行" in m for m in flashes(after))
    assert open_task(engine, first.id, "approve")  # the case went on
    second_id = incidents[second.id]["id"]
    url = f"/admin/incidents/{second_id}/resolve"
    assert supervisor.post(url, data={"comment": "x"}).status_code == 400  # no CSRF token
    empty = supervisor.post(url, data={"csrf_token": token, "comment": " "})
    assert empty.status_code == 422 and "请填写处理说明" in page(empty)
    stuck = supervisor.post(url, data={"csrf_token": token, "comment": "已电话核实"})
    assert stuck.status_code == 422
    assert "事件没有关闭" in page(stuck) and "仍因此事件停止" in page(stuck)
    assert "已电话核实" in page(stuck)  # the input is kept
    bad_json = supervisor.post(url, data={"csrf_token": token, "comment": "已电话核实", "result": "{seized"})
    assert bad_json.status_code == 422 and "不是有效的 JSON" in page(bad_json)
    for unstorable in ('{"seized": NaN}', '{"amount": 1e999}', '{"note": "a\\u0000b"}'):
        refused = supervisor.post(url, data={"csrf_token": token, "comment": "已电话核实", "result": unstorable})
        assert refused.status_code == 422 and "不是有效的 JSON" in page(refused), unstorable
    resolved = supervisor.post(url, data={"csrf_token": token, "comment": "已电话核实，未查封",
                                          "result": '{"seized": false}'})
    assert resolved.status_code == 302
    assert any("已处理并关闭" in m for m in flashes(page(supervisor.get(resolved.headers["Location"]))))
    assert engine.incidents() == []
    assert engine.case_data(second.id)["court"] == {"seized": False}
    assert open_task(engine, second.id, "approve")
    again = supervisor.post(url, data={"csrf_token": token, "comment": "再次关闭"})
    assert again.status_code == 409 and "已由 supervisor 处理" in page(again)
    closed = page(supervisor.get("/admin/incidents?status=resolved"))
    assert "已电话核实，未查封" in closed and first.case_number in closed


# ------------------------------------------------------------------------------------------ timers and outbox


def test_the_timers_and_outbox_page_shows_what_is_due(app: Flask, engine: Engine, clock: FrozenClock) -> None:
    engine.deploy([("timed_permit.bpmn", timed_permit(1))], "designer")
    engine.deploy(bpmn("service_errors.bpmn"), "designer")
    timed = engine.start_case("timed_permit", {}, CLERK)
    CourtStub.reset("ok")
    court = engine.start_case("service_errors", {"unit": "330106001001GB00001F00010001"}, CLERK)
    result = engine.deliver_outbox({}, max_attempts=1)  # no sender for the topic: it fails for good
    assert result.failed == 1
    supervisor = log_in(app, "supervisor")
    html = page(supervisor.get("/admin/jobs"))
    due = (clock.now() + timedelta(hours=2)).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    assert f'data-case="{timed.case_number}"' in html and due in html and "remind" in html
    assert re.search(r'id="next-due">\s*' + re.escape(due), html)
    failed = html.split('id="outbox-failed"')[1].split("</table>")[0]
    assert court.case_number in failed and "notify.applicant" in failed and "no sender" in failed


# ------------------------------------------------------------------------------------------ dashboard


def test_the_dashboard_draws_its_charts_with_the_right_counts(app: Flask, engine: Engine, clock: FrozenClock) -> None:
    engine.deploy([("permit.bpmn", permit(1))], "designer")
    engine.deploy(bpmn("two_reviews.bpmn"), "designer")
    clock.advance(days=-1)
    engine.start_case("permit", {}, CLERK)  # yesterday: not today's
    clock.advance(days=1)
    permits = [engine.start_case("permit", {}, CLERK) for _ in range(3)]
    engine.start_case("two_reviews", {}, CLERK)
    t0 = clock.now()
    with engine.db.write() as s:
        # two one-hour cases finished today: 45 minutes and 70 minutes
        for case, minutes in ((permits[0], (15, 30, 45)), (permits[1], (20, 50, 70))):
            deadlines.start_clock(s, case.id, case.case_number, "secondhand_transfer", t0)
            deadlines.record_stage(s, case.id, "acceptance", "start", t0)
            for stage, m in zip(("acceptance", "review", "certificate"), minutes, strict=True):
                deadlines.record_stage(s, case.id, stage, "end", t0 + timedelta(minutes=m))
        # red: a 1-working-day limit accepted last week; yellow: 1 of 5 working days left
        deadlines.start_clock(s, permits[2].id, permits[2].case_number, "mortgage_cancellation",
                              datetime(2026, 11, 17, 9, 0, tzinfo=SHANGHAI))
    two = engine.task_list(REVIEWER)[0]["case_id"]
    with engine.db.write() as s:
        deadlines.start_clock(s, two, engine.get_case(two)["case_number"], "secondhand_transfer",
                              datetime(2026, 11, 17, 9, 0, tzinfo=SHANGHAI))
    clock.advance(hours=2)
    supervisor = log_in(app, "supervisor")
    html = page(supervisor.get("/admin/dashboard"))

    def bars(chart: str) -> dict[str, str]:
        svg = html.split(f'data-chart="{chart}"')[1].split("</svg>")[0]
        return dict(re.findall(r'<rect class="bar [^"]*" data-key="([^"]+)" data-series="[^"]+" data-value="([^"]*)"',
                               svg))

    assert html.count("<svg") >= 4
    assert bars("chart-kinds") == {"permit": "3", "two_reviews": "1"}
    assert bars("chart-one-hour") == {"within": "1", "over": "1"}
    assert re.search(r'id="one-hour-rate">50\.0%', html)
    stages = html.split('data-chart="chart-stages"')[1].split("</svg>")[0]
    assert 'data-key="acceptance" data-series="mean" data-value="17.5"' in stages
    assert 'data-key="review" data-series="p90" data-value="30"' in stages
    assert 'class="budget"' in stages  # the 20-minute stage budget
    assert bars("chart-lights") == {"green": "0", "yellow": "1", "red": "1"}
    flagged = dict(re.findall(r'data-case="([^"]+)" data-light="([^"]+)"', html))
    assert flagged == {permits[2].case_number: "red", engine.get_case(two)["case_number"]: "yellow"}
    assert f'href="/cases/?q={permits[2].case_number}"' in html or f"q={permits[2].case_number}" in html
    yesterday = page(supervisor.get("/admin/dashboard?day=2026-11-22"))
    assert bars_of(yesterday, "chart-kinds") == {"permit": "1"}


def bars_of(html: str, chart: str) -> dict[str, str]:
    svg = html.split(f'data-chart="{chart}"')[1].split("</svg>")[0]
    return dict(re.findall(r'<rect class="bar [^"]*" data-key="([^"]+)" data-series="[^"]+" data-value="([^"]*)"', svg))


def test_bar_chart_geometry() -> None:
    chart = bar_chart([{"key": "a", "label": "甲", "bars": [{"series": "n", "label": "n", "value": 4, "cls": "x"}]},
                       {"key": "b", "label": "乙", "bars": [{"series": "n", "label": "n", "value": 1, "cls": "x"},
                                                           {"series": "m", "label": "m", "value": None, "cls": "y"}]}],
                      budget=2)
    a, b = chart["groups"]
    assert a["bars"][0]["h"] == chart["base"] - a["bars"][0]["y"] and a["bars"][0]["h"] == 4 * b["bars"][0]["h"]
    assert b["bars"][1]["h"] == 0 and b["bars"][1]["text"] == ""
    assert chart["budget_y"] == chart["base"] - 2 * b["bars"][0]["h"]
    assert bar_chart([])["groups"] == []


# ------------------------------------------------------------------------------------------ the public guide


def test_the_guide_lists_materials_with_their_sources_and_the_time_limit_without_login(app: Flask,
                                                                                     engine: Engine) -> None:
    engine.deploy([("mortgage.bpmn", MORTGAGE), ("handover.bpmn", HANDOVER), ("permit.bpmn", permit(1))], "designer")
    visitor = app.test_client()
    index = visitor.get("/guide/")
    html = page(index)
    assert index.status_code == 200 and 'href="/guide/mortgage"' in html and "抵押权首次登记" in html
    assert 'href="/guide/permit"' not in html and 'href="/guide/handover"' not in html  # not business kinds
    assert "国有建设用地使用权首次登记" in html  # the whole time-limit table is public
    response = visitor.get("/guide/mortgage")
    html = page(response)
    assert response.status_code == 200
    materials = dict(re.findall(r'<tr class="material" data-code="([^"]+)" data-source="([^"]+)">', html))
    assert materials["application_form"] == "applicant" and materials["identity"] == "shared"
    row = re.search(r'data-code="identity".*?</tr>', html, re.S).group(0)
    assert "申请人身份证明" in row and "部门共享获取（公安部门），无需提交" in row
    row = re.search(r'data-code="power_of_attorney".*?</tr>', html, re.S).group(0)
    assert "委托书" in row and "委托代理人办理的" in row  # when it is needed, in words
    row = re.search(r'data-code="application_form".*?</tr>', html, re.S).group(0)
    assert "不动产登记申请书" in row and "申请人提交" in row
    limit = re.search(r'id="time-limit">(.*?)</p>', html, re.S).group(1)
    assert "承诺时限：5 个工作日" in limit and "法定时限：30 个工作日" in limit
    main_way = html.split('id="steps-list"')[1].split("</ol>")[0]
    steps = re.findall(r'<li class="step" data-step="([^"]+)" data-kind="([^"]+)">', main_way)
    assert steps == [("accept", "user"), ("court", "service"), ("review", "user"), ("hand_over", "user")]
    others = html.split('id="other-steps"')[1].split("</ul>")[0]  # only when refused
    assert re.findall(r'data-step="([^"]+)"', others) == ["refuse"] and "不予登记（书面告知）" in others
    assert "clock" not in dict(steps)  # the office's stopwatch is no step of the applicant's
    step = re.search(r'data-step="accept".*?</li>', html, re.S).group(0)
    assert "受理（一次性收件）" in step and "窗口受理" in step
    court = re.search(r'data-step="court".*?</li>', html, re.S).group(0)
    assert "系统自动办理" in court and "审核" in court
    assert "发证" in re.search(r'data-step="hand_over".*?</li>', html, re.S).group(0)
    assert visitor.get("/guide/handover").status_code == 404
    assert visitor.get("/guide/nothing_here").status_code == 404
    visitor.get("/lang/en")
    english = page(visitor.get("/guide/mortgage"))
    assert "Time limit" in english and "Materials" in english


def test_a_service_step_names_the_department_it_asks() -> None:
    step = ProcessStep("secondhand_transfer", "check_court", "法院查封核查", "service", "审核", "reviewer",
                       "court.check_seizure", None)
    assert guide_step(step)["department"] == "人民法院（府院联办）"
    assert guide_step(step)["who"] == "系统自动办理"


def test_process_steps_follow_the_flow_and_cut_loops(engine: Engine) -> None:
    engine.deploy(bpmn("two_reviews.bpmn"), "designer")
    version = versions_of(engine, "two_reviews")[1]
    steps = engine.process_steps(version)
    assert [s.bpmn_id for s in steps] == ["review_a", "review_b"]
    assert {s.role for s in steps} == {"reviewer"} and {s.lane for s in steps} == {"审核"}


def test_no_version_row_is_written_by_a_failed_migration(engine: Engine) -> None:
    engine.deploy([("permit.bpmn", permit(1))], "designer")
    case = engine.start_case("permit", {}, CLERK)
    complete(engine, case.id, "accept")
    complete(engine, case.id, "review", REVIEWER)
    engine.deploy([("permit.bpmn", permit(2))], "designer")
    with engine.db.read() as s:
        before = s.execute(select(Case.lock_version, Case.state, Case.process_version_id)
                           .where(Case.id == case.id)).one()
        tasks_before = s.execute(select(HumanTask.id, HumanTask.state, HumanTask.bpmn_id)).all()
    with pytest.raises(MigrationRefused):
        engine.migrate_case(case.id, None, DESIGNER)
    with engine.db.read() as s:
        assert s.execute(select(Case.lock_version, Case.state, Case.process_version_id)
                         .where(Case.id == case.id)).one() == before
        assert s.execute(select(HumanTask.id, HumanTask.state, HumanTask.bpmn_id)).all() == tasks_before
