"""Admins, designers and supervisors (issue #5): deployments and versions, incidents, timers and
the outbox, the supervisor dashboard. Every page here needs one of those roles; each page narrows
it further:

| page | route | roles |
| this area's overview | GET /admin/ | admin, supervisor, designer |
| deployments: upload, every problem (file, line, element); processes | GET, POST /admin/deployments | admin, designer |
| a process's versions, the cases running on each | GET /admin/processes/<process_id> | admin, designer |
| the diff of two versions | GET /admin/processes/<process_id>/diff?old=ID&new=ID | admin, designer |
| a version: diagram, running cases, can each move to the latest | GET /admin/versions/<id> | admin, designer |
| migrate one case | POST /admin/cases/<id>/migrate | admin, designer |
| migrate every running case of a version | POST /admin/versions/<id>/migrate | admin, designer |
| incidents; one incident | GET /admin/incidents[?status=], /admin/incidents/<id> | admin, supervisor |
| retry; resolve with a comment | POST /admin/incidents/<id>/retry, …/resolve | admin, supervisor |
| timers and the outbox: what is due, what failed | GET /admin/jobs | admin, supervisor |
| supervisor dashboard, charts drawn as SVG here | GET /admin/dashboard[?day=YYYY-MM-DD] | supervisor, admin |

Every form posts with the session's CSRF token. The engine's refusals are shown on the page they
came from, with the engine's own message (it says what is wrong and what to do) and the HTTP
status the engine gives them (409 conflict, 422 invalid input).
"""
from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import func, select

from domain import deadlines
from domain.clock import SHANGHAI
from engine import DeploymentRejected, EngineError, MigrationRefused
from engine.deployment import DEPLOYABLE_SUFFIXES
from storage.models import Case, CaseClock, HumanTask, Incident, Outbox, ProcessVersion, TimerJob
from webapp.diagram import render_svg
from webapp.schema_form import strict_json
from webapp.security import current_actor, forbidden, role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")
ROLES = ("admin", "supervisor", "designer")
DESIGNERS = ("admin", "designer")  # deployments, versions, diffs, migrations
OPERATORS = ("admin", "supervisor")  # incidents, timers and the outbox
SUPERVISORS = ("supervisor", "admin")  # the dashboard
RUNNING = ("active", "suspended")
CHECK_LIMIT = 50  # running cases whose migration is checked when a version page is drawn

INCIDENT_KINDS = {
    "service_fault": _l("外部服务故障"),
    "business_error": _l("业务拒绝未被流程处理"),
    "script_error": _l("脚本或表达式错误"),
    "timeout": _l("执行超时"),
    "engine_error": _l("引擎错误"),
    "outbox_failed": _l("消息发送失败"),
}
ELEMENT_KINDS = {
    "user_task": _l("人工任务"),
    "service_task": _l("服务任务"),
    "script_task": _l("脚本任务"),
    "manual_task": _l("手工任务"),
    "call_activity": _l("调用活动"),
    "sub_workflow_task": _l("子流程"),
    "exclusive_gateway": _l("排他网关"),
    "parallel_gateway": _l("并行网关"),
    "inclusive_gateway": _l("包容网关"),
    "event_based_gateway": _l("事件网关"),
    "start_event": _l("开始事件"),
    "end_event": _l("结束事件"),
    "intermediate_catch_event": _l("中间捕获事件"),
    "intermediate_throw_event": _l("中间抛出事件"),
    "boundary_event": _l("边界事件"),
    "receive_task": _l("接收任务"),
    "send_task": _l("发送任务"),
}
ATTRIBUTE_NAMES = {
    "outputs": _l("后续连线"),
    "inputs": _l("前序连线"),
    "bpmn_name": _l("名称"),
    "bpmn_id": _l("元素 ID"),
    "lane": _l("泳道"),
    "documentation": _l("说明"),
    "extensions": _l("扩展属性（表单等）"),
    "prescript": _l("前置脚本"),
    "postscript": _l("后置脚本"),
    "script": _l("脚本"),
    "operation_name": _l("服务操作"),
    "operation_params": _l("服务参数"),
    "result_variable": _l("结果变量"),
    "cond_task_specs": _l("分支条件"),
    "default_task_spec": _l("默认分支"),
    "event_definition": _l("事件定义"),
    "typename": _l("元素类型"),
    "spec": _l("调用的流程"),
    "data_input_associations": _l("输入数据"),
    "data_output_associations": _l("输出数据"),
    "io_specification": _l("输入输出"),
    "cancel_activity": _l("是否中断"),
}
LIGHT_NAMES = {"green": _l("绿灯"), "yellow": _l("黄灯"), "red": _l("红灯")}


@bp.before_request
@login_required
def _staff_only() -> None:
    if not current_user.has(*ROLES):
        forbidden()
    return None


def _engine() -> Any:
    return current_app.extensions["onewindow"]


@bp.app_template_global()
def case_url(case_number: str) -> str:
    """Where a case number links to: the case search (首问负责), which finds it by number."""
    if "cases.index" in current_app.view_functions:
        return url_for("cases.index", q=case_number)
    return f"/cases/?q={case_number}"


@bp.app_template_filter("incident_kind")
def incident_kind(kind: str | None) -> str:
    return str(INCIDENT_KINDS.get(kind or "", kind or ""))


@bp.app_template_filter("element_kind")
def element_kind(kind: str | None) -> str:
    return str(ELEMENT_KINDS.get(kind or "", kind or ""))


@bp.app_template_filter("attribute_name")
def attribute_name(name: str) -> str:
    label = ATTRIBUTE_NAMES.get(name)
    return f"{label}（{name}）" if label is not None else name


@bp.app_template_filter("light_name")
def light_name(light: str | None) -> str:
    return str(LIGHT_NAMES.get(light or "", light or ""))


def _refused(err: EngineError) -> tuple[str, int]:
    """A refusal's message (every reason of a MigrationRefused) and its HTTP status."""
    return str(err), getattr(err, "http_status", 400)


# ============================================================================ overview

@bp.get("/")
def index() -> str:
    engine = _engine()
    counts: dict[str, Any] = {}
    with engine.db.read() as s:
        if current_user.has(*OPERATORS):
            counts["incidents"] = s.scalar(select(func.count()).select_from(Incident)
                                           .where(Incident.status == "open"))
            counts["jobs"] = s.scalar(select(func.count()).select_from(TimerJob))
            counts["outbox_failed"] = s.scalar(select(func.count()).select_from(Outbox)
                                               .where(Outbox.status == "failed"))
        if current_user.has(*DESIGNERS):
            counts["processes"] = s.scalar(select(func.count(func.distinct(ProcessVersion.process_id))))
    return render_template("admin/index.html", counts=counts, designers=current_user.has(*DESIGNERS),
                           operators=current_user.has(*OPERATORS), supervisors=current_user.has(*SUPERVISORS))


# ============================================================================ deployments and versions

def _processes() -> list[dict[str, Any]]:
    """Each deployed process: its latest version and the cases running on all its versions."""
    by_process: dict[str, dict[str, Any]] = {}
    for v in _engine().versions():
        entry = by_process.setdefault(v["process_id"], {"process_id": v["process_id"], "versions": 0,
                                                        "running": 0, "latest": v})
        entry["versions"] += 1
        entry["running"] += v["running_cases"]
        if v["version"] >= entry["latest"]["version"]:
            entry["latest"] = v
    return [by_process[k] for k in sorted(by_process)]


def _upload_name(raw: str, from_folder: bool) -> str | None:
    """A safe relative name for an uploaded file: slashes normalised, no absolute parts, no `..`;
    a file of an uploaded folder is named relative to that folder (as `onewindow deploy DIR`)."""
    parts = [p for p in raw.replace("\\", "/").split("/") if p not in ("", ".", "..") and not p.endswith(":")]
    if from_folder and len(parts) > 1:
        parts = parts[1:]
    return "/".join(parts) if parts else None


@bp.route("/deployments", methods=["GET", "POST"])
@role_required(*DESIGNERS)
def deployments() -> Any:
    problems = None
    comment = ""
    status = 200
    if request.method == "POST":
        comment = (request.form.get("comment") or "").strip()
        files: list[tuple[str, bytes]] = []
        ignored: list[str] = []
        for field_name, from_folder in (("files", False), ("folder", True)):
            for upload in request.files.getlist(field_name):
                if not upload or not upload.filename:
                    continue
                name = _upload_name(upload.filename, from_folder)
                if name is None:
                    continue
                if from_folder and not name.lower().endswith(DEPLOYABLE_SUFFIXES):
                    ignored.append(name)
                    continue
                files.append((name, upload.read()))
        if ignored:
            flash(_("已忽略文件夹中不能部署的文件：%(names)s", names="、".join(ignored)), "info")
        try:
            results = _engine().deploy(files, current_user.login, comment or None)
        except DeploymentRejected as err:
            problems = err.problems
            status = 422
        else:
            for r in results:
                if r.created:
                    flash(_("已部署 %(process)s v%(version)s。", process=r.process_id, version=r.version), "info")
                else:
                    flash(_("%(process)s 的内容没有变化，仍为 v%(version)s。", process=r.process_id,
                            version=r.version), "info")
            return redirect(url_for("admin.deployments"))
    return render_template("admin/deployments.html", processes=_processes(), problems=problems,
                           comment=comment), status


@bp.get("/processes/<process_id>")
@role_required(*DESIGNERS)
def process(process_id: str) -> str:
    versions = _engine().versions(process_id)
    if not versions:
        abort(404)
    versions.sort(key=lambda v: v["version"], reverse=True)
    return render_template("admin/process.html", process_id=process_id, versions=versions,
                           name=versions[0]["name"], guide="guide.kind" in current_app.view_functions)


@bp.get("/processes/<process_id>/diff")
@role_required(*DESIGNERS)
def diff(process_id: str) -> Any:
    engine = _engine()
    versions = sorted(engine.versions(process_id), key=lambda v: v["version"])
    if not versions:
        abort(404)
    ids = {v["id"] for v in versions}
    old_id = request.args.get("old", type=int)
    new_id = request.args.get("new", type=int)
    if old_id is None or new_id is None:
        if len(versions) < 2:
            flash(_("该流程只有一个版本，没有可比较的。"), "info")
            return redirect(url_for("admin.process", process_id=process_id))
        old_id, new_id = versions[-2]["id"], versions[-1]["id"]
    if old_id not in ids or new_id not in ids:
        abort(404)
    result = engine.diff_versions(old_id, new_id)
    return render_template("admin/diff.html", process_id=process_id, diff=result, versions=versions,
                           old_id=old_id, new_id=new_id)


@bp.get("/versions/<int:version_id>")
@role_required(*DESIGNERS)
def version(version_id: int) -> str:
    engine = _engine()
    with engine.db.read() as s:
        pv = s.get(ProcessVersion, version_id)
        if pv is None:
            abort(404)
        latest = s.scalars(select(ProcessVersion).where(ProcessVersion.process_id == pv.process_id)
                           .order_by(ProcessVersion.version.desc()).limit(1)).first()
        callees = {}
        for callee, dep_id in (pv.dependencies or {}).items():
            dep = s.get(ProcessVersion, dep_id)
            callees[callee] = dep
        cases = s.scalars(select(Case).where(Case.process_version_id == version_id, Case.status.in_(RUNNING))
                          .order_by(Case.id)).all()
        open_tasks: dict[int, list[str]] = {c.id: [] for c in cases}
        if cases:
            for case_id, name, bpmn_id in s.execute(
                    select(HumanTask.case_id, HumanTask.name, HumanTask.bpmn_id)
                    .where(HumanTask.case_id.in_(list(open_tasks)), HumanTask.state == "open")
                    .order_by(HumanTask.id)):
                open_tasks[case_id].append(name or bpmn_id)
        info = {"id": pv.id, "process_id": pv.process_id, "version": pv.version, "name": pv.name,
                "sha256": pv.sha256, "filename": pv.filename, "deployed_by": pv.deployed_by,
                "deployed_at": pv.deployed_at, "comment": pv.comment, "forms": sorted((pv.assets or {}).keys()),
                "documentation": (pv.meta or {}).get("documentation") or ""}
        xml = pv.bpmn_xml
        rows = [{"id": c.id, "case_number": c.case_number, "status": c.status, "started_at": c.started_at,
                 "lock_version": c.lock_version, "tasks": open_tasks[c.id]} for c in cases]
    try:
        svg = render_svg(xml, process_id=info["process_id"])
    except ValueError as err:
        svg = None
        flash(_("流程图无法显示：%(error)s", error=str(err)), "error")
    newer = latest if latest is not None and latest.version > info["version"] else None
    checks = {}
    if newer is not None:
        for row in rows[:CHECK_LIMIT]:
            checks[row["id"]] = engine.check_migration(row["id"], newer.id)
    return render_template("admin/version.html", v=info, svg=svg, cases=rows, checks=checks,
                           newer={"id": newer.id, "version": newer.version} if newer is not None else None,
                           callees={k: (d.version if d else None) for k, d in callees.items()},
                           check_limit=CHECK_LIMIT)


@bp.post("/cases/<int:case_id>/migrate")
@role_required(*DESIGNERS)
def migrate_case(case_id: int) -> Any:
    engine = _engine()
    target = request.form.get("target", type=int)
    back = request.form.get("from_version", type=int)
    comment = (request.form.get("comment") or "").strip() or None
    expected = request.form.get("lock_version", type=int)
    try:
        moved = engine.migrate_case(case_id, target, current_actor(), comment, expected_version=expected)
    except MigrationRefused as err:
        flash(_("案件 %(case)s 未迁移：%(reasons)s", case=err.case_number, reasons="；".join(err.reasons)), "error")
    except EngineError as err:
        flash(_("案件未迁移：%(error)s", error=str(err)), "error")
    else:
        flash(_("案件 %(case)s 已从 v%(old)s 迁移到 v%(new)s。", case=moved.case_number,
                old=moved.from_version.version, new=moved.to_version.version), "info")
    if back:
        return redirect(url_for("admin.version", version_id=back))
    return redirect(url_for("admin.deployments"))


@bp.post("/versions/<int:version_id>/migrate")
@role_required(*DESIGNERS)
def migrate_version(version_id: int) -> Any:
    engine = _engine()
    target = request.form.get("target", type=int)
    comment = (request.form.get("comment") or "").strip() or None
    try:
        result = engine.migrate_cases(version_id, target, current_actor(), comment)
    except EngineError as err:
        flash(_("未迁移：%(error)s", error=str(err)), "error")
        return redirect(url_for("admin.version", version_id=version_id))
    flash(_("已迁移 %(n)s 个案件。", n=len(result.migrated)), "info")
    for refused in result.refused:
        flash(_("案件 %(case)s 未迁移：%(reasons)s", case=refused["case_number"],
                reasons="；".join(refused["reasons"])), "error")
    return redirect(url_for("admin.version", version_id=version_id))


# ============================================================================ incidents

def _task_names(pairs: set[tuple[int, str, str | None]]) -> dict[tuple[int, str | None], str]:
    """(version id, bpmn id) -> the element's name, from each version's deployed names."""
    engine = _engine()
    out: dict[tuple[int, str | None], str] = {}
    for version_id, process_id, bpmn_id in pairs:
        if not bpmn_id:
            continue
        try:
            names = engine.version_info(version_id).names
        except EngineError:
            continue
        name = names.get((process_id, bpmn_id)) or next((n for (_p, b), n in names.items() if b == bpmn_id), None)
        if name:
            out[(version_id, bpmn_id)] = name
    return out


def _incident_rows(status: str | None, case_id: int | None = None) -> list[dict[str, Any]]:
    engine = _engine()
    rows = engine.incidents(status, case_id)
    if not rows:
        return rows
    with engine.db.read() as s:
        versions = dict((cid, (vid, pid)) for cid, vid, pid in s.execute(
            select(Case.id, Case.process_version_id, Case.process_id)
            .where(Case.id.in_({r["case_id"] for r in rows}))))
    names = _task_names({(*versions[r["case_id"]], r["bpmn_id"]) for r in rows})
    for r in rows:
        version_id, process_id = versions[r["case_id"]]
        r["process_id"] = process_id
        r["task_name"] = names.get((version_id, r["bpmn_id"]))
    return rows


@bp.get("/incidents")
@role_required(*OPERATORS)
def incidents() -> str:
    status = request.args.get("status", "open")
    if status not in ("open", "resolved", "all"):
        status = "open"
    rows = _incident_rows(None if status == "all" else status)
    rows.sort(key=lambda r: r["id"], reverse=status != "open")
    return render_template("admin/incidents.html", incidents=rows, status=status)


def _incident_page(incident_id: int, error: str | None = None, status: int = 200,
                   form: dict[str, str] | None = None) -> Any:
    engine = _engine()
    with engine.db.read() as s:
        inc = s.get(Incident, incident_id)
        if inc is None:
            abort(404)
        case_id = inc.case_id
    row = next(r for r in _incident_rows(None, case_id) if r["id"] == incident_id)
    case = engine.get_case(case_id)
    history = [e for e in engine.history(case_id) if e["kind"].startswith(("incident", "service", "business"))
               or e["task_guid"] == row["task_guid"]][-20:]
    return render_template("admin/incident.html", incident=row, case=case, history=history, error=error,
                           form=form or {}), status


@bp.get("/incidents/<int:incident_id>")
@role_required(*OPERATORS)
def incident(incident_id: int) -> Any:
    return _incident_page(incident_id)


@bp.post("/incidents/<int:incident_id>/retry")
@role_required(*OPERATORS)
def retry_incident(incident_id: int) -> Any:
    comment = (request.form.get("comment") or "").strip() or None
    try:
        outcome = _engine().retry_incident(incident_id, current_actor(), comment)
    except EngineError as err:
        message, status = _refused(err)
        return _incident_page(incident_id, _("重试没有进行：%(error)s", error=message), status)
    if outcome["status"] == "resolved":
        flash(_("已重试，任务继续执行，事件 #%(id)s 已关闭。", id=incident_id), "info")
    else:
        flash(_("已重试，但仍然失败：%(message)s", message=outcome["message"]), "error")
    return redirect(url_for("admin.incident", incident_id=incident_id))


@bp.post("/incidents/<int:incident_id>/resolve")
@role_required(*OPERATORS)
def resolve_incident(incident_id: int) -> Any:
    comment = (request.form.get("comment") or "").strip()
    raw_result = (request.form.get("result") or "").strip()
    form = {"comment": comment, "result": raw_result}
    if not comment:
        return _incident_page(incident_id, _("请填写处理说明：写明做了什么、为什么可以关闭。"), 422, form)
    result = None
    if raw_result:
        try:
            result = strict_json(raw_result)
        except ValueError as err:
            return _incident_page(incident_id, _("结果不是有效的 JSON：%(error)s", error=str(err)), 422, form)
        if not isinstance(result, dict):
            return _incident_page(incident_id, _("结果应为 JSON 对象，例如 {\"seized\": false}。"), 422, form)
    try:
        _engine().resolve_incident(incident_id, comment, current_actor(), result)
    except EngineError as err:
        message, status = _refused(err)
        return _incident_page(incident_id, _("事件没有关闭：%(error)s", error=message), status, form)
    flash(_("事件 #%(id)s 已处理并关闭。", id=incident_id), "info")
    return redirect(url_for("admin.incident", incident_id=incident_id))


# ============================================================================ timers and the outbox

@bp.get("/jobs")
@role_required(*OPERATORS)
def jobs() -> str:
    engine = _engine()
    now = engine.clock.now()
    with engine.db.read() as s:
        timers = [{"id": j.id, "case_number": number, "bpmn_id": j.bpmn_id, "kind": j.kind, "due_at": j.due_at,
                   "overdue": j.due_at <= now, "attempts": j.attempts, "last_error": j.last_error,
                   "locked_by": j.locked_by if j.locked_until and j.locked_until > now else None}
                  for j, number in s.execute(select(TimerJob, Case.case_number).join(Case, Case.id == TimerJob.case_id)
                                             .order_by(TimerJob.due_at, TimerJob.id).limit(500))]
        timer_total = s.scalar(select(func.count()).select_from(TimerJob))
        pending = [_outbox_row(m, number, now) for m, number in s.execute(
            select(Outbox, Case.case_number).outerjoin(Case, Case.id == Outbox.case_id)
            .where(Outbox.status == "pending").order_by(Outbox.due_at, Outbox.id).limit(500))]
        failed = [_outbox_row(m, number, now) for m, number in s.execute(
            select(Outbox, Case.case_number).outerjoin(Case, Case.id == Outbox.case_id)
            .where(Outbox.status == "failed").order_by(Outbox.id.desc()).limit(200))]
        counts = dict(s.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all())
        next_outbox = s.scalar(select(func.min(Outbox.due_at)).where(Outbox.status == "pending"))
    return render_template("admin/jobs.html", now=now, timers=timers, timer_total=timer_total,
                           next_due=engine.next_due(), next_outbox=next_outbox, pending=pending, failed=failed,
                           counts=counts)


def _outbox_row(m: Outbox, number: str | None, now: datetime) -> dict[str, Any]:
    return {"id": m.id, "case_number": number, "topic": m.topic, "due_at": m.due_at, "overdue": m.due_at <= now,
            "attempts": m.attempts, "last_error": m.last_error, "created_at": m.created_at,
            "payload": json.dumps(m.payload, ensure_ascii=False, sort_keys=True)[:300]}


# ============================================================================ supervisor dashboard

def bar_chart(groups: list[dict[str, Any]], *, unit: str = "", budget: float | None = None,
              group_width: int = 96, height: int = 180) -> dict[str, Any]:
    """Geometry of a vertical bar chart, drawn by the `bar_chart` macro (admin/_charts.html).

    `groups`: [{"key", "label", "bars": [{"series", "label", "value", "cls"}]}]; one bar per entry,
    side by side within a group. `budget` draws a dashed line at that value (stage budgets).
    Bars are scaled to the largest value (or the budget); a value of None draws no bar.
    """
    values = [b["value"] for g in groups for b in g["bars"] if b["value"] is not None]
    top = max([*values, budget or 0, 0])
    if all(float(v).is_integer() for v in [*values, budget or 0]):
        top = max(4, math.ceil(top / 4) * 4)  # counts: whole-number ticks
    else:
        top = _nice(top) if top > 0 else 1
    left, bottom, top_pad = 40, 44, 20
    plot_h = height - bottom - top_pad
    width = left + max(1, len(groups)) * group_width + 10
    out_groups = []
    for i, g in enumerate(groups):
        n = max(1, len(g["bars"]))
        bar_w = min(36, (group_width - 24) / n)
        x0 = left + i * group_width + (group_width - bar_w * n) / 2
        bars = []
        for j, b in enumerate(g["bars"]):
            value = b["value"]
            h = 0.0 if value is None else plot_h * float(value) / top
            bars.append({**b, "x": round(x0 + j * bar_w, 1), "y": round(top_pad + plot_h - h, 1),
                         "w": round(bar_w - 2, 1), "h": round(h, 1), "text": "" if value is None else _fmt(value)})
        out_groups.append({**g, "bars": bars, "cx": round(left + i * group_width + group_width / 2, 1)})
    ticks = [{"value": _fmt(top * k / 4), "y": round(top_pad + plot_h - plot_h * k / 4, 1)} for k in range(5)]
    line = None if budget is None else round(top_pad + plot_h - plot_h * budget / top, 1)
    return {"width": width, "height": height, "left": left, "base": top_pad + plot_h, "groups": out_groups,
            "ticks": ticks, "unit": unit, "budget": budget, "budget_y": line, "label_y": height - bottom + 16}


def _nice(value: float) -> float:
    """The next round number at or above value: 1, 2, 5 × a power of ten."""
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _day(raw: str | None, now: datetime) -> date:
    if raw:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            flash(_("日期应为 YYYY-MM-DD，已显示今天。"), "error")
    return now.astimezone(SHANGHAI).date()


@bp.get("/dashboard")
@role_required(*SUPERVISORS)
def dashboard() -> str:
    engine = _engine()
    now = engine.clock.now()
    day = _day(request.args.get("day"), now)
    start = datetime.combine(day, time.min, SHANGHAI)
    end = start + timedelta(days=1)
    table = deadlines.load_table()
    names = {v["process_id"]: v["name"] for v in engine.versions()}
    with engine.db.read() as s:
        per_kind: dict[str, dict[str, int]] = {}
        for process_id, status, n in s.execute(
                select(Case.process_id, Case.status, func.count())
                .where(Case.started_at >= start, Case.started_at < end).group_by(Case.process_id, Case.status)):
            per_kind.setdefault(process_id, {})[status] = n
        rate = deadlines.one_hour_rate(s, start, end, table)
        stages = deadlines.stage_statistics(s, start, end, table=table)
        clocks = s.scalars(select(CaseClock).join(Case, Case.id == CaseClock.case_id).where(
            CaseClock.completed_at.is_(None), Case.status.in_(RUNNING))).all()
        lights = {"green": 0, "yellow": 0, "red": 0}
        flagged = []
        for clock in clocks:
            light = deadlines.current_light(clock, now)
            lights[light] += 1
            if light in ("yellow", "red"):
                left = deadlines.remaining(clock, now)
                flagged.append({"case_number": clock.case_number, "business": clock.business, "light": light,
                                "due_at": clock.due_at, "accepted_at": clock.accepted_at,
                                "paused": clock.paused_since is not None, "remaining": left})
    flagged.sort(key=lambda r: (r["light"] != "red", r["due_at"]))
    kinds = [{"code": code, "name": _kind_name(code, table, names), "counts": counts, "total": sum(counts.values())}
             for code, counts in sorted(per_kind.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))]
    charts = {
        "kinds": bar_chart([{"key": k["code"], "label": k["name"], "bars": [
            {"series": "cases", "label": _("受理"), "value": k["total"], "cls": "bar-cases"}]} for k in kinds],
            unit=_("件")),
        "one_hour": bar_chart([
            {"key": "within", "label": _("一小时内办结"),
             "bars": [{"series": "within", "label": _("一小时内办结"), "value": rate["within"], "cls": "bar-green"}]},
            {"key": "over", "label": _("超过一小时"),
             "bars": [{"series": "over", "label": _("超过一小时"), "value": rate["cases"] - rate["within"],
                       "cls": "bar-red"}]}], unit=_("件"), group_width=120),
        "stages": bar_chart([{"key": code, "label": st["name"], "bars": [
            {"series": "mean", "label": _("平均"), "value": st["mean"], "cls": "bar-mean"},
            {"series": "p90", "label": _("P90"), "value": st["p90"], "cls": "bar-p90"}]}
            for code, st in stages.items()], unit=_("分钟"),
            budget=max((st["budget_minutes"] for st in stages.values()), default=None), group_width=120),
        "lights": bar_chart([{"key": light, "label": light_name(light), "bars": [
            {"series": light, "label": light_name(light), "value": n, "cls": f"bar-{light}"}]}
            for light, n in lights.items()], unit=_("件")),
    }
    return render_template("admin/dashboard.html", day=day, today=now.astimezone(SHANGHAI).date(), kinds=kinds,
                           rate=rate, stages=stages, lights=lights, flagged=flagged, charts=charts,
                           kind_names={c: _kind_name(c, table, names) for c in {r["business"] for r in flagged}},
                           previous=day - timedelta(days=1), following=day + timedelta(days=1))


def _kind_name(code: str, table: deadlines.TimeLimitTable, names: dict[str, str | None]) -> str:
    kind = table.kinds.get(code)
    return names.get(code) or (kind.name if kind is not None else code)
