"""The office overview: deployed processes, open tasks per post, incidents, recent cases."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask_login import login_required
from sqlalchemy import func, select

from domain.roles import ROLES
from storage.models import Case, HumanTask

bp = Blueprint("main", __name__)


@bp.get("/")
@login_required
def overview() -> str:
    engine = current_app.extensions["onewindow"]
    with engine.db.read() as s:
        per_role = dict(s.execute(select(HumanTask.role, func.count()).where(HumanTask.state == "open")
                                  .group_by(HumanTask.role)).all())
        per_status = dict(s.execute(select(Case.status, func.count()).group_by(Case.status)).all())
        recent = s.scalars(select(Case).order_by(Case.id.desc()).limit(20)).all()
        tasks: dict[int, list[str]] = {c.id: [] for c in recent}
        for case_id, name, bpmn_id in s.execute(
                select(HumanTask.case_id, HumanTask.name, HumanTask.bpmn_id)
                .where(HumanTask.case_id.in_(list(tasks)), HumanTask.state == "open").order_by(HumanTask.id)):
            tasks[case_id].append(name or bpmn_id)
    return render_template("main/overview.html", versions=engine.versions(), per_role=per_role, roles=ROLES,
                           per_status=per_status, recent=recent, tasks=tasks, incidents=engine.incidents("open"))
