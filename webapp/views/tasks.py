"""The clerks' task list and task pages (issue #5, "Clerks"). Every page here needs a login.

| page | route |
| my tasks and my roles' unclaimed tasks; filters (role, mine only), search by case number | GET /tasks/ |
| claim; release (CSRF) | POST /tasks/<id>/claim, /tasks/<id>/release |
| the task's form beside the case's key data and rule findings; complete | GET, POST /tasks/<id> |

Conventions for views: `current_actor()` (webapp.security) is who acts, for the engine;
forms carry `csrf_token()`; completing a task sends the case's lock_version as the expected
version, and a conflict (someone else changed the case or completed the task) answers 409 with
the clerk's input kept. A task of a role the user does not hold is a 403 page.
"""
from __future__ import annotations

import json
from datetime import date
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import func, select

from domain import deadlines
from engine.errors import Conflict, EngineError, NotFound, NotPermitted
from storage.models import HumanTask
from webapp.api_forms import form_errors, task_form
from webapp.security import current_actor, forbidden, safe_next

bp = Blueprint("tasks", __name__, url_prefix="/tasks")
PAGE_SIZE = 100
# the key data shown beside a task's form: case data field -> label
KEY_DATA = {
    "business_name": _l("业务"), "applicant": _l("申请人"), "unit_number": _l("不动产单元号"),
    "address": _l("坐落"), "promised_workdays": _l("承诺办结工作日"), "promise": _l("承诺办结日"),
    "accepted_on": _l("受理日期"), "check_reasons": _l("不予登记情形"),
}

SUMMARY_LABELS = {"applicant": _l("申请人"), "unit_number": _l("不动产单元号"), "address": _l("坐落"),
                  "id_number": _l("证件号码"), "business": _l("业务")}


@bp.app_template_filter("summary_label")
def summary_label(key: str) -> str:
    return str(SUMMARY_LABELS.get(key, key))


@bp.before_request
@login_required
def _login_first() -> None:
    return None


def _engine() -> Any:
    return current_app.extensions["onewindow"]


def process_names() -> dict[str, str]:
    """process id -> the name of its latest version (the business kind)."""
    names: dict[str, str] = {}
    for v in sorted(_engine().versions(), key=lambda v: v["version"]):
        names[v["process_id"]] = v["name"] or v["process_id"]
    return names


# ============================================================================ the task list

@bp.get("/")
def index() -> str:
    engine = _engine()
    actor = current_actor()
    role = request.args.get("role") or None
    if role is not None and role not in actor.roles:
        role = None
    mine = request.args.get("mine") == "1"
    q = (request.args.get("q") or "").strip()
    rows = engine.task_list(actor, role=role, mine_only=mine, limit=PAGE_SIZE, search=q or None)
    now = engine.clock.now()
    with engine.db.read() as s:
        lights = deadlines.task_lights(s, rows, now) if rows else {}
        counts = dict(s.execute(
            select(HumanTask.role, func.count()).where(
                HumanTask.state == "open", HumanTask.assignee.is_(None), HumanTask.role.in_(sorted(actor.roles)))
            .group_by(HumanTask.role)).all())
        mine_count = s.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.state == "open", HumanTask.assignee == actor.name))
    for r in rows:
        r["light"] = lights.get(r["id"])
    return render_template("tasks/index.html", tasks=rows, names=process_names(), role=role, mine=mine, q=q,
                           counts={r: counts.get(r, 0) for r in sorted(actor.roles)}, mine_count=mine_count,
                           more=len(rows) >= PAGE_SIZE)


def _back() -> Any:
    return redirect(safe_next(request.form.get("next")) or url_for("tasks.index"))


@bp.post("/<int:task_id>/claim")
def claim(task_id: int) -> Any:
    try:
        _engine().claim_task(task_id, current_actor())
    except EngineError as err:
        flash(_("未能认领：%(error)s", error=str(err)), "error")
    else:
        flash(_("已认领任务。"), "info")
    return _back()


@bp.post("/<int:task_id>/release")
def release(task_id: int) -> Any:
    try:
        _engine().release_task(task_id, current_actor())
    except EngineError as err:
        flash(_("未能释放：%(error)s", error=str(err)), "error")
    else:
        flash(_("已释放任务，放回岗位待办。"), "info")
    return _back()


# ============================================================================ the task page

def schema_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The form's top-level fields, as the page draws them: name, label, kind (string, number,
    integer, boolean, enum, date, json), required, help."""
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = set(schema.get("required") or ())
    out = []
    for name, spec in props.items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        if "enum" in spec:
            kind = "enum"
        elif kind == "string" and spec.get("format") == "date":
            kind = "date"
        elif kind not in ("string", "number", "integer", "boolean"):
            kind = "json"
        out.append({"name": name, "label": spec.get("title") or name, "kind": kind, "required": name in required,
                    "help": spec.get("description") or "", "options": list(spec.get("enum") or ())})
    return out


def simple_fields(bpmn_id: str) -> list[dict[str, Any]]:
    """Fields for a task without a form: what the clerks of the processes fill in."""
    if bpmn_id == "review" or bpmn_id.startswith("review"):
        return [{"name": "approved", "label": _("是否同意登记"), "kind": "boolean", "required": True, "help": "",
                 "options": []},
                {"name": "opinion", "label": _("审核意见"), "kind": "text", "required": False, "help": "",
                 "options": []}]
    if bpmn_id == "hand_over":
        return [{"name": "handed_over_to", "label": _("领证人"), "kind": "string", "required": True, "help": "",
                 "options": []}]
    return [{"name": "_json", "label": _("办理数据（JSON 对象）"), "kind": "json_object", "required": False,
             "help": _("例如 {\"accepted\": true}；没有需要填写的数据时留空。"), "options": []}]


def _enum_value(raw: str, options: list[Any]) -> Any:
    for option in options:
        if json.dumps(option, ensure_ascii=False) == raw or str(option) == raw:
            return option
    return raw


def parse_form(fields: list[dict[str, Any]], form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted values as data for the engine, and a message per field that cannot be read."""
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        name, kind = f["name"], f["kind"]
        raw = (form.get(name) or "").strip()
        if kind == "json_object":
            if not raw:
                continue
            try:
                value = json.loads(raw)
            except ValueError as err:
                errors[name] = _("不是有效的 JSON：%(error)s", error=str(err))
                continue
            if not isinstance(value, dict):
                errors[name] = _("应为 JSON 对象，例如 {\"accepted\": true}。")
                continue
            data.update(value)
            continue
        if raw == "":
            if f["required"] and not f.get("schema"):  # a form's own required fields: form_errors
                errors[name] = _("%(label)s：必填", label=f["label"])
            continue
        if kind == "boolean":
            data[name] = raw in ("true", "1", "yes", "on")
        elif kind in ("number", "integer"):
            try:
                number = float(raw)
            except ValueError:
                errors[name] = _("%(label)s：应为数字", label=f["label"])
                continue
            if kind == "integer":
                if not number.is_integer():
                    errors[name] = _("%(label)s：应为整数", label=f["label"])
                    continue
                data[name] = int(number)
            else:
                data[name] = int(number) if number.is_integer() and "." not in raw else number
        elif kind == "enum":
            data[name] = _enum_value(raw, f["options"])
        elif kind == "date":
            try:
                data[name] = date.fromisoformat(raw).isoformat()
            except ValueError:
                errors[name] = _("%(label)s：日期应为 YYYY-MM-DD", label=f["label"])
        elif kind == "json":
            try:
                data[name] = json.loads(raw)
            except ValueError:
                errors[name] = _("%(label)s：不是有效的 JSON", label=f["label"])
        else:
            data[name] = raw
    return data, errors


def _initial_values(fields: list[dict[str, Any]], current: dict[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for f in fields:
        value = current.get(f["name"])
        if value is None:
            continue
        if f["kind"] == "boolean":
            values[f["name"]] = "true" if value else "false"
        elif f["kind"] in ("json", "enum") and not isinstance(value, str):
            values[f["name"]] = json.dumps(value, ensure_ascii=False)
        else:
            values[f["name"]] = str(value)
    return values


def findings_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The rule findings of case data `findings` (register.check_rules), worst first."""
    found = data.get("findings")
    items = found.get("findings") if isinstance(found, dict) else found
    if not isinstance(items, list):
        return []
    order = {"block": 0, "warn": 1, "notice": 2}
    rows = [f for f in items if isinstance(f, dict)]
    return sorted(rows, key=lambda f: order.get(str(f.get("severity")), 3))


def _load(task_id: int) -> dict[str, Any]:
    engine = _engine()
    with engine.db.read() as s:
        ht = s.get(HumanTask, task_id)
        if ht is None:
            abort(404)
        if not current_actor().has(ht.role):
            forbidden()
        schema = task_form(s, ht) if ht.state == "open" else None
        task = {"id": ht.id, "case_id": ht.case_id, "bpmn_id": ht.bpmn_id, "name": ht.name, "role": ht.role,
                "assignee": ht.assignee, "state": ht.state, "created_at": ht.created_at, "closed_at": ht.closed_at,
                "closed_by": ht.closed_by, "form": ht.form}
        light = deadlines.task_lights(s, [ht], engine.clock.now()).get(ht.id)
    task["light"] = light
    fields = schema_fields(schema) if schema is not None else simple_fields(task["bpmn_id"])
    for f in fields:
        f["schema"] = schema is not None
    return {"task": task, "schema": schema, "fields": fields}


def _page(task_id: int, *, values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
          error: str | None = None, expected: int | None = None, status: int = 200) -> Any:
    engine = _engine()
    loaded = _load(task_id)
    task = loaded["task"]
    case = engine.get_case(task["case_id"])
    data = engine.case_data(task["case_id"])
    if values is None:
        values = _initial_values(loaded["fields"], data)
    key_data = [(label, data[k]) for k, label in KEY_DATA.items() if data.get(k) not in (None, "", [])]
    return render_template(
        "tasks/task.html", task=task, case=case, fields=loaded["fields"], values=values, errors=errors or {},
        error=error, expected=case["lock_version"] if expected is None else expected,
        key_data=key_data, summary=case["summary"] or {}, findings=findings_of(data),
        review=task["bpmn_id"].startswith("review"), names=process_names()), status


@bp.get("/<int:task_id>")
def task(task_id: int) -> Any:
    return _page(task_id)


@bp.post("/<int:task_id>")
def complete(task_id: int) -> Any:
    engine = _engine()
    loaded = _load(task_id)
    fields = loaded["fields"]
    values = {f["name"]: request.form.get(f["name"], "") for f in fields}
    expected = request.form.get("lock_version", type=int)
    data, errors = parse_form(fields, request.form)
    if not errors and loaded["schema"] is not None:
        for e in form_errors(loaded["schema"], data, engine.case_data(loaded["task"]["case_id"])):
            field = e["field"].split(".")[0] if e["field"] else ""
            errors[field] = f"{errors[field]}；{e['message']}" if field in errors else e["message"]
    if errors:
        return _page(task_id, values=values, errors=errors, expected=expected, status=422,
                     error=_("表单有需要修改的地方，请看各栏旁的说明。"))
    try:
        ref = engine.complete_task(task_id, data, current_actor(), expected_version=expected)
    except NotPermitted:
        forbidden()
    except NotFound:
        abort(404)
    except Conflict as err:
        return _page(task_id, values=values, status=409,
                     error=_("没有提交：%(error)s 您填写的内容仍在下方；请核对案件的最新情况后再决定是否重新提交。",
                             error=str(err)))
    except EngineError as err:
        return _page(task_id, values=values, expected=expected, status=getattr(err, "http_status", 400),
                     error=_("没有提交：%(error)s", error=str(err)))
    flash(_("任务已办理，案件 %(case)s 已进入下一环节。", case=ref.case_number), "info")
    return redirect(url_for("cases.case", case_id=ref.id))
