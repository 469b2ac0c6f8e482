"""The public guide 办事指南 (信息公开): one page per business kind, no login needed.

| page | route |
| the business kinds with a deployed process, and the whole time-limit table | GET /guide/ |
| one kind: its steps, the materials and where each comes from, the time limit | GET /guide/<business> |

Everything on a kind's page is generated, never written by hand: the steps from the latest
deployed version of the process of that id (the user and service tasks in the order a case meets
them, with their lanes — engine.process_steps; a call activity stands for the called process's
steps), the materials from processes/materials/<business>.json (domain.materials), the time limit
and what stops the clock from processes/time_limits.json (domain.deadlines). So the page changes
when a designer deploys a new version or the office edits its tables, and says what the office
actually does.

Service tasks that only keep the office's own stopwatch (`deadline.*` operators: starting the
clock, recording stage times) are left out: they are not steps an applicant meets. Event
sub-processes (supervision when a case turns yellow or red) are not on the way and are not listed.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from domain import deadlines, materials
from domain.errors import BusinessError
from webapp.i18n import role_name

bp = Blueprint("guide", __name__, url_prefix="/guide")

INTERNAL_OPERATORS = ("deadline.",)  # the office's stopwatch: not a step the applicant meets
# the departments service tasks talk to, by the first part of the operator's name
OPERATOR_DEPARTMENTS = {
    "tax": "tax",
    "housing": "housing",
    "court": "court",
    "register": "registry",
}
AUTOMATIC = _l("系统自动办理")
# what the checklists' conditions mean, in the applicant's words (an unknown fact is shown as written)
FACTS = {
    "agent": _l("委托代理人办理的"),
    "organization": _l("申请人为法人或其他组织的"),
    "allocated_land": _l("划拨土地上的不动产"),
    "court_online": _l("法院经“府院联办”在线送达的"),
    "has_pre_notice": _l("已办理预告登记的"),
    "mortgage_pre_notice": _l("一并申请抵押权预告登记的"),
    "mortgagor_applies": _l("抵押人共同申请的"),
    "policy_housing": _l("政策性住房上市交易的"),
    "purchase_restricted": _l("属于限购范围的"),
    "tax_relief": _l("申报税费优惠的"),
    "under_construction": _l("在建建筑物抵押的"),
}
NOT_FACTS = {"court_online": _l("执行人员现场送达的")}
TRANSFER_BASIS = {
    "sale": _l("买卖"), "inheritance": _l("继承、受遗赠"), "exchange": _l("互换"), "court_ruling": _l("法院判决、裁定"),
    "partition": _l("分割、合并"), "co_owner_change": _l("共有人变更"), "corporate_change": _l("法人合并、分立"),
    "approval": _l("依批准文件"),
}


def _engine() -> Any:
    return current_app.extensions["onewindow"]


def _latest_versions() -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for v in _engine().versions():
        if v["process_id"] not in latest or v["version"] > latest[v["process_id"]]["version"]:
            latest[v["process_id"]] = v
    return latest


def _checklist(business: str) -> materials.Checklist | None:
    try:
        return materials.checklist(business)
    except (BusinessError, materials.ChecklistError):
        return None


def _business_kind(business: str) -> tuple[deadlines.TimeLimitTable, deadlines.BusinessKind | None]:
    table = deadlines.load_table()
    return table, table.kinds.get(business)


def _is_business(process_id: str, table: deadlines.TimeLimitTable) -> bool:
    """A business kind the public can apply for: in the time-limit table or with a checklist
    (a called process such as issue_and_archive is part of others, not a kind of its own)."""
    return process_id in table.kinds or _checklist(process_id) is not None


@bp.get("/")
def index() -> str:
    table = deadlines.load_table()
    kinds = []
    for process_id, v in sorted(_latest_versions().items()):
        if not _is_business(process_id, table):
            continue
        kind = table.kinds.get(process_id)
        kinds.append({"code": process_id, "name": (kind.name if kind else None) or v["name"] or process_id,
                      "limit": _limit_text(table, kind) if kind else None, "one_hour": bool(kind and kind.one_hour)})
    return render_template("guide/index.html", kinds=kinds, table=table,
                           limits={k.code: _limit_text(table, k) for k in (*table.rows, *table.combined)})


@bp.get("/<business>")
def kind(business: str) -> str:
    latest = _latest_versions().get(business)
    table, kind_row = _business_kind(business)
    if latest is None or not _is_business(business, table):
        abort(404)
    steps = [_step(s) for s in _engine().process_steps(latest["id"])
             if not (s.operator or "").startswith(INTERNAL_OPERATORS)]
    checklist = _checklist(business)
    items = []
    if checklist is not None:
        for item in checklist.items:
            department = materials.DEPARTMENTS.get(item.department or "")
            items.append({"code": item.code, "name": item.name, "shared": item.shared, "department": department,
                          "essential": item.essential, "condition": _condition(item.condition),
                          "why": item.why, "basis": item.basis})
    return render_template(
        "guide/kind.html", business=business, name=(kind_row.name if kind_row else None) or latest["name"] or business,
        process_name=latest["name"], version=latest, steps=steps, checklist=checklist, items=items, kind=kind_row,
        limit=_limit_text(table, kind_row) if kind_row else None, pause_reasons=list(table.pause_reasons.values()),
        stages=list(table.stages.values()), immediate_minutes=deadlines.immediate_minutes(table))


def _condition(condition: materials.Condition | None) -> str | None:
    """When an item is needed, in words: "委托代理人办理的", "转移原因：继承、受遗赠"."""
    if condition is None:
        return None
    if condition.value is not None:
        if condition.fact == "transfer_basis":
            return _("转移原因：%(basis)s", basis=TRANSFER_BASIS.get(condition.value, condition.value))
        return f"{condition.fact} = {condition.value}"
    if condition.negated:
        label = NOT_FACTS.get(condition.fact)
        if label is not None:
            return str(label)
        return _("非“%(fact)s”情形", fact=FACTS.get(condition.fact, condition.fact))
    return str(FACTS.get(condition.fact, condition.fact))


def _step(step: Any) -> dict[str, Any]:
    if step.kind == "user":
        who = role_name(step.role) if step.role else (step.lane or "")
        department = None
    else:
        who = str(AUTOMATIC)
        code = OPERATOR_DEPARTMENTS.get((step.operator or "").split(".", 1)[0])
        department = materials.DEPARTMENTS.get(code) if code else None
    return {"name": step.name, "bpmn_id": step.bpmn_id, "kind": step.kind, "lane": step.lane,
            "role": role_name(step.role) if step.role else None, "who": who, "department": department,
            "called_from": step.called_from, "main": step.main}


def _limit_text(table: deadlines.TimeLimitTable, kind: deadlines.BusinessKind | None) -> dict[str, Any] | None:
    if kind is None:
        return None
    limit = table.limit_for(kind.code)
    return {"kind": limit.kind, "value": limit.value, "legal_workdays": kind.legal_workdays,
            "legal_text": kind.legal_text, "immediate": kind.immediate, "one_hour": kind.one_hour, "note": kind.note}
