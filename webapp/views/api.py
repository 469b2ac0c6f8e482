"""The JSON API under /api/v1 (issue #5); its OpenAPI 3.1 document is GET /api/v1/openapi.json.

Who: every endpoint needs a user — an API token (`Authorization: Bearer owt_…`, issued with
`onewindow user token issue`), or the login session for the pages' scripts (then unsafe methods
also need the `X-CSRFToken` header). The request is always done as the token's user: nothing in a
body names who acts (an `actor` field is refused as unknown), and the engine records that user.

| method | path | roles | answers |
| GET | /me | any | who the API sees |
| GET | /openapi.json | public | this API's OpenAPI 3.1 document |
| POST | /deployments | admin, designer | 201 versions (200 if all existed) · 422 problems |
| GET | /processes | any | deployed processes, latest version, running cases |
| POST | /cases | window_clerk, supervisor, admin | 201 id, case_number, status, lock_version |
| GET | /cases/{id} | any (首问负责) | case, open tasks, open incidents, deadline |
| GET | /cases/{id}/diagram.svg | any | the version's diagram with the case's marks |
| GET | /tasks | any | my tasks and my roles' unclaimed ones |
| POST | /tasks/{id}/claim · /release | the task's role (release: holder or manager) | the task |
| POST | /tasks/{id}/complete | the task's role | 200 lock_version, status · 409 · 422 |
| POST | /cases/{id}/messages | supervisor, admin | delivered or buffered |
| GET | /incidents · POST /incidents/{id}/retry · /resolve | supervisor, admin | |

Messages to cases are for supervisors and admins: a department's system that calls back (tax
paid, court order) gets its own account with the supervisor role and its own token. (A narrower
`integration` role would need a new role in domain/roles.py; add it to MESSAGE_ROLES then.)

Errors: `{"error": code, "message": …}` plus `fields` (422), `problems` (rejected deployment) or
`case` (409), from `webapp.security.api_error` like every /api/ error; see webapp/api_support.py
for the order of body checks (413, 415, 400, 422) and the limits.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask import Blueprint, Response, current_app, g, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from domain import deadlines
from domain.roles import ROLES, role_label
from engine import Engine
from engine.deployment import DEPLOYABLE_SUFFIXES
from engine.errors import Conflict, EngineError, NotFound
from storage.models import Case, Incident, ProcessVersion, TimerJob
from webapp import api_schemas as S
from webapp.api_forms import form_errors, start_form, task_form
from webapp.api_marks import case_marks
from webapp.api_openapi import ApiRoutes
from webapp.api_support import (
    ApiError,
    answer,
    body_limit,
    check_size,
    configure,
    engine_error,
    json_body,
    too_large,
    validate,
)
from webapp.diagram import render_svg
from webapp.i18n import role_name, status_name
from webapp.security import current_actor

bp = Blueprint("api", __name__, url_prefix="/api/v1")
api = ApiRoutes(bp, title="OneWindow 一窗受理 API", version="1", description=(
    "不动产登记一窗受理的 JSON API：部署流程、立案、待办任务、办理、消息、事件。"
    "错误一律为 JSON：`{\"error\": 代码, \"message\": 说明}`。时间为 ISO 8601（北京时间 +08:00）。"))

# endpoints anonymous callers may use
PUBLIC: set[str] = {"api.openapi"}

DEPLOYERS = ("admin", "designer")
CASE_STARTERS = ("window_clerk", "supervisor", "admin")
MANAGERS = ("supervisor", "admin")
MESSAGE_ROLES = MANAGERS
TASKS, CASES, ADMIN, META = "任务", "案件", "管理", "说明"


@bp.record_once
def _configure(state: Any) -> None:
    configure(state.app)


@bp.before_request
def _authenticated_only() -> Any:
    if request.endpoint in PUBLIC or current_user.is_authenticated:
        return None
    return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]


@bp.errorhandler(ApiError)
def _api_error(err: ApiError) -> Response:
    return err.response()


@bp.errorhandler(EngineError)
def _engine_error(err: EngineError) -> Response:
    return engine_error(err).response()


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_err: RequestEntityTooLarge) -> Response:
    return too_large(body_limit(upload=request.endpoint == "api.deploy")).response()


def engine() -> Engine:
    return current_app.extensions["onewindow"]


# ====================================================================================== about

@api.route("GET", "/me", summary="当前调用者", tag=META, answers={200: (S.Me, "令牌（或会话）的用户及其岗位")})
def me() -> Response:
    """Who the API sees: the user of the token (or session), and the roles they act with."""
    user = current_user
    return answer(S.Me, {"login": user.login, "display_name": user.display_name, "office": user.office,
                         "roles": [{"code": r, "name": role_name(r)} for r in user.roles],
                         "authenticated_by": g.get("auth_method", "session")})


@api.route("GET", "/openapi.json", summary="本 API 的 OpenAPI 3.1 文档", tag=META, public=True,
           answers={200: ("application/json", "OpenAPI 3.1 文档（无需登录）")})
def openapi() -> Response:
    """This document. No login needed: it describes the API, never any data."""
    doc = api.document(server_url=bp.url_prefix or "/")
    return current_app.response_class(current_app.json.dumps(doc), mimetype="application/json")


# ====================================================================================== deployments

DEPLOYMENT_FORM = {
    "schema": {
        "type": "object",
        "required": ["files"],
        "properties": {
            "files": {"type": "array", "minItems": 1,
                      "description": "BPMN 文件及其表单（.bpmn、.bpmn20.xml、.json），可多个",
                      "items": {"type": "string", "contentMediaType": "application/octet-stream"}},
            "comment": {"type": "string", "maxLength": 2000, "description": "部署说明"},
        },
    },
    "encoding": {"files": {"contentType": "application/xml, application/json, application/octet-stream"}},
}


@api.route("POST", "/deployments", summary="部署流程（BPMN 文件与表单）", tag=ADMIN, roles=DEPLOYERS,
           multipart=DEPLOYMENT_FORM, errors=(422,),
           answers={201: (S.Deployment, "已部署：各流程的版本"),
                    200: (S.Deployment, "内容与已部署的最新版本相同，未新建版本")})
def deploy() -> Response:
    """Upload a deployment as a whole: every file is validated together (XSD, parse, expressions,
    operators, call activities, lanes, forms) and stored atomically, or rejected with every
    problem (file, line, element) and nothing stored."""
    check_size(upload=True)
    if request.mimetype != "multipart/form-data":
        got = request.mimetype or "未注明"
        raise ApiError(415, "unsupported_media_type",
                       f"部署须以 multipart/form-data 上传，文件放在 files 字段；收到的是 {got}。")
    # a part without a name comes as None (or ""): named so that it can be listed
    names = {name or "（无名字段）" for name in (*request.files.keys(), *request.form.keys())}
    unknown = sorted(names - {"files", "comment"})
    if unknown:
        raise ApiError(422, "invalid",
                       f"不认识的字段：{'、'.join(unknown)}。文件请放在 files 字段，说明放在 comment 字段。",
                       fields=[{"field": f, "message": "不认识的字段"} for f in unknown])
    files: list[tuple[str, bytes]] = []
    problems = []
    for upload in request.files.getlist("files"):
        name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
        if "\x00" in name:
            problems.append({"field": "files", "message": "文件名中不能含有 NUL 字符"})
        elif not name:
            problems.append({"field": "files", "message": "有一个文件没有文件名"})
        elif not name.lower().endswith(DEPLOYABLE_SUFFIXES):
            problems.append({"field": "files", "message": f"{name}：只接受 {'、'.join(DEPLOYABLE_SUFFIXES)} 文件"})
        elif any(name == n for n, _ in files):
            problems.append({"field": "files", "message": f"{name}：同名文件上传了两次"})
        else:
            files.append((name, upload.read()))
    if not files and not problems:
        problems.append({"field": "files", "message": "请至少上传一个 BPMN 文件"})
    comment = (request.form.get("comment") or "").strip() or None
    if comment is not None and len(comment) > 2000:
        problems.append({"field": "comment", "message": "最多 2000 个字符"})
    elif comment is not None and "\x00" in comment:
        problems.append({"field": "comment", "message": "不能含有 NUL 字符"})
    if problems:
        raise ApiError(422, "invalid", "部署内容不符合要求：" + "；".join(p["message"] for p in problems) + "。",
                       fields=problems)
    deployed = engine().deploy(files, current_user.login, comment)
    created = sum(1 for v in deployed if v.created)
    body = {"versions": [v.__dict__ for v in deployed], "created": created}
    return answer(S.Deployment, body, 201 if created else 200)


@api.route("GET", "/processes", summary="已部署的流程", tag=CASES,
           answers={200: (S.ProcessList, "每个流程的最新版本与办理中的案件数")})
def processes() -> Response:
    """Every deployed process with its latest version and how many cases run on any of its versions."""
    by_process: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for v in engine().versions():
        by_process[v["process_id"]].append(v)
    items = []
    for pid, versions in sorted(by_process.items()):
        latest = max(versions, key=lambda v: v["version"])
        items.append({"process_id": pid, "name": latest["name"], "latest_version": latest["version"],
                      "latest_version_id": latest["id"], "deployed_at": latest["deployed_at"],
                      "deployed_by": latest["deployed_by"], "versions": len(versions),
                      "running_cases": sum(v["running_cases"] for v in versions)})
    return answer(S.ProcessList, {"items": items})


# ====================================================================================== cases

@api.route("POST", "/cases", summary="立案", tag=CASES, roles=CASE_STARTERS, body=S.StartCase, errors=(422,),
           answers={201: (S.CaseRef, "已立案（Location 为案件地址）")})
def start_case() -> Response:
    """Start a case on the latest version of `process_id`; the engine runs it until it waits for a
    person, a timer, a message or another department."""
    body = json_body(S.StartCase)
    with engine().db.read() as s:
        schema, _ui = start_form(s, body.process_id)
    if schema is not None:
        _refuse_invalid_form(form_errors(schema, body.data, {}), "立案数据")
    try:
        ref = engine().start_case(body.process_id, body.data, current_actor(), summary=body.summary)
    except NotFound:
        known = sorted({v["process_id"] for v in engine().versions()})
        raise ApiError(422, "unknown_process", f"流程「{body.process_id}」尚未部署。已部署的流程："
                       f"{'、'.join(known) or '无'}。",
                       fields=[{"field": "process_id", "message": "尚未部署"}]) from None
    location = url_for("api.get_case", case_id=ref.id)
    return answer(S.CaseRef, ref.__dict__, 201, headers={"Location": location})


@api.route("GET", "/cases/<int:case_id>", summary="案件详情", tag=CASES, errors=(404,),
           answers={200: (S.Case, "案件、待办任务、未处理事件、限时办结")})
def get_case(case_id: int) -> Response:
    """Any user may look a case up (首问负责): its status, open tasks with their lights, open
    incidents, and its deadline (light, due date) once acceptance started the clock."""
    eng = engine()
    case = eng.get_case(case_id)
    tasks = eng.case_tasks(case_id)
    now = eng.clock.now()
    with eng.db.read() as s:
        deadline = deadlines.case_deadline(s, case_id, now)
        lights = deadlines.task_lights(s, tasks, now) if tasks else {}
    body = {**case, "status_name": status_name(case["status"]),
            "tasks": [_task(t, lights.get(t["id"])) for t in tasks],
            # the technical details (tracebacks) are for supervisors and admins: GET /incidents
            "incidents": [{**i, "details": None} for i in eng.incidents(status="open", case_id=case_id)],
            "deadline": deadline, "diagram_url": url_for("api.case_diagram", case_id=case_id)}
    return answer(S.Case, body)


@api.route("GET", "/cases/<int:case_id>/diagram.svg", summary="案件流程图（SVG）", tag=CASES, errors=(404,),
           answers={200: ("image/svg+xml", "案件所用版本的流程图，标出已完成、进行中、等待中与异常的环节")})
def case_diagram(case_id: int) -> Response:
    """The diagram of the version the case is pinned to, drawn on the server, with the case's
    progress marked (see webapp/api_marks.py for what is known and what is inferred)."""
    eng = engine()
    with eng.db.read() as s:
        case = s.get(Case, case_id)
        if case is None:
            raise NotFound(f"案件 {case_id} 不存在")
        xml = s.scalar(select(ProcessVersion.bpmn_xml).where(ProcessVersion.id == case.process_version_id))
        waiting = s.scalars(select(TimerJob.bpmn_id).where(TimerJob.case_id == case_id)).all()
        status, process_id = case.status, case.process_id
    marks = case_marks(xml or "", process_id, history=eng.history(case_id),
                       open_task_ids=[t["bpmn_id"] for t in eng.case_tasks(case_id)], waiting_ids=waiting,
                       incident_ids=[i["bpmn_id"] for i in eng.incidents(status="open", case_id=case_id)],
                       case_status=status)
    svg = render_svg(xml or "", process_id=process_id, marks=marks)
    return current_app.response_class(svg, mimetype="image/svg+xml")


@api.route("POST", "/cases/<int:case_id>/messages", summary="向案件发送消息", tag=CASES, roles=MESSAGE_ROLES,
           body=S.SendMessage, errors=(404, 409, 422),
           answers={200: (S.MessageResult, "已投递，或已暂存待案件到达等待点")})
def send_message(case_id: int) -> Response:
    """Hand a message (a payment callback, a court order) to a case: delivered now if the case
    waits for it, else kept until it does. With `key`, a repeated message is answered as a
    duplicate and not stored twice."""
    body = json_body(S.SendMessage)
    eng = engine()
    result = eng.send_message(case_id, body.name, body.payload, current_actor(), key=body.key)
    return answer(S.MessageResult, {**result, "case": eng.get_case(case_id)})


# ====================================================================================== tasks

@api.route("GET", "/tasks", summary="待办任务", tag=TASKS, query=S.TaskQuery, errors=(422,),
           answers={200: (S.TaskList, "我认领的任务与我岗位上未认领的任务，按到达先后")})
def tasks() -> Response:
    """The caller's task list: tasks they claimed and their roles' unclaimed tasks, oldest first,
    each with its deadline light."""
    query = validate(S.TaskQuery, request.args.to_dict(), where="查询参数")
    actor = current_actor()
    if query.role is not None and query.role not in actor.roles:
        if query.role not in ROLES:
            raise ApiError(422, "invalid", f"没有「{query.role}」这一岗位。岗位：{'、'.join(ROLES)}。",
                           fields=[{"field": "role", "message": "未知岗位"}])
        raise ApiError(403, "forbidden", f"您没有「{role_label(query.role)}」岗位，不能查看该岗位的待办任务。")
    eng = engine()
    rows = eng.task_list(actor, role=query.role, mine_only=query.mine, limit=query.limit + 1, offset=query.offset,
                         search=query.q or None)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    lights = _lights(eng, rows)
    return answer(S.TaskList, {"items": [_task(t, lights.get(t["id"])) for t in rows], "limit": query.limit,
                               "offset": query.offset, "next_offset": query.offset + query.limit if more else None})


@api.route("POST", "/tasks/<int:task_id>/claim", summary="认领任务", tag=TASKS, errors=(403, 404, 409),
           answers={200: (S.Task, "已由调用者认领")})
def claim_task(task_id: int) -> Response:
    """Take a task of one of your roles; 409 if someone else holds it. No body needed."""
    json_body(_Empty, required=False)
    eng = engine()
    task = eng.claim_task(task_id, current_actor())
    return answer(S.Task, _task(task, _lights(eng, [task]).get(task_id)))


@api.route("POST", "/tasks/<int:task_id>/release", summary="释放任务", tag=TASKS, errors=(403, 404, 409),
           answers={200: (S.Task, "已放回岗位的待办")})
def release_task(task_id: int) -> Response:
    """Put a claimed task back for the role; only its holder or a supervisor may. No body needed."""
    json_body(_Empty, required=False)
    engine().release_task(task_id, current_actor())
    return answer(S.Task, _task_by_id(task_id))


@api.route("POST", "/tasks/<int:task_id>/complete", summary="办理（完成）任务", tag=TASKS, body=S.CompleteTask,
           errors=(403, 404, 409, 422), answers={200: (S.Completed, "已办理：案件的新状态、版本与后续待办")})
def complete_task(task_id: int) -> Response:
    """Complete a task with its form's data. Checked in this order: the task exists (404), the
    caller holds its role (403), the data fits the form (422), the case is unchanged since
    `expected_version`, the task is still open and not held by someone else (409) — and only
    then is anything stored, in one transaction."""
    body = json_body(S.CompleteTask)
    eng = engine()
    actor = current_actor()
    ht = eng.task(task_id)
    if not actor.has(ht["role"]):
        raise ApiError(403, "forbidden", f"任务「{ht['name'] or ht['bpmn_id']}」属于「{role_label(ht['role'])}」岗位，"
                       f"{current_user.display_name}（{current_user.login}）没有该岗位。")
    case_id = ht["case_id"]
    schema = None
    if ht["state"] == "open" and ht["form"]:
        with eng.db.read() as s:
            schema = task_form(s, ht)
    if schema is not None:
        _refuse_invalid_form(form_errors(schema, body.data, eng.case_data(case_id)), "表单数据")
    try:
        ref = eng.complete_task(task_id, body.data, actor, expected_version=body.expected_version)
    except Conflict as err:
        raise engine_error(err, case=_case_ref(case_id)) from None
    return answer(S.Completed, {**ref.__dict__, "open_tasks": [_task(t) for t in eng.case_tasks(ref.id)]})


def _refuse_invalid_form(errors: list[dict[str, str]], what: str) -> None:
    if errors:
        raise ApiError(422, "invalid", f"{what}不符合要求：" + "；".join(e["message"] for e in errors) + "。",
                       fields=[{"field": f"data.{e['field']}" if e["field"] else "data", "message": e["message"]}
                               for e in errors])


# ====================================================================================== incidents

@api.route("GET", "/incidents", summary="事件（需要人处理的故障）", tag=ADMIN, roles=MANAGERS, query=S.IncidentQuery,
           errors=(422,), answers={200: (S.IncidentList, "事件，按发生先后")})
def incidents() -> Response:
    """Incidents: service calls that failed past their retries, script errors, business errors
    no boundary catches. Open ones by default."""
    query = validate(S.IncidentQuery, request.args.to_dict(), where="查询参数")
    rows = engine().incidents(status=None if query.status == "all" else query.status, case_id=query.case_id)
    page = rows[query.offset:query.offset + query.limit]
    more = len(rows) > query.offset + query.limit
    return answer(S.IncidentList, {"items": page, "limit": query.limit, "offset": query.offset,
                                   "next_offset": query.offset + query.limit if more else None})


@api.route("POST", "/incidents/<int:incident_id>/retry", summary="重试事件", tag=ADMIN, roles=MANAGERS,
           body=S.RetryIncident, body_required=False, errors=(404, 409),
           answers={200: (S.RetryResult, "已重试：事件（成功则已关闭）与案件")})
def retry_incident(incident_id: int) -> Response:
    """Run the failed step again now. The incident closes if it succeeds, else stays open with the
    new error. Body optional: {"comment": …}."""
    body = json_body(S.RetryIncident, required=False)
    eng = engine()
    eng.retry_incident(incident_id, current_actor(), comment=body.comment)
    incident = _incident(incident_id)
    return answer(S.RetryResult, {"incident": incident, "case": eng.get_case(incident["case_id"])})


@api.route("POST", "/incidents/<int:incident_id>/resolve", summary="处理（关闭）事件", tag=ADMIN, roles=MANAGERS,
           body=S.ResolveIncident, errors=(404, 409, 422), answers={200: (S.Resolved, "已关闭：事件与案件")})
def resolve_incident(incident_id: int) -> Response:
    """Close an incident with a comment. With `result`, the failed service task is completed with it
    (the answer got by phone, say); without, only if nothing in the case still waits on it."""
    body = json_body(S.ResolveIncident)
    eng = engine()
    eng.resolve_incident(incident_id, body.comment, current_actor(), result=body.result)
    incident = _incident(incident_id)
    return answer(S.Resolved, {"incident": incident, "case": eng.get_case(incident["case_id"])})


# ====================================================================================== helpers

class _Empty(S.Request):
    """Endpoints that take no body accept an empty one or `{}`."""


def _task(row: dict[str, Any], light: str | None = None) -> dict[str, Any]:
    return {**row, "role_name": role_name(row.get("role")), "light": light}


def _lights(eng: Engine, rows: list[dict[str, Any]]) -> dict[int, str | None]:
    """The deadline lights of the tasks, by task id."""
    with eng.db.read_engine.connect() as conn:
        return deadlines.task_lights(conn, rows, eng.clock.now())


def _task_by_id(task_id: int) -> dict[str, Any]:
    eng = engine()
    row = eng.task(task_id)
    return _task(row, _lights(eng, [row]).get(task_id))


def _case_ref(case_id: int) -> dict[str, Any]:
    case = engine().get_case(case_id)
    return {k: case[k] for k in ("id", "case_number", "status", "lock_version")}


def _incident(incident_id: int) -> dict[str, Any]:
    eng = engine()
    with eng.db.read() as s:
        case_id = s.scalar(select(Incident.case_id).where(Incident.id == incident_id))
    if case_id is None:
        raise NotFound(f"事件 {incident_id} 不存在")
    return next(i for i in eng.incidents(status=None, case_id=case_id) if i["id"] == incident_id)
