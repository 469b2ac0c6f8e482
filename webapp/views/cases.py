"""Case search by case number, unit number or ID number (首问负责: any clerk finds any case) and
the case page: diagram, history, deadline and stage times, certificates, incidents (issue #5).
Every page here needs a login, and no particular role.

| page | route |
| search: an exact case number opens its page; else cases whose number, unit number, a party's
  ID number or name begins with the text (case_search_key); a single match opens its page | GET /cases/?q= |
| the case page; its diagram at full size | GET /cases/<id>, /cases/<id>/diagram.svg |
| start a case: choose the business, fill in its start form (window clerk, supervisor, admin) |
  GET /cases/new[?process=], POST /cases/new/<process_id> |
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import select

from domain import deadlines
from engine.errors import EngineError, NotFound
from storage.models import CaseStageTime, ProcessVersion, TimerJob
from webapp import schema_form
from webapp.api_forms import start_form
from webapp.api_marks import case_marks
from webapp.diagram import render_svg
from webapp.security import current_actor, forbidden
from webapp.views.tasks import parse_simple, process_names

log = logging.getLogger(__name__)
bp = Blueprint("cases", __name__, url_prefix="/cases")
SEARCH_LIMIT = 50

EVENT_NAMES = {
    "case_started": _l("受理立案"),
    "case_completed": _l("办结"),
    "case_cancelled": _l("撤销"),
    "case_suspended": _l("挂起"),
    "case_resumed": _l("恢复办理"),
    "case_migrated": _l("迁移到新版本"),
    "task_claimed": _l("认领任务"),
    "task_released": _l("释放任务"),
    "task_reassigned": _l("转派任务"),
    "task_completed": _l("办理完成"),
    "service_called": _l("调用服务"),
    "service_retry": _l("重试服务"),
    "service_retry_scheduled": _l("安排重试服务"),
    "business_error": _l("业务拒绝"),
    "timer_fired": _l("定时触发"),
    "event_thrown": _l("发出事件"),
    "message_received": _l("收到消息"),
    "message_delivered": _l("消息送达"),
    "incident_opened": _l("发生事件（故障）"),
    "incident_retried": _l("重试事件"),
    "incident_resolved": _l("事件已处理"),
    "incident_closed": _l("事件已关闭"),
}


@bp.before_request
@login_required
def _login_first() -> None:
    return None


@bp.app_template_filter("event_name")
def event_name(kind: str) -> str:
    return str(EVENT_NAMES.get(kind, kind))


def _engine() -> Any:
    return current_app.extensions["onewindow"]


def search_cases(q: str, limit: int = SEARCH_LIMIT) -> list[dict[str, Any]]:
    """Cases found by number, unit number, a party's ID number or name, or their beginning."""
    return [{**c, "summary": c["summary"] or {}} for c in _engine().find_cases(q, limit)]


@bp.get("/")
def index() -> Any:
    q = (request.args.get("q") or "").strip()
    results: list[dict[str, Any]] = []
    if q:
        try:
            found = _engine().find_case(q)
        except NotFound:
            results = search_cases(q)
        else:
            return redirect(url_for("cases.case", case_id=found["id"]))
        if len(results) == 1:
            return redirect(url_for("cases.case", case_id=results[0]["id"]))
    return render_template("cases/index.html", q=q, results=results, names=process_names(),
                           limit=SEARCH_LIMIT)


# ============================================================================ starting a case

CASE_STARTERS = ("window_clerk", "supervisor", "admin")


def _may_start() -> None:
    if not any(current_actor().has(r) for r in CASE_STARTERS):
        forbidden()


def startable() -> list[dict[str, Any]]:
    """The deployed processes a case can be started on: each one's latest version, except those
    only ever called from another process (e.g. the shared issue-and-archive step)."""
    latest: dict[str, dict[str, Any]] = {}
    callees: set[str] = set()
    for v in sorted(_engine().versions(), key=lambda v: v["version"]):
        latest[v["process_id"]] = v
    for v in latest.values():
        callees.update(k for k in (v["dependencies"] or {}) if k != v["process_id"])
    with _engine().db.read() as s:
        metas = dict(s.execute(select(ProcessVersion.id, ProcessVersion.meta)
                               .where(ProcessVersion.id.in_([v["id"] for v in latest.values()]))).all())
    return [{"process_id": pid, "name": v["name"] or pid, "version": v["version"],
             "has_form": bool((metas.get(v["id"]) or {}).get("start_form")),
             "documentation": (metas.get(v["id"]) or {}).get("documentation") or ""}
            for pid, v in sorted(latest.items()) if pid not in callees]


def _start_fields(process_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    with _engine().db.read() as s:
        schema, ui = start_form(s, process_id)
    if schema is None:
        return None, [{"name": "_json", "key": "_json", "label": _l("立案数据（JSON 对象）"), "kind": "json_object",
                       "required": False, "help": _l("该流程没有立案表单；按流程说明填写，没有时留空。"),
                       "options": [], "children": [], "placeholder": "", "schema": False, "default": None}]
    return schema, schema_form.fields_of(schema, ui)


@bp.get("/new")
def new() -> Any:
    _may_start()
    kinds = startable()
    process_id = request.args.get("process") or ""
    chosen = next((k for k in kinds if k["process_id"] == process_id), None)
    if chosen is None:
        return render_template("cases/new.html", kinds=kinds, chosen=None)
    schema, fields = _start_fields(process_id)
    values = schema_form.values_of(fields, {}) if schema is not None else {}
    return render_template("cases/new.html", kinds=kinds, chosen=chosen, fields=fields, values=values, errors={},
                           rows_to_draw=schema_form.rows_to_draw, choice_value=schema_form.choice_value)


@bp.post("/new/<process_id>")
def start(process_id: str) -> Any:
    _may_start()
    engine = _engine()
    kinds = startable()
    chosen = next((k for k in kinds if k["process_id"] == process_id), None)
    if chosen is None:
        abort(404)
    schema, fields = _start_fields(process_id)
    values = schema_form.submitted_values(fields, request.form)
    if schema is None:
        data, errors = parse_simple(fields, request.form)
    else:
        data, errors = schema_form.read(schema, fields, request.form, {})
    error = _("表单有需要修改的地方，请看各栏旁的说明。") if errors else None
    if not errors:
        try:
            ref = engine.start_case(process_id, data, current_actor())
        except EngineError as err:
            error = _("没有立案：%(error)s", error=str(err))
        else:
            return _after_start(ref)
    return render_template("cases/new.html", kinds=kinds, chosen=chosen, fields=fields, values=values, errors=errors,
                           error=error, rows_to_draw=schema_form.rows_to_draw,
                           choice_value=schema_form.choice_value), 422


def _after_start(ref: Any) -> Any:
    """Straight on to the first task the clerk may work (at the window: acceptance), else the case."""
    actor = current_actor()
    flash(_("已立案，案件号 %(case)s。", case=ref.case_number), "info")
    for t in _engine().case_tasks(ref.id):
        if actor.has(t["role"]) and not t["assignee"]:
            return redirect(url_for("tasks.task", task_id=t["id"]))
    return redirect(url_for("cases.case", case_id=ref.id))


def _diagram(case: dict[str, Any], history: list[dict[str, Any]], tasks: list[dict[str, Any]],
             incidents: list[dict[str, Any]]) -> str | None:
    engine = _engine()
    with engine.db.read() as s:
        xml = s.scalar(select(ProcessVersion.bpmn_xml).where(ProcessVersion.id == case["process_version_id"]))
        waiting = s.scalars(select(TimerJob.bpmn_id).where(TimerJob.case_id == case["id"])).all()
    marks = case_marks(xml or "", case["process_id"], history=history,
                       open_task_ids=[t["bpmn_id"] for t in tasks], waiting_ids=waiting,
                       incident_ids=[i["bpmn_id"] for i in incidents], case_status=case["status"])
    try:
        return render_svg(xml or "", process_id=case["process_id"], marks=marks)
    except ValueError as err:
        log.warning("case %s: diagram not drawn: %s", case["id"], err)
        return None


@bp.get("/<int:case_id>/diagram.svg")
def diagram(case_id: int) -> Any:
    """The case's marked diagram at full size, for a closer look than the case page gives."""
    engine = _engine()
    try:
        info = engine.get_case(case_id)
    except NotFound:
        abort(404)
    svg = _diagram(info, engine.history(case_id), engine.case_tasks(case_id),
                   engine.incidents(status="open", case_id=case_id))
    if svg is None:
        abort(404)
    return Response(svg, mimetype="image/svg+xml",
                    headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})


def _certificates(data: dict[str, Any]) -> list[dict[str, Any]]:
    found = data.get("certificates")
    if not isinstance(found, list):
        found = [data["certificate"]] if isinstance(data.get("certificate"), dict) else []
    return [c for c in found if isinstance(c, dict)]


@bp.get("/<int:case_id>")
def case(case_id: int) -> Any:
    engine = _engine()
    try:
        info = engine.get_case(case_id)
    except NotFound:
        abort(404)
    history = engine.history(case_id)
    tasks = engine.case_tasks(case_id)
    incidents = engine.incidents(status="open", case_id=case_id)
    now = engine.clock.now()
    table = deadlines.load_table()
    with engine.db.read() as s:
        deadline = deadlines.case_deadline(s, case_id, now)
        lights = deadlines.task_lights(s, tasks, now, table) if tasks else {}
        stages = [{"stage": st.stage, "name": table.stages[st.stage].name if st.stage in table.stages else st.stage,
                   "started_at": st.started_at, "ended_at": st.ended_at,
                   "minutes": float(st.minutes) if st.minutes is not None else None}
                  for st in s.scalars(select(CaseStageTime).where(CaseStageTime.case_id == case_id)
                                      .order_by(CaseStageTime.started_at, CaseStageTime.id))]
    for t in tasks:
        t["light"] = lights.get(t["id"])
    names = _element_names(info["process_version_id"])
    try:
        data = engine.case_data(case_id)
    except Exception as err:  # noqa: BLE001 — a case whose state cannot be read still shows its records
        log.warning("case %s: data not readable: %s", case_id, err)
        data = {}
    return render_template("cases/case.html", case=info, history=history, tasks=tasks, incidents=incidents,
                           deadline=deadline, stages=stages, svg=_diagram(info, history, tasks, incidents),
                           certificates=_certificates(data), names=process_names(), element_names=names,
                           roles=current_actor().roles)


def _element_names(version_id: int) -> dict[str, str]:
    try:
        names = _engine().version_info(version_id).names
    except Exception:  # noqa: BLE001 — names are a nicety
        return {}
    return {bpmn_id: name for (_p, bpmn_id), name in names.items() if name}
