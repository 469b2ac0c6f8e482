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

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import delete

from domain import deadlines, materials, register
from engine.errors import Conflict, EngineError, NotFound, NotPermitted
from engine.runtime import COUNT_CAP
from storage.models import HumanTask, TaskDraft
from webapp import schema_form
from webapp.api_forms import task_form, task_ui
from webapp.security import current_actor, forbidden, safe_next

bp = Blueprint("tasks", __name__, url_prefix="/tasks")
PAGE_SIZE = 50
MAX_PAGE = 1000
# the key data shown beside a task's form: case data field -> label
KEY_DATA = {
    "business_name": _l("业务"), "applicant": _l("申请人"), "unit_number": _l("不动产单元号"),
    "address": _l("坐落"), "promised_workdays": _l("承诺办结工作日"), "promise": _l("承诺办结日"),
    "accepted_on": _l("受理日期"), "check_reasons": _l("不予登记情形"),
}

SUMMARY_LABELS = {"applicant": _l("申请人"), "unit_number": _l("不动产单元号"), "address": _l("坐落"),
                  "id_number": _l("证件号码"), "id_numbers": _l("证件号码"), "parties": _l("当事人"),
                  "business": _l("业务")}


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
    return _engine().process_names()


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
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
    found = engine.task_page(actor, role=role, mine_only=mine, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE,
                             search=q or None, with_counts=True)
    rows = found.tasks
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    if rows:
        with engine.db.read_engine.connect() as conn:
            lights = deadlines.task_lights(conn, rows, engine.clock.now())
        for r in rows:
            r["light"] = lights.get(r["id"])
    return render_template("tasks/index.html", tasks=rows, names=found.process_names, role=role, mine=mine, q=q,
                           counts={r: found.counts.get(r, 0) for r in sorted(actor.roles)},
                           mine_count=found.mine_count, count_cap=COUNT_CAP, more=more, page=page,
                           page_size=PAGE_SIZE)


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

def simple_fields(bpmn_id: str) -> list[dict[str, Any]]:
    """Fields for a task whose BPMN names no form: what the clerks of a generic process fill in."""
    def field(key: str, label: str, kind: str, required: bool = False, help_text: str = "") -> dict[str, Any]:
        return {"name": key, "key": key, "label": label, "kind": kind, "required": required, "help": help_text,
                "options": [], "children": [], "placeholder": "", "schema": False, "default": None}
    if bpmn_id == "review" or bpmn_id.startswith("review"):
        return [field("approved", _("是否同意登记"), "boolean", True), field("opinion", _("审核意见"), "text")]
    if bpmn_id == "hand_over":
        return [field("handed_over_to", _("领证人"), "string", True)]
    return [field("_json", _("办理数据（JSON 对象）"), "json_object", False,
                  _("例如 {\"accepted\": true}；没有需要填写的数据时留空。"))]


def parse_simple(fields: list[dict[str, Any]], form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """A form-less task's fields: required ones checked here (there is no schema to do it)."""
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        raw = (form.get(f["name"]) or "").strip()
        if f["kind"] == "json_object":
            if not raw:
                continue
            try:
                value = schema_form.strict_json(raw)
            except ValueError as err:
                errors[f["name"]] = _("不是有效的 JSON：%(error)s", error=str(err))
                continue
            if not isinstance(value, dict):
                errors[f["name"]] = _("应为 JSON 对象，例如 {\"accepted\": true}。")
                continue
            data.update(value)
            continue
        if raw == "" and f["required"]:
            errors[f["name"]] = _("%(label)s：必填", label=f["label"])
            continue
        more, problems = schema_form.parse([f], form)
        data.update(more)
        errors.update(problems)
    return data, errors


def read_form(loaded: dict[str, Any], form: Any, current: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted form as data, with every message by field: unreadable input first, then
    what the task's JSON Schema refuses."""
    fields = loaded["fields"]
    if loaded["schema"] is None:
        return parse_simple(fields, form)
    return schema_form.read(loaded["schema"], fields, form, current)


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
        ui = task_ui(s, ht) if schema is not None else {}
        task = {"id": ht.id, "case_id": ht.case_id, "bpmn_id": ht.bpmn_id, "name": ht.name, "role": ht.role,
                "assignee": ht.assignee, "state": ht.state, "created_at": ht.created_at, "closed_at": ht.closed_at,
                "closed_by": ht.closed_by, "form": ht.form}
        light = deadlines.task_lights(s, [ht], engine.clock.now()).get(ht.id)
        draft = s.get(TaskDraft, task_id) if ht.state == "open" else None
        saved = ({"values": draft.data.get("values") or {}, "by": draft.saved_by, "at": draft.saved_at}
                 if draft else None)
    task["light"] = light
    fields = schema_form.fields_of(schema, ui) if schema is not None else simple_fields(task["bpmn_id"])
    return {"task": task, "schema": schema, "ui": ui, "fields": fields, "draft": saved}


def _initial_values(loaded: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    if loaded["draft"] is not None:
        return dict(loaded["draft"]["values"])
    if loaded["schema"] is None:
        return {f["name"]: schema_form.values_of([f], data).get(f["name"], "") for f in loaded["fields"]
                if f["kind"] != "json_object"}
    return schema_form.values_of(loaded["fields"], data)


def _register_entries(unit_number: Any) -> dict[str, Any] | None:
    """The unit as the register shows it now: address, owners, mortgages, seizures, notices."""
    if not isinstance(unit_number, str) or not unit_number:
        return None
    with _engine().db.read() as s:
        unit = register.get_unit(s, unit_number)
        if unit is None:
            return {"unit_number": unit_number, "unit": None, "rights": []}
        rights = register.current_rights(s, unit_number)
    return {"unit_number": unit_number, "unit": unit, "rights": rights}


def _materials(business: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The acceptance result if the case has one, else the business's checklist to collect by."""
    acceptance = data.get("acceptance")
    if isinstance(acceptance, dict) and acceptance.get("required") is not None:
        return {"acceptance": acceptance, "checklist": None}
    if business not in materials.businesses():
        return None
    cl = materials.checklist(business)
    facts = cl.facts(data.get("facts") if isinstance(data.get("facts"), dict) else {})
    return {"acceptance": None, "checklist": [i.summary() | {"why": i.why} for i in cl.required(facts)]}


def _page(task_id: int, *, loaded: dict[str, Any] | None = None, values: dict[str, Any] | None = None,
          errors: dict[str, str] | None = None, error: str | None = None, expected: int | None = None,
          status: int = 200) -> Any:
    engine = _engine()
    loaded = loaded or _load(task_id)
    task = loaded["task"]
    case = engine.get_case(task["case_id"])
    data = engine.case_data(task["case_id"])
    if values is None:
        values = _initial_values(loaded, data)
    key_data = [(label, data[k]) for k, label in KEY_DATA.items() if data.get(k) not in (None, "", [])]
    summary = case["summary"] or {}
    unit_number = data.get("unit_number") or summary.get("unit_number")
    return render_template(
        "tasks/task.html", task=task, case=case, fields=loaded["fields"], values=values, errors=errors or {},
        error=error, expected=case["lock_version"] if expected is None else expected, draft=loaded["draft"],
        key_data=key_data, summary=summary, findings=findings_of(data),
        review=task["bpmn_id"].startswith("review"), names=process_names(),
        register_entries=_register_entries(unit_number), materials=_materials(case["process_id"], data),
        rows_to_draw=schema_form.rows_to_draw, choice_value=schema_form.choice_value), status


@bp.get("/<int:task_id>")
def task(task_id: int) -> Any:
    return _page(task_id)


@bp.post("/<int:task_id>")
def complete(task_id: int) -> Any:
    engine = _engine()
    loaded = _load(task_id)
    values = schema_form.submitted_values(loaded["fields"], request.form)
    expected = request.form.get("lock_version", type=int)
    data, errors = read_form(loaded, request.form, engine.case_data(loaded["task"]["case_id"]))
    if errors:
        return _page(task_id, loaded=loaded, values=values, errors=errors, expected=expected, status=422,
                     error=_("表单有需要修改的地方，请看各栏旁的说明。"))
    try:
        ref = engine.complete_task(task_id, data, current_actor(), expected_version=expected)
    except NotPermitted:
        forbidden()
    except NotFound:
        abort(404)
    except Conflict as err:
        return _page(task_id, loaded=loaded, values=values, status=409,
                     error=_("没有提交：%(error)s 您填写的内容仍在下方；请核对案件的最新情况后再决定是否重新提交。",
                             error=str(err)))
    except EngineError as err:
        return _page(task_id, loaded=loaded, values=values, expected=expected,
                     status=getattr(err, "http_status", 400), error=_("没有提交：%(error)s", error=str(err)))
    with engine.db.write() as s:
        s.execute(delete(TaskDraft).where(TaskDraft.task_id == task_id))
    flash(_("任务已办理，案件 %(case)s 已进入下一环节。", case=ref.case_number), "info")
    return redirect(url_for("cases.case", case_id=ref.id))


@bp.post("/<int:task_id>/draft")
def save_draft(task_id: int) -> Any:
    """Keep what the clerk has typed so far, readable or not, without completing the task."""
    engine = _engine()
    loaded = _load(task_id)
    task = loaded["task"]
    actor = current_actor()
    if task["state"] != "open":
        return _page(task_id, loaded=loaded, status=409, error=_("该任务已办结或取消，不能保存草稿。"))
    if task["assignee"] and task["assignee"] != actor.name and not actor.manages:
        return _page(task_id, loaded=loaded, values=schema_form.submitted_values(loaded["fields"], request.form),
                     status=409, error=_("该任务已由 %(who)s 认领，不能保存草稿。", who=task["assignee"]))
    values = schema_form.submitted_values(loaded["fields"], request.form)
    with engine.db.write() as s:
        draft = s.get(TaskDraft, task_id)
        if draft is None:
            draft = TaskDraft(task_id=task_id, data={}, saved_by=actor.name, saved_at=engine.clock.now())
            s.add(draft)
        draft.data = {"values": values}
        draft.saved_by = actor.name
        draft.saved_at = engine.clock.now()
    flash(_("草稿已保存；任务尚未办理。"), "info")
    return redirect(url_for("tasks.task", task_id=task_id))
